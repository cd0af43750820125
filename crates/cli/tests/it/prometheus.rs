//! A real Prometheus (Debian package `prometheus`) remote-writes into medic; medic ends up with
//! exactly the samples Prometheus has.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_remote_writes_into_medic() {
    require_binary("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let medic_cfg = dir.path().join("medic.yml");
    std::fs::write(&medic_cfg, "scrape_configs: []\n").unwrap();
    let medic = Medic::start(&dir.path().join("medic-data"), Some(&medic_cfg), &[]);

    let medic_addr = medic.addr.clone();
    let prom = Prometheus::start(
        dir.path(),
        move |port| {
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prom\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
remote_write:\n  - url: http://{medic_addr}/api/v1/write\n    queue_config: {{batch_send_deadline: 1s, max_samples_per_send: 2000}}\n"
            )
        },
        &[],
    );
    let port = prom.port;
    let c = client();
    let metric = "prometheus_tsdb_head_samples_appended_total";

    // Wait until medic has a few seconds of Prometheus's own metrics.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = export(&c, &medic.url(""), &format!("{metric}{{job=\"prom\"}}")).await;
        if got.first().is_some_and(|s| s.timestamps.len() >= 6) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no remote-written samples reached medic; medic log:\n{}",
            medic.stderr()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // For a few series, every sample Prometheus has up to medic's newest must be in medic with
    // the same value, and medic must have nothing Prometheus lacks.
    for selector in [
        format!("{metric}{{job=\"prom\"}}"),
        "up{job=\"prom\"}".to_string(),
        "prometheus_build_info".to_string(),
    ] {
        let mine = export(&c, &medic.url(""), &selector).await;
        assert!(!mine.is_empty(), "{selector} missing in medic");
        for s in &mine {
            let newest = *s.timestamps.last().unwrap();
            let matchers: Vec<String> = s
                .metric
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let q = format!("{}{{{}}}[10m]", s.metric["__name__"], matchers.join(","));
            let resp = c
                .get(format!("http://127.0.0.1:{port}/api/v1/query"))
                .query(&[
                    ("query", q.as_str()),
                    ("time", &format!("{}", newest as f64 / 1000.0)),
                ])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap();
            let theirs: BTreeMap<i64, f64> = resp["data"]["result"][0]["values"]
                .as_array()
                .unwrap_or_else(|| panic!("prometheus answered {resp}"))
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            let ours: BTreeMap<i64, f64> = s
                .timestamps
                .iter()
                .zip(&s.values)
                .map(|(t, v)| (*t, v.as_f64().unwrap()))
                .collect();
            assert!(theirs.len() >= 6, "{q}: {theirs:?}");
            assert_eq!(ours, theirs, "{q}: medic and Prometheus differ");
        }
    }

    // And the set of metric names medic has is what Prometheus has for the job (given time to
    // catch up).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = |base: String| {
            let c = c.clone();
            async move {
                let j = c
                    .get(format!("{base}/api/v1/label/__name__/values"))
                    .query(&[("match[]", "{job=\"prom\"}")])
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap();
                j["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        let (ours, theirs) = (
            names(medic.url("")).await,
            names(format!("http://127.0.0.1:{port}")).await,
        );
        if ours == theirs && ours.len() > 50 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metric names differ: medic {} vs prometheus {}",
            ours.len(),
            theirs.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(prom);
}
