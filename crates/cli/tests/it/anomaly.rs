//! Anomaly rules in the running server: warmed from history already in the store, bands
//! queryable through the query API, alerts, the anomalies/baseline/report APIs and CLI,
//! detectors saved at shutdown and restored at start; and `medic anomaly nab`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const RULES: &str = r#"groups:
- name: latency
  interval: 1s
  rules:
  - anomaly: LatencyAnomaly
    expr: latency_ms
    sensitivity: high
    settle: 5s
    history: 30m
    labels: {severity: warning}
    annotations:
      summary: '{{ $labels.service }} latency is unusual (score {{ $value }})'
"#;

fn latency(points: &[(i64, f64)]) -> Vec<u8> {
    write_request(&[(
        vec![
            ("__name__".into(), "latency_ms".into()),
            ("service".into(), "api".into()),
        ],
        points.to_vec(),
    )])
}

/// A value around 100 ms that wobbles by ±3 with a period of 7 points.
fn normal(i: i64) -> f64 {
    100.0 + ((i * 5) % 7) as f64 - 3.0
}

fn medic_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomaly_rules_warm_fire_answer_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let cfg = dir.path().join("medic.yml");
    std::fs::write(&cfg, "scrape_configs: []\nrule_files: ['rules/*.yml']\n").unwrap();
    let data = dir.path().join("data");
    let medic = Medic::start(&data, Some(&cfg), &[]);
    let c = client();
    let base = medic.url("");

    // 20 minutes of history, one point a second, before the rule exists.
    let start = now_ms() - 20 * 60_000;
    let history: Vec<(i64, f64)> = (0..1200).map(|i| (start + i * 1000, normal(i))).collect();
    let r = post_write(&c, &base, latency(&history)).await.unwrap();
    assert!(r.status().is_success());
    std::fs::write(dir.path().join("rules/latency.yml"), RULES).unwrap();
    let r = c.post(medic.url("/-/reload")).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // Live: normal for a few seconds, then 400 ms.
    let mut i = 1200;
    let live = |c: reqwest::Client, base: String, v: f64| async move {
        let r = post_write(&c, &base, latency(&[(now_ms(), v)]))
            .await
            .unwrap();
        assert!(r.status().is_success());
    };
    for _ in 0..4 {
        live(c.clone(), base.clone(), normal(i)).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    // Warmed: the detector has seen the history, not only the live points.
    let b = get_json(&c, &medic.url("/api/v1/medic/anomalies/baseline")).await;
    let points = b["data"][0]["points"].as_u64().unwrap();
    assert!(points > 1000, "not warmed from history: {b}");
    assert_eq!(b["data"][0]["labels"]["service"], "api", "{b}");
    let band = &b["data"][0]["last"];
    assert!(
        band["lower"].as_f64().unwrap() < 100.0 && band["upper"].as_f64().unwrap() > 100.0,
        "{b}"
    );
    // Nothing anomalous in the normal stretch.
    let a = get_json(&c, &medic.url("/api/v1/medic/anomalies")).await;
    assert_eq!(a["data"], Value::Array(vec![]), "{a}");

    let pusher = {
        let (c, base) = (c.clone(), base.clone());
        tokio::spawn(async move {
            for _ in 0..8 {
                live(c.clone(), base.clone(), 400.0).await;
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        })
    };
    let event = eventually("an anomaly", &medic, || async {
        let a = get_json(&c, &medic.url("/api/v1/medic/anomalies?min_score=0.25")).await;
        a["data"].as_array().and_then(|v| v.first().cloned())
    })
    .await;
    assert_eq!(event["rule"], "LatencyAnomaly", "{event}");
    assert_eq!(event["labels"]["service"], "api", "{event}");
    assert_eq!(event["value"], 400.0, "{event}");
    assert!(event["upper"].as_f64().unwrap() < 400.0, "{event}");
    // It fires as an alert with the rule's labels and annotations.
    let alert = eventually("the alert", &medic, || async {
        let a = get_json(&c, &medic.url("/api/v1/alerts")).await;
        a["data"]["alerts"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["state"] == "firing").cloned())
    })
    .await;
    assert_eq!(alert["labels"]["alertname"], "LatencyAnomaly", "{alert}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("api latency is unusual"),
        "{alert}"
    );
    pusher.await.unwrap();
    // The band through the query API, as a graph would draw it.
    let q = get_json(
        &c,
        &medic.url("/api/v1/query?query=anomaly_upper%7Banomaly%3D%22LatencyAnomaly%22%7D"),
    )
    .await;
    assert_eq!(q["data"]["result"][0]["metric"]["service"], "api", "{q}");
    let q = get_json(
        &c,
        &medic.url("/api/v1/query?query=max_over_time(anomaly_score%5B1m%5D)"),
    )
    .await;
    let peak: f64 = q["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak >= 0.25, "{q}");
    // The report, and the CLI over the same APIs.
    let rep = get_json(&c, &medic.url("/api/v1/medic/anomalies/report")).await;
    assert_eq!(rep["data"][0]["rule"], "LatencyAnomaly", "{rep}");
    assert_eq!(rep["data"][0]["series"], 1, "{rep}");
    let out = medic_cli(&["anomalies", "--url", &base]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("LatencyAnomaly") && text.contains("service=\"api\""),
        "{text}"
    );
    let out = medic_cli(&["anomalies", "report", "--url", &base]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("LatencyAnomaly"),
        "{out:?}"
    );
    let out = medic_cli(&["anomalies", "baseline", "--url", &base, "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert!(v["data"][0]["baseline"]["spread"].as_f64().is_some(), "{v}");
    // Bad input to the API says what is wrong.
    let r = c
        .get(medic.url("/api/v1/medic/anomalies?min_score=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("min_score"));

    // A clean stop saves the detectors; the next start restores them (not re-warmed).
    let before = get_json(&c, &medic.url("/api/v1/medic/anomalies/baseline")).await["data"][0]
        ["points"]
        .as_u64()
        .unwrap();
    assert!(medic.terminate().success());
    assert!(data.join("anomaly-detectors.json").exists());
    let medic = Medic::start(&data, Some(&cfg), &[]);
    let after = eventually("restored detectors", &medic, || async {
        let b = get_json(&c, &medic.url("/api/v1/medic/anomalies/baseline")).await;
        b["data"][0]["points"].as_u64()
    })
    .await;
    assert!(after >= before, "{after} < {before}");
    assert!(
        medic.stderr().contains("anomaly detectors restored"),
        "{}",
        medic.stderr()
    );
}

#[test]
fn nab_runs_and_scores_from_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/nab");
    let out = tempfile::tempdir().unwrap();
    let run = medic_cli(&[
        "anomaly",
        "nab",
        root.join("data").to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(run.status.success(), "{run:?}");
    let v: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["files"], 41);
    assert_eq!(v["windows"], 86);
    assert_eq!(v["no_anomaly_alerts"], 0, "{v}");
    assert_eq!(v["scores"].as_array().unwrap().len(), 9, "{v}");
    assert!(out
        .path()
        .join("medic/realKnownCause/medic_nyc_taxi.csv")
        .exists());
    // The written files score the same through `medic anomaly score`.
    let score = medic_cli(&[
        "anomaly",
        "score",
        out.path().to_str().unwrap(),
        "--windows",
        root.join("labels/combined_windows.json").to_str().unwrap(),
        "--json",
    ]);
    assert!(score.status.success(), "{score:?}");
    let s: Value = serde_json::from_slice(&score.stdout).unwrap();
    let rows_score = |v: &Value| {
        v["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["profile"] == "standard" && r["method"].as_str().unwrap().contains("every row")
            })
            .unwrap()["score"]
            .as_f64()
            .unwrap()
    };
    assert!((rows_score(&s) - rows_score(&v)).abs() < 0.05, "{s} vs {v}");
    // A directory that is not NAB data is an error that says so.
    let bad = medic_cli(&[
        "anomaly",
        "nab",
        out.path().to_str().unwrap(),
        "--out",
        "/tmp/x",
    ]);
    assert!(!bad.status.success());
}
