//! Report generation over a month (no peer makes these reports; figures are absolute): `N`
//! series of `up` (100 jobs) every 5 minutes for `days` days, a few percent of them down, are
//! written oldest first and flushed into blocks; then a report over the whole period (SLOs,
//! availability by job, a configured series, alerts, incidents, repairs) is generated through
//! `POST /api/v1/medic/reports/generate`, `reps` times. Reports the median time and medic's
//! peak resident memory while generating.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use medic_server::remote_write::{encode, proto};

use crate::ingest::{self, median, now_ms};
use crate::proc;

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Series of `up`.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Days of data, every 5 minutes.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Reports generated (after one warm-up).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: std::path::PathBuf,
}

const STEP: i64 = 300_000;
const CONFIG: &str = "reports:\n  - name: bench\n    schedule: '@monthly'\n    period: month\n    series:\n      - {name: targets up, query: 'sum(up)'}\n";

/// One hour of every series, in requests of 1,000 series. (Written hour by hour, oldest first:
/// a whole day of one series before the next would be cut into blocks under the next one's
/// feet, and its older samples refused as out of bounds, as Prometheus refuses them.)
fn hour_requests(series: usize, from: i64) -> Vec<Bytes> {
    let mut out = Vec::new();
    for group in (0..series).collect::<Vec<_>>().chunks(1000) {
        let ts: Vec<proto::TimeSeries> = group
            .iter()
            .map(|&i| proto::TimeSeries {
                labels: vec![
                    proto::Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    proto::Label {
                        name: "instance".into(),
                        value: format!("host-{i}:9100"),
                    },
                    proto::Label {
                        name: "job".into(),
                        value: format!("job-{}", i % 100),
                    },
                ],
                samples: (0..12)
                    .map(|k| {
                        let t = from + k * STEP;
                        // Down for an hour now and then: about 3% of the time.
                        let down = (t / 3_600_000 + i as i64 * 7) % 33 == 0;
                        proto::Sample {
                            value: if down { 0.0 } else { 1.0 },
                            timestamp: t,
                        }
                    })
                    .collect(),
                histograms: vec![],
            })
            .collect();
        out.push(Bytes::from(encode(&proto::WriteRequest { timeseries: ts })));
    }
    out
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let server = ingest::start_with("medic", &a.medic, CONFIG)?;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    let end = now_ms() / STEP * STEP;
    let start = end - a.days * 86_400_000;
    let written = Instant::now();
    rt.block_on(async {
        const REMOTE_WRITE: &[(&str, &str)] = &[
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ];
        for h in 0..a.days * 24 {
            let reqs = hour_requests(a.series, start + STEP + h * 3_600_000);
            let url = format!("{}/api/v1/write", server.base);
            ingest::post_concurrently(&c, &url, reqs, 2, REMOTE_WRITE).await?;
        }
        let r = c
            .post(format!("{}/api/v1/admin/tsdb/flush", server.base))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("flush: {}", r.status());
        }
        Ok(())
    })?;
    let samples = a.series as i64 * a.days * 288;
    eprintln!(
        "wrote {samples} samples ({} series × {} days) in {:.1}s",
        a.series,
        a.days,
        written.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut peak = 0u64;
    // What medic holds before any report (the head of the ingest, caches): the report's own
    // memory is the peak above it.
    let before = proc::status_bytes(server.child.id(), "VmRSS:");
    for rep in 0..=a.reps {
        let rss = proc::RssSampler::start(server.child.id(), Duration::from_millis(20));
        let t0 = Instant::now();
        let body = serde_json::json!({"period": format!("{}d", a.days), "name": "bench", "format": "json"});
        let v: serde_json::Value = rt.block_on(async {
            let r = c
                .post(format!("{}/api/v1/medic/reports/generate", server.base))
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("generate: {} {}", r.status(), r.text().await?);
            }
            Ok(r.json().await?)
        })?;
        let took = t0.elapsed().as_secs_f64();
        let p = rss.stop();
        let f = &v["data"]["figures"];
        if !f["errors"].as_array().is_some_and(|e| e.is_empty()) {
            bail!("the report could not compute everything: {}", f["errors"]);
        }
        let jobs = f["availability"].as_array().map_or(0, Vec::len);
        if jobs != 100.min(a.series) {
            bail!("availability lists {jobs} jobs");
        }
        eprintln!("report {rep}: {took:.2}s, peak RSS {} MiB", p >> 20);
        if rep > 0 {
            times.push(took);
            peak = peak.max(p);
        }
    }
    println!(
        "| series | days | samples | report time (median of {}) | RSS before | peak RSS while generating |",
        a.reps
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.1} M | {:.2} s | {} MiB | {} MiB |",
        a.series,
        a.days,
        samples as f64 / 1e6,
        median(times),
        before >> 20,
        peak >> 20
    );
    Ok(())
}
