//! `medic replay` against the live run that recorded the history: the same rules and
//! playbooks, replayed over the stopped medic's data directory, fire the same alerts at the
//! same evaluation times and reach the same guard decisions (dry run), with the alert manager's
//! notifications and recording-rule backfill on top.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const RULES: &str = r#"
groups:
  - name: load
    interval: 2s
    rules:
      - record: load:max
        expr: max(load)
      - alert: HighLoad
        expr: load > 5
        for: 4s
        labels: {severity: page}
"#;

/// A dry-run playbook with a rate limit (dry runs count against it), so that some of the
/// alerts are vetoed.
const PLAYBOOK: &str = r#"
name: calm
trigger:
  alert: '{alertname="HighLoad"}'
target: '{{ $labels.instance }}'
collect:
  - name: current
    query: 'load{instance="{{ $labels.instance }}"}'
actions:
  shed:
    exec:
      command: ['true']
verify:
  exec:
    command: ['true']
  within: 5s
guards:
  cooldown: 14s
  rate_limit: {max: 3, per: 1m}
"#;

/// The load of `instance` at `t` (ms): above 5 in bursts whose lengths and gaps differ per
/// instance, so alerts fire, resolve and come back inside and outside the cooldown.
fn load(instance: usize, t: i64, t0: i64) -> f64 {
    let s = (t - t0) / 1000;
    let period = [22, 31][instance];
    let on = [12, 9][instance];
    if s >= 4 && (s - 4) % period < on {
        9.0
    } else {
        1.0
    }
}

