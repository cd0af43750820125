//! The query benchmark: the ingest workload loaded into each target, then the same golden-signal
//! queries timed on each, instant (at the end of the data) and range (the whole span, 60 s step).

use std::time::{Duration, Instant};

use crate::ingest::{self, median};
use crate::proc;

/// Arguments of `query`.
#[derive(Debug, clap::Args)]
#[group(id = "query_args")]
pub struct Args {
    #[command(flatten)]
    base: ingest::Args,
    /// Timed runs per query (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 9)]
    reps: usize,
}

/// The query set: node and HTTP golden signals over the workload's metrics.
pub const QUERIES: &[&str] = &[
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum by (instance) (rate(http_requests_total{status=\"500\"}[5m])) / sum by (instance) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(10, rate(node_network_receive_bytes_total[5m]))",
    "avg_over_time(node_load1[15m])",
    "predict_linear(node_filesystem_avail_bytes[1h], 4 * 3600)",
    "sum by (mode) (rate(node_cpu_seconds_total[5m] offset 30m))",
    "max_over_time(sum by (job) (rate(http_requests_total[1m]))[30m:1m])",
];

struct Timing {
    target: String,
    query: &'static str,
    kind: &'static str,
    ms: f64,
    series: usize,
}

async fn time_query(
    c: &reqwest::Client,
    url: &str,
    params: &[(&str, String)],
    reps: usize,
) -> anyhow::Result<(f64, usize)> {
    let mut times = Vec::with_capacity(reps);
    let mut series = 0;
    for i in 0..=reps {
        let start = Instant::now();
        let r = c.get(url).query(params).send().await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() || body["status"] != "success" {
            anyhow::bail!("{url} {params:?}: {status} {body}");
        }
        series = body["data"]["result"].as_array().map_or(1, Vec::len);
        if i > 0 {
            times.push(elapsed);
        }
    }
    Ok((median(times), series))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    eprintln!(
        "building workload: {} series × {} h …",
        a.base.series, a.base.hours
    );
    let wl = ingest::build(&a.base);
    let mut timings: Vec<Timing> = Vec::new();
    let mut peaks: Vec<(String, u64)> = Vec::new();
    for target in &a.base.targets {
        eprintln!("{target}: loading {} samples", wl.samples);
        let server = ingest::start(target, &a.base.medic)?;
        let (errors, _) = rt.block_on(ingest::send_all(&server.base, &wl, a.base.concurrency));
        anyhow::ensure!(errors == 0, "{target} refused {errors} requests");
        let c = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(300))
            .build()?;
        if target == "victoriametrics" {
            let url = format!("{}/internal/force_flush", server.base);
            rt.block_on(async { c.get(url).send().await })?;
            std::thread::sleep(Duration::from_secs(2));
        }
        let pid = server.child.id();
        let sampler = proc::RssSampler::start(pid, Duration::from_millis(10));
        for q in QUERIES {
            let instant = [
                ("query", q.to_string()),
                ("time", format!("{}", wl.end as f64 / 1000.0)),
            ];
            let (ms, series) = rt.block_on(time_query(
                &c,
                &format!("{}/api/v1/query", server.base),
                &instant,
                a.reps,
            ))?;
            timings.push(Timing {
                target: target.clone(),
                query: q,
                kind: "instant",
                ms,
                series,
            });
            let range = [
                ("query", q.to_string()),
                (
                    "start",
                    format!("{}", (wl.start + 3_600_000) as f64 / 1000.0),
                ),
                ("end", format!("{}", wl.end as f64 / 1000.0)),
                ("step", "60".to_string()),
                // Evaluation is timed, not medic's result cache (VictoriaMetrics runs with
                // `-search.disableCache`; Prometheus ignores the parameter).
                ("nocache", "1".to_string()),
            ];
            let (ms, series) = rt.block_on(time_query(
                &c,
                &format!("{}/api/v1/query_range", server.base),
                &range,
                a.reps,
            ))?;
            timings.push(Timing {
                target: target.clone(),
                query: q,
                kind: "range",
                ms,
                series,
            });
            eprintln!(
                "  {q}: instant {:.1} ms, range {:.1} ms",
                timings[timings.len() - 2].ms,
                ms
            );
        }
        let sampled = sampler.stop();
        peaks.push((
            target.clone(),
            sampled.max(proc::status_bytes(pid, "VmHWM:")),
        ));
        drop(server);
    }
    report(&a, &wl, &timings, &peaks);
    Ok(())
}

fn report(a: &Args, wl: &ingest::Workload, timings: &[Timing], peaks: &[(String, u64)]) {
    println!("\n{} series × {} h; instant at the end, range over the last {} h at 60 s; median of {} runs (ms)\n", wl.series, a.base.hours, a.base.hours - 1, a.reps);
    let targets = &a.base.targets;
    let get = |t: &str, q: &str, k: &str| {
        timings
            .iter()
            .find(|x| x.target == t && x.query == q && x.kind == k)
    };
    print!("| query | kind |");
    for t in targets {
        print!(" {t} ms |");
    }
    let others: Vec<&String> = targets.iter().filter(|t| *t != "medic").collect();
    for o in &others {
        print!(" medic ÷ {o} |");
    }
    println!();
    print!("|---|---|");
    for _ in targets.iter().chain(others.iter().copied()) {
        print!("---:|");
    }
    println!();
    let mut ratios: Vec<(String, &str, f64)> = Vec::new();
    for q in QUERIES {
        for k in ["instant", "range"] {
            print!("| `{q}` | {k} |");
            for t in targets {
                match get(t, q, k) {
                    Some(x) => print!(" {:.1} ({} series) |", x.ms, x.series),
                    None => print!(" – |"),
                }
            }
            for o in &others {
                if let (Some(m), Some(p)) = (get("medic", q, k), get(o, q, k)) {
                    let r = m.ms / p.ms;
                    ratios.push((o.to_string(), k, r));
                    print!(" {r:.2}× |");
                } else {
                    print!(" – |");
                }
            }
            println!();
        }
    }
    println!();
    for o in &others {
        for k in ["instant", "range"] {
            let v: Vec<f64> = ratios
                .iter()
                .filter(|(p, kind, _)| p == *o && *kind == k)
                .map(|x| x.2)
                .collect();
            println!("median latency ratio medic ÷ {o}, {k}: {:.2}×", median(v));
        }
    }
    println!("\n| target | peak RSS during queries MiB |\n|---|---:|");
    for (t, b) in peaks {
        println!("| {t} | {:.0} |", *b as f64 / (1 << 20) as f64);
    }
}
