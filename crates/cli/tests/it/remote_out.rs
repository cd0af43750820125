//! Remote write out against real receivers: a VictoriaMetrics (Debian `victoria-metrics`) that
//! is stopped for a minute while medic keeps ingesting — and medic itself is killed with
//! `kill -9` in that minute and started again — and a Prometheus 2.42 (`prometheus`, with its
//! remote write receiver) that stays up. Every sample medic acknowledged reaches both.

use std::collections::BTreeSet;
use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn medic_config(dir: &Path, vm_port: u16, prom_port: u16) -> std::path::PathBuf {
    let cfg = dir.join("medic.yml");
    std::fs::write(
        &cfg,
        format!(
            "scrape_configs: []\nremote_write:\n  - url: http://127.0.0.1:{vm_port}/api/v1/write\n    name: vm\n    queue_config: {{min_backoff: 50ms, max_backoff: 1s, max_shards: 2}}\n  - url: http://127.0.0.1:{prom_port}/api/v1/write\n    name: prometheus\n    write_relabel_configs: [{{source_labels: [__name__], regex: 'dropped_.*', action: drop}}]\n"
        ),
    )
    .unwrap();
    cfg
}

/// Posts `live{job="out"}` to whatever medic `url` names every 20 ms until `stop`, and a
/// `dropped_here` series beside it; returns the timestamps medic acknowledged.
fn ingest(url: Arc<Mutex<String>>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<i64>> {
    tokio::spawn(async move {
        let c = client();
        let mut acked = Vec::new();
        let mut v = 0.0;
        while !stop.load(Ordering::Relaxed) {
            let t = now_ms();
            v += 1.0;
            let series = |name: &str| {
                (
                    vec![
                        ("__name__".to_string(), name.to_string()),
                        ("job".to_string(), "out".to_string()),
                    ],
                    vec![(t, v)],
                )
            };
            let body = write_request(&[series("live"), series("dropped_here")]);
            let base = url.lock().unwrap().clone();
            if let Ok(r) = post_write(&c, &base, body).await {
                if r.status().is_success() {
                    acked.push(t);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acked
    })
}

/// The timestamps of `live{job="out"}` VictoriaMetrics holds.
async fn in_victoria_metrics(c: &reqwest::Client, port: u16) -> BTreeSet<i64> {
    let Ok(r) = c
        .get(format!(
            "http://127.0.0.1:{port}/api/v1/export?match[]=live%7Bjob%3D%22out%22%7D"
        ))
        .send()
        .await
    else {
        return BTreeSet::new();
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| {
            v["timestamps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.as_i64())
        })
        .collect()
}

/// The timestamps of `name{job="out"}` Prometheus holds (the last 15 minutes).
async fn in_prometheus(c: &reqwest::Client, prom: &Prometheus, name: &str) -> BTreeSet<i64> {
    let v = get_json(
        c,
        &format!(
            "{}/api/v1/query?query={name}%7Bjob%3D%22out%22%7D%5B15m%5D",
            prom.url()
        ),
    )
    .await;
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[0].as_f64())
        .map(|s| (s * 1000.0).round() as i64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_sample_reaches_a_receiver_that_was_down_for_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let vm_port = free_port();
    let vm_data = dir.path().join("vm");
    let mut vm = victoria_metrics(&vm_data, vm_port);
    let prom = Prometheus::start(
        dir.path(),
        |_| "global: {}\n".into(),
        &["--web.enable-remote-write-receiver"],
    );
    let cfg = medic_config(dir.path(), vm_port, prom.port);
    let data = dir.path().join("data");
    let medic = Medic::start(&data, Some(&cfg), &[]);
    let url = Arc::new(Mutex::new(medic.url("")));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = ingest(url.clone(), stop.clone());

    tokio::time::sleep(Duration::from_secs(5)).await;
    // The receiver goes away for a minute; medic goes on acknowledging. (Stopped with
    // SIGTERM: VictoriaMetrics killed with SIGKILL loses the last seconds it acknowledged
    // itself, which is its durability, not medic's.)
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(vm.id() as i32, libc::SIGTERM) };
    vm.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // medic itself crashes in the middle of it, and comes back on the same data.
    medic.kill9();
    let medic = Medic::start(&data, Some(&cfg), &[]);
    *url.lock().unwrap() = medic.url("");
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut vm = victoria_metrics(&vm_data, vm_port);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let acked: BTreeSet<i64> = writer.await.unwrap().into_iter().collect();
    assert!(acked.len() > 1000, "{} samples acknowledged", acked.len());

    // Everything arrives: VictoriaMetrics after its outage, Prometheus all along.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut in_vm, mut in_prom) = (BTreeSet::new(), BTreeSet::new());
    while std::time::Instant::now() < deadline {
        in_vm = in_victoria_metrics(&c, vm_port).await;
        in_prom = in_prometheus(&c, &prom, "live").await;
        if acked.is_subset(&in_vm) && acked.is_subset(&in_prom) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let lost_vm: Vec<_> = acked.difference(&in_vm).take(5).collect();
    let lost_prom: Vec<_> = acked.difference(&in_prom).take(5).collect();
    assert!(
        lost_vm.is_empty() && lost_prom.is_empty(),
        "acknowledged but not delivered: {} to VictoriaMetrics (first {lost_vm:?}), {} to Prometheus (first {lost_prom:?}); medic log:\n{}",
        acked.difference(&in_vm).count(),
        acked.difference(&in_prom).count(),
        medic.stderr()
    );
    // write_relabel_configs kept the dropped_ series from Prometheus only.
    assert!(in_prometheus(&c, &prom, "dropped_here").await.is_empty());
    // The queue said what happened: retries while the receiver was away, nothing dropped.
    let m = metrics_text(&c, &medic).await;
    assert!(
        counter(&m, "medic_remote_write_retries_total{remote_name=\"vm\"") > 0.0,
        "{m}"
    );
    assert_eq!(
        counter(&m, "medic_remote_write_samples_dropped_total{"),
        0.0,
        "{m}"
    );
    let _ = vm.kill();
    let _ = vm.wait();
}