/// (state, time) transitions of each alert, from the rules' own `ALERTS` series.
fn live_transitions(exported: &[Exported], interval: i64) -> BTreeMap<String, Vec<(String, i64)>> {
    let mut out: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for s in exported {
        if s.metric.get("alertstate").map(String::as_str) != Some("firing") {
            continue;
        }
        let inst = s.metric["instance"].clone();
        let ev = out.entry(inst).or_default();
        let mut prev: Option<i64> = None;
        for &t in &s.timestamps {
            if prev.is_none_or(|p| t - p > interval) {
                if let Some(p) = prev {
                    ev.push(("resolved".into(), p + interval));
                }
                ev.push(("firing".into(), t));
            }
            prev = Some(t);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_recorded_run_fires_the_same_alerts_and_guards_decide_alike() {
    let dir = tempfile::tempdir().unwrap();
    let cap = Capture::start().await;
    let cfg = dir.path().join("medic.yml");
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/calm.yml"), PLAYBOOK).unwrap();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            "route:\n  receiver: team\n  group_by: [alertname, instance]\n  group_wait: 1s\n  group_interval: 3s\n  repeat_interval: 1h\nreceivers:\n  - name: team\n    webhook_configs: [{{url: \"{}\"}}]\n",
            cap.url("/hook")
        ),
    )
    .unwrap();
    std::fs::write(
        &cfg,
        "scrape_configs: []\nrule_files: [rules.yml]\nalerting: {config_file: alertmanager.yml}\nheal:\n  dry_run: true\n  playbooks: ['playbooks/*.yml']\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let m = Medic::start(&data, Some(&cfg), &[]);
    let c = client();
    let t0 = now_ms();
    // Each sample is written 5 s before its own time, so every evaluation sees the same
    // samples live as it will in the replay (2 s was not enough on a loaded machine: a
    // writer that fell behind left a live evaluation without the sample the replay saw).
    let stop_at = t0 + 75_000;
    while now_ms() < stop_at {
        let t = now_ms() + 5000;
        let series: Vec<TestSeries> = (0..2)
            .map(|i| {
                (
                    vec![
                        ("__name__".to_string(), "load".to_string()),
                        ("instance".to_string(), format!("i{i}")),
                    ],
                    vec![(t, load(i, t, t0))],
                )
            })
            .collect();
        let r = post_write(&c, &m.url(""), write_request(&series))
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let t_end = now_ms() - 3000;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alerts = export(&c, &m.url(""), "ALERTS").await;
    let mut live = live_transitions(&alerts, 2000);
    let ex = get_json(&c, &m.url("/api/v1/medic/heal/executions?limit=1000")).await;
    let mut live_repairs: Vec<(i64, String, String, String)> = ex["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["created_at"].as_i64().unwrap_or_default(),
                e["target"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
                e["veto"]["guard"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|r| r.0 <= t_end - 2000)
        .collect();
    live_repairs.sort();
    assert!(m.terminate().success());

    let backfill = dir.path().join("backfill");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args([
            "replay",
            "--from",
            &format!("{:.3}", t0 as f64 / 1000.0),
            "--to",
        ])
        .arg(format!("{:.3}", t_end as f64 / 1000.0))
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .args(["--format", "json", "--backfill"])
        .arg(&backfill)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The alerts: the same transitions at the same evaluation times.
    let mut replayed: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for a in r["alerts"].as_array().unwrap() {
        let state = a["state"].as_str().unwrap();
        if state == "pending" {
            continue;
        }
        let inst = a["labels"]["instance"].as_str().unwrap().to_string();
        replayed
            .entry(inst)
            .or_default()
            .push((state.into(), a["at"].as_i64().unwrap()));
    }
    // Both up to 3 s before the replay's end: the live run went on a few seconds more, and a
    // resolution is seen in the live ALERTS series only once a 2 s gap follows it.
    let horizon = t_end - 3000;
    for ev in live.values_mut().chain(replayed.values_mut()) {
        ev.retain(|(_, t)| *t <= horizon);
    }
    assert!(
        live.values().map(Vec::len).sum::<usize>() >= 6,
        "too few transitions live: {live:?}"
    );
    assert_eq!(replayed, live, "replayed alerts differ from the live run");

    // The repairs: the same decisions, evaluation by evaluation, at about the same times (live
    // admission runs a few milliseconds after the evaluation that sent the alert).
    let mut replayed_repairs: Vec<(i64, String, String, String)> = r["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["at"].as_i64().unwrap(),
                d["target"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
                d["guard"].as_str().unwrap_or("").to_string(),
            )
        })
        .filter(|r| r.0 <= t_end - 2000)
        .collect();
    replayed_repairs.sort();
    // Decisions of one evaluation (within half a second of each other) are compared as a set:
    // live, the alerts of one evaluation reach the engine in no fixed order.
    let strip = |v: &[(i64, String, String, String)]| -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let mut batch: Vec<(String, String, String)> = Vec::new();
        let mut last = i64::MIN;
        for (at, a, b, c) in v {
            if at.saturating_sub(last) > 500 {
                batch.sort();
                out.append(&mut batch);
            }
            last = *at;
            batch.push((a.clone(), b.clone(), c.clone()));
        }
        batch.sort();
        out.append(&mut batch);
        out
    };
    assert_eq!(
        strip(&replayed_repairs),
        strip(&live_repairs),
        "guard decisions differ: replayed {replayed_repairs:?}, live {live_repairs:?}, end {t_end}"
    );
    assert!(
        live_repairs.iter().any(|r| r.3 == "rate_limit")
            && live_repairs.iter().any(|r| r.2 == "dry_run"),
        "the run should hold both admitted dry runs and rate-limit vetoes: {live_repairs:?}"
    );
    for (a, b) in replayed_repairs.iter().zip(&live_repairs) {
        assert!((a.0 - b.0).abs() < 1000, "{a:?} vs live {b:?}");
    }

    // Notifications were planned, and the recording rule was backfilled as blocks.
    assert!(
        r["notifications"].as_array().unwrap().len() >= 2,
        "{:#}",
        r["notifications"]
    );
    assert!(r["recorded_samples"].as_u64().unwrap() > 30);
    assert!(stderr.contains("backfill: "), "{stderr}");
    assert!(std::fs::read_dir(&backfill).unwrap().count() >= 1);

    // The table and HTML forms render the same run.
    let html = dir.path().join("replay.html");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args([
            "replay",
            "--from",
            &format!("{:.3}", t0 as f64 / 1000.0),
            "--to",
        ])
        .arg(format!("{:.3}", t_end as f64 / 1000.0))
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .args(["--format", "html", "-o"])
        .arg(&html)
        .status()
        .unwrap();
    assert!(st.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("HighLoad") && page.contains("rate_limit"),
        "{page}"
    );
}
