//! medic and a real Prometheus (Debian package `prometheus`) evaluate the same rule file over
//! the same data, pushed to both by remote write as it happens; at the end of every step of the
//! scenario both have the same alerts, in the same states, with the same annotations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Only what Prometheus 2.42 understands: this file is loaded by both.
const RULES: &str = r#"groups:
- name: rooms
  interval: 1s
  rules:
  - record: room:temp:max
    expr: max by (room) (temp)
  - alert: Hot
    expr: temp > 90
    for: 2s
    labels: {severity: page}
    annotations:
      summary: '{{ $labels.room }} is at {{ $value | humanize }}°C'
  - alert: Cold
    expr: room:temp:max < 10
    keep_firing_for: 2s
    annotations:
      summary: '{{ $labels.room | title }} is cold: {{ printf "%.1f" $value }}'
  - alert: ManyHot
    expr: count(temp > 50) >= 2
    annotations:
      summary: '{{ $value }} rooms are hot; hottest {{ with query "topk(1, temp)" }}{{ . | first | label "room" }}{{ end }}'
  - alert: AtticSensorMissing
    expr: absent(temp{room="attic"})
"#;

/// Seconds per step: long enough that `for: 2s` and `keep_firing_for: 2s` settle in both
/// systems, whatever the phase of their 1s evaluations.
const STEP_S: i64 = 6;

/// Temperatures of kitchen, cellar, attic per step; `None` ends the attic series (a staleness
/// marker, as a scrape that loses a target writes).
const SCHEDULE: [(f64, f64, Option<f64>); 7] = [
    (20.0, 15.0, Some(20.0)),
    (95.0, 15.0, Some(20.0)),
    (95.0, 95.0, Some(20.0)),
    (50.0, 5.0, Some(20.0)),
    (50.0, 20.0, None),
    (92.0, 20.0, Some(21.0)),
    (20.0, 15.0, Some(20.0)),
];

/// The alerts (name, room, state) that must be active at the end of each step, worked out by
/// hand from the rules and the schedule.
fn expected(step: usize) -> Vec<(&'static str, &'static str, &'static str)> {
    match step {
        0 => vec![],
        1 => vec![("Hot", "kitchen", "firing")],
        2 => vec![
            ("Hot", "cellar", "firing"),
            ("Hot", "kitchen", "firing"),
            ("ManyHot", "", "firing"),
        ],
        3 => vec![("Cold", "cellar", "firing")],
        // absent() keeps the labels of its equality matchers.
        4 => vec![("AtticSensorMissing", "attic", "firing")],
        5 => vec![("Hot", "kitchen", "firing")],
        _ => vec![],
    }
}

/// The samples pushed at `t` (ms), the `tick`th second of `step`.
fn series(step: usize, tick: i64, t: i64) -> Vec<TestSeries> {
    let (k, c, a) = SCHEDULE[step];
    let mut out = vec![("kitchen", k), ("cellar", c)];
    match a {
        Some(v) => out.push(("attic", v)),
        // Mark the attic stale once, at the first push of the step.
        None if tick == 0 => out.push(("attic", medic_model::STALE_NAN)),
        None => {}
    }
    out.into_iter()
        .map(|(room, v)| {
            (
                vec![
                    ("__name__".into(), "temp".into()),
                    ("room".into(), room.into()),
                ],
                vec![(t, v)],
            )
        })
        .collect()
}

/// `ALERTS` at `t` (ms) as sorted (alertname, room, alertstate, all labels).
async fn alerts_at(c: &reqwest::Client, base: &str, t: i64) -> BTreeSet<BTreeMap<String, String>> {
    let r: Value = c
        .get(format!("{base}/api/v1/query"))
        .query(&[
            ("query", "ALERTS"),
            ("time", &format!("{:.3}", t as f64 / 1000.0)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{base} answered {r}"))
        .iter()
        .map(|s| serde_json::from_value(s["metric"].clone()).unwrap())
        .collect()
}

/// `/api/v1/alerts` as (labels, annotations, state), without timing-dependent fields.
async fn api_alerts(c: &reqwest::Client, base: &str) -> BTreeSet<String> {
    let r = get_json(c, &format!("{base}/api/v1/alerts")).await;
    r["data"]["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{base} answered {r}"))
        .iter()
        .map(|a| format!("{} {} {}", a["labels"], a["annotations"], a["state"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medic_fires_the_same_alerts_as_prometheus_at_every_step() {
    require_binary("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let medic_cfg = dir.path().join("medic.yml");
    std::fs::write(
        &medic_cfg,
        format!("scrape_configs: []\nrule_files: ['{}']\n", rules.display()),
    )
    .unwrap();
    let medic = Medic::start(&dir.path().join("medic-data"), Some(&medic_cfg), &[]);
    let rules_path = rules.display().to_string();
    let prom = Prometheus::start(
        dir.path(),
        move |_| format!("global:\n  evaluation_interval: 1s\nrule_files: ['{rules_path}']\n"),
        &["--web.enable-remote-write-receiver"],
    );
    let c = client();
    wait_ready(&c, &prom.url()).await;

    // Steps start on a whole second, a little ahead, so both have evaluated a few times.
    let start = (now_ms() / 1000 + 3) * 1000;
    let bases = [medic.url(""), prom.url()];
    for step in 0..SCHEDULE.len() {
        for tick in 0..STEP_S {
            let t = start + (step as i64 * STEP_S + tick) * 1000;
            let wait = t - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            let body = write_request(&series(step, tick, t));
            for base in &bases {
                let r = post_write(&c, base, body.clone()).await.unwrap();
                assert!(
                    r.status().is_success(),
                    "{base}: {}",
                    r.text().await.unwrap()
                );
            }
        }
    }
    // Let the last step's evaluations land.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut report = String::new();
    for step in 0..SCHEDULE.len() {
        let t = start + (step as i64 + 1) * STEP_S * 1000 - 500;
        let ours = alerts_at(&c, &bases[0], t).await;
        let theirs = alerts_at(&c, &bases[1], t).await;
        let summary = |set: &BTreeSet<BTreeMap<String, String>>| -> Vec<(String, String, String)> {
            set.iter()
                .map(|l| {
                    let g = |k: &str| l.get(k).cloned().unwrap_or_default();
                    (g("alertname"), g("room"), g("alertstate"))
                })
                .collect()
        };
        let want: Vec<(String, String, String)> = expected(step)
            .into_iter()
            .map(|(a, r, s)| (a.into(), r.into(), s.into()))
            .collect();
        if ours != theirs || summary(&theirs) != want {
            report.push_str(&format!(
                "step {step}: medic {:?}\n        prometheus {:?}\n        expected {want:?}\n",
                summary(&ours),
                summary(&theirs)
            ));
        }
    }
    assert!(
        report.is_empty(),
        "alerts differ:\n{report}medic log:\n{}",
        medic.stderr()
    );

    // Hold the last step's data a little longer and compare the alerts APIs: same labels,
    // annotations (templates expanded the same way) and states.
    let hot = write_request(&series(5, 1, now_ms()));
    for base in &bases {
        post_write(&c, base, hot.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(STEP_S as u64 - 1)).await;
    let ours = api_alerts(&c, &bases[0]).await;
    let theirs = api_alerts(&c, &bases[1]).await;
    assert_eq!(ours, theirs, "/api/v1/alerts differ");
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(
        ours.iter().next().unwrap().contains("kitchen is at 92°C"),
        "{ours:?}"
    );
}

async fn wait_ready(c: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c.get(format!("{base}/-/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
