//! Downsampled tiers: disk use and 30-day query latency with and without them, on the
//! benchmark workload stored in two TSDBs (in process; raw samples every 60 s for 60 days).

use std::time::Instant;

use medic_model::{Appendable, Labels};
use medic_promql::{Engine, EngineOptions};
use medic_tsdb::{Db, FsyncPolicy, Metrics, Options, Tier};

use crate::workload;

/// Arguments of `tiers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Series to generate.
    #[arg(long, default_value_t = 200)]
    series: usize,
    /// Days of history.
    #[arg(long, default_value_t = 60)]
    days: i64,
    /// Repetitions of each query (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn open(dir: &std::path::Path, tiers: bool) -> anyhow::Result<std::sync::Arc<Db>> {
    let opts = Options {
        fsync: FsyncPolicy::Never,
        retention_ms: 0,
        tiers: if tiers {
            vec![
                Tier {
                    resolution_ms: 5 * MIN,
                    retention_ms: 0,
                },
                Tier {
                    resolution_ms: 60 * MIN,
                    retention_ms: 0,
                },
            ]
        } else {
            Vec::new()
        },
        ..Options::default()
    };
    Ok(Db::open(dir, opts, Metrics::default())?)
}

fn bytes(db: &Db, resolution: Option<i64>) -> u64 {
    db.blocks()
        .iter()
        .filter(|b| resolution.is_none_or(|r| b.meta().resolution_ms == r))
        .map(|b| b.bytes())
        .sum()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let specs = workload::series(a.series, 42);
    let end = 1_767_225_600_000i64 + a.days * DAY;
    let start = end - a.days * DAY;
    let tmp = tempfile::tempdir()?;
    let plain = open(&tmp.path().join("plain"), false)?;
    let tiered = open(&tmp.path().join("tiered"), true)?;
    let labels: Vec<Labels> = specs
        .iter()
        .map(|s| Labels::from_pairs(s.labels.iter().map(|(a, b)| (a.as_str(), b.as_str()))))
        .collect();
    // A day at a time for every series, oldest first, one sample a minute.
    let mut samples = 0usize;
    for d in 0..a.days {
        let (from, to) = (start + d * DAY, start + (d + 1) * DAY);
        let data: Vec<Vec<medic_model::Sample>> = specs
            .iter()
            .map(|s| s.samples(from, to).into_iter().step_by(4).collect())
            .collect();
        for db in [&plain, &tiered] {
            let mut app = db.appender();
            for (l, s) in labels.iter().zip(&data) {
                for x in s {
                    app.append_labels(l, x.t, x.v)?;
                }
            }
            app.commit()?;
        }
        samples += data.iter().map(Vec::len).sum::<usize>();
    }
    plain.flush()?;
    tiered.flush()?;
    println!(
        "{} series, {} raw samples over {} days, one a minute\n",
        labels.len(),
        samples,
        a.days
    );
    println!("| store | raw blocks | 5m tier | 1h tier | total |");
    println!("|---|---:|---:|---:|---:|");
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
    println!(
        "| tiers off | {} | - | - | {} |",
        mib(bytes(&plain, Some(0))),
        mib(bytes(&plain, None))
    );
    println!(
        "| tiers on | {} | {} | {} | {} |\n",
        mib(bytes(&tiered, Some(0))),
        mib(bytes(&tiered, Some(5 * MIN))),
        mib(bytes(&tiered, Some(60 * MIN))),
        mib(bytes(&tiered, None))
    );
    let queries = [
        "sum(rate(http_requests_total[1d]))",
        "max(max_over_time(node_load1[1d]))",
        "avg(avg_over_time(node_memory_MemAvailable_bytes[1d]))",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1d])))",
    ];
    println!("30 days at a 1-day step, median of {} (ms):\n", a.reps);
    println!("| query | raw | tiers (auto: 1h) | ratio | samples read raw / tiers |");
    println!("|---|---:|---:|---:|---:|");
    let q_end = end - DAY;
    for q in queries {
        let time = |db: &Db, res: Option<i64>| -> anyhow::Result<(f64, usize)> {
            let e = Engine::new(EngineOptions {
                max_source_resolution_ms: res,
                ..EngineOptions::default()
            });
            let mut t = Vec::new();
            let mut points = 0;
            for _ in 0..a.reps {
                let t0 = Instant::now();
                let r = e.range(db, q, q_end - 30 * DAY, q_end, DAY)?;
                t.push(t0.elapsed().as_secs_f64() * 1000.0);
                points = r.iter().map(|s| s.samples.len()).sum();
            }
            t.sort_by(f64::total_cmp);
            Ok((t[t.len() / 2], points))
        };
        let (raw, n1) = time(&plain, Some(0))?;
        let (auto, n2) = time(&tiered, None)?;
        anyhow::ensure!(n1 == n2, "{q}: {n1} points raw, {n2} from tiers");
        println!(
            "| `{q}` | {raw:.1} | {auto:.1} | {:.3}× | {} points each |",
            auto / raw,
            n1
        );
    }
    Ok(())
}
