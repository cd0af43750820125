//! The dashboard benchmark: what the range-query result cache is for. Each target gets the
//! workload's history and fresh samples every 5 s, as scrapes would bring them; a dashboard of
//! golden-signal panels, each a range query over the last hour at a 15 s step aligned as
//! Grafana aligns it, refreshes every 15 s of real time. Each refresh is timed with the
//! target's cache and, for medic and VictoriaMetrics, again with `nocache=1`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::ingest::{self, median, now_ms};
use crate::proc;
use crate::rulebench::{load_history, spawn_feeder, Rt};
use crate::workload;

/// Arguments of `dashboard`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of series.
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Hours of history before the dashboard starts.
    #[arg(long, default_value_t = 2)]
    hours: i64,
    /// Targets, in order: medic, prometheus, victoriametrics.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "medic,prometheus,victoriametrics"
    )]
    targets: Vec<String>,
    /// Refreshes timed per target (after one that fills the caches).
    #[arg(long, default_value_t = 16)]
    refreshes: usize,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 15)]
    every: u64,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: std::path::PathBuf,
}

/// The dashboard's panels: the range queries of issue 19's table, and an error ratio.
pub const PANELS: &[&str] = &[
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(10, rate(node_network_receive_bytes_total[5m]))",
    "sum by (instance) (rate(http_requests_total{status=\"500\"}[5m])) / sum by (instance) (rate(http_requests_total[5m]))",
];

const WINDOW_MS: i64 = 3_600_000;
const STEP_MS: i64 = 15_000;

struct Outcome {
    target: String,
    /// Per timed refresh: all panels, ms; with the cache and with `nocache=1` (if it has one).
    cached: Vec<f64>,
    uncached: Vec<f64>,
    first: f64,
    peak_rss: u64,
}

/// Times one refresh: every panel once, in order, over the window ending now.
async fn refresh(c: &reqwest::Client, base: &str, nocache: bool) -> anyhow::Result<f64> {
    let end = now_ms() / STEP_MS * STEP_MS;
    let start = end - WINDOW_MS;
    let started = Instant::now();
    for q in PANELS {
        let mut params = vec![
            ("query", q.to_string()),
            ("start", format!("{}", start as f64 / 1000.0)),
            ("end", format!("{}", end as f64 / 1000.0)),
            ("step", format!("{}", STEP_MS / 1000)),
        ];
        if nocache {
            params.push(("nocache", "1".to_string()));
        }
        let r = c
            .get(format!("{base}/api/v1/query_range"))
            .query(&params)
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await?;
        if !status.is_success() || body["status"] != "success" {
            bail!("{base} {q}: {status} {body}");
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?;
    let specs = workload::series(a.series, 42);
    let mut outcomes = Vec::new();
    for target in &a.targets {
        let server = ingest::start_full(target, &a.medic, "", true)?;
        let live_span = (a.refreshes as i64 + 4) * a.every as i64 * 1000 + 300_000;
        let t0 = now_ms();
        eprintln!("{target}: generating {} h of history …", a.hours);
        let data: Vec<Vec<medic_model::Sample>> = specs
            .iter()
            .map(|s| s.samples(t0 - a.hours * 3_600_000, t0 + live_span))
            .collect();
        let t0 = now_ms();
        load_history(&rt, &c, &server.base, &specs, &data, t0, a.hours)?;
        let (feeding, feeder) = spawn_feeder(&rt, &c, &server.base, a.series, data, t0);
        let outcome = watch_dashboard(&rt, &c, &server, target, &a)?;
        feeding.store(false, Ordering::SeqCst);
        let _ = rt.block_on(feeder);
        eprintln!(
            "{target}: first {:.0} ms, then median {:.1} ms cached, {:.1} ms uncached",
            outcome.first,
            median(outcome.cached.clone()),
            median(outcome.uncached.clone())
        );
        outcomes.push(outcome);
        drop(server);
    }
    report(&a, &outcomes);
    Ok(())
}

fn watch_dashboard(
    rt: &Rt,
    c: &reqwest::Client,
    server: &ingest::Server,
    target: &str,
    a: &Args,
) -> anyhow::Result<Outcome> {
    let has_cache = target != "prometheus";
    let pid = server.child.id();
    let sampler = proc::RssSampler::start(pid, Duration::from_millis(20));
    let first = rt.block_on(refresh(c, &server.base, false))?;
    let (mut cached, mut uncached) = (Vec::new(), Vec::new());
    for i in 0..a.refreshes {
        std::thread::sleep(Duration::from_secs(a.every));
        // Alternate which goes first, so neither always finds the other's pages warm.
        let order = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for nocache in order {
            if nocache && !has_cache {
                continue;
            }
            let ms = rt.block_on(refresh(c, &server.base, nocache))?;
            if nocache { &mut uncached } else { &mut cached }.push(ms);
        }
    }
    let peak_rss = sampler.stop();
    Ok(Outcome {
        target: target.to_string(),
        cached,
        uncached,
        first,
        peak_rss,
    })
}

fn report(a: &Args, outcomes: &[Outcome]) {
    println!(
        "\n{} series, {} h of history plus live samples; {} panels, each a range query over the last hour at a 15 s step; refreshed every {} s, {} timed refreshes (median ms per refresh, all panels)\n",
        a.series,
        a.hours,
        PANELS.len(),
        a.every,
        a.refreshes
    );
    println!(
        "| target | first refresh | refresh, cache on | refresh, `nocache=1` | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|");
    for o in outcomes {
        let un = if o.uncached.is_empty() {
            "– (no cache)".to_string()
        } else {
            format!("{:.1}", median(o.uncached.clone()))
        };
        println!(
            "| {} | {:.1} | {:.1} | {un} | {:.0} |",
            o.target,
            o.first,
            median(o.cached.clone()),
            o.peak_rss as f64 / (1 << 20) as f64
        );
    }
    let get = |t: &str| outcomes.iter().find(|o| o.target == t);
    if let Some(m) = get("medic") {
        let mc = median(m.cached.clone());
        println!();
        if !m.uncached.is_empty() {
            println!(
                "medic, cache on ÷ cache off: {:.2}×",
                mc / median(m.uncached.clone())
            );
        }
        for o in outcomes.iter().filter(|o| o.target != "medic") {
            println!(
                "medic (cache on) ÷ {} (as it runs by default): {:.2}×",
                o.target,
                mc / median(o.cached.clone())
            );
        }
    }
}
