//! The rules benchmark: the workload's history loaded into each target, then the same rule set
//! (see [`crate::ruleset`]) loaded by reload while fresh samples keep arriving every 5 s, as
//! from scrapes; each group's evaluation time read from the target's own metrics
//! (`prometheus_rule_group_last_duration_seconds`, `medic_rule_group_last_duration_seconds`).
//! Reported per evaluation round (the sum over groups, i.e. the work of one interval), median
//! over rounds, side by side.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use medic_server::remote_write::{encode, proto};

use crate::ingest::{self, median, now_ms};
use crate::{proc, ruleset, workload};

/// Arguments of `rules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of series.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Hours of history loaded before the rules start.
    #[arg(long, default_value_t = 1)]
    hours: i64,
    /// Targets, in order: medic, prometheus.
    #[arg(long, value_delimiter = ',', default_value = "medic,prometheus")]
    targets: Vec<String>,
    /// Evaluation interval of every group.
    #[arg(long, default_value = "30s")]
    interval: String,
    /// Evaluation rounds measured per target (after one unmeasured round).
    #[arg(long, default_value_t = 6)]
    rounds: usize,
    /// The medic binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/medic")]
    medic: std::path::PathBuf,
    /// Print the rule file and exit.
    #[arg(long)]
    print_rules: bool,
}

struct Outcome {
    target: String,
    /// Per round: summed group durations (s).
    rounds: Vec<f64>,
    /// Per group: median duration (s).
    groups: BTreeMap<String, f64>,
    cpu_seconds: f64,
    peak_rss: u64,
    unhealthy: Vec<String>,
    missed: f64,
    recorded: f64,
}

/// Requests of `batch` series each carrying their samples in `[from, to)`.
fn requests(
    specs: &[workload::SeriesSpec],
    data: &[Vec<medic_model::Sample>],
    from: i64,
    to: i64,
    batch: usize,
) -> Vec<Bytes> {
    let mut out = Vec::new();
    for group in (0..specs.len()).collect::<Vec<_>>().chunks(batch) {
        let ts: Vec<proto::TimeSeries> = group
            .iter()
            .filter_map(|&i| {
                let mut samples = data[i]
                    .iter()
                    .filter(|s| s.t >= from && s.t < to)
                    .peekable();
                samples.peek()?;
                Some(ingest::time_series(&specs[i], samples))
            })
            .collect();
        if !ts.is_empty() {
            out.push(Bytes::from(encode(&proto::WriteRequest { timeseries: ts })));
        }
    }
    out
}

async fn post_all(c: &reqwest::Client, base: &str, reqs: Vec<Bytes>) -> anyhow::Result<()> {
    const REMOTE_WRITE: &[(&str, &str)] = &[
        ("Content-Encoding", "snappy"),
        ("Content-Type", "application/x-protobuf"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];
    ingest::post_concurrently(c, &format!("{base}/api/v1/write"), reqs, 4, REMOTE_WRITE).await
}

/// `name{labels} value` lines of a metrics page whose name is `name`, as (labels, value).
fn metric_lines<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, v) = rest.rsplit_once(' ')?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels, v.parse().ok()?))
        })
        .collect()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (rules, n_rules) = ruleset::rule_file(&a.interval);
    if a.print_rules {
        print!("{rules}");
        return Ok(());
    }
    let interval_s = medic_model::parse_duration(&a.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?
        .as_secs_f64();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let c = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?;
    let specs = workload::series(a.series, 42);
    eprintln!("{} rules; {} series", n_rules, specs.len());
    let mut outcomes = Vec::new();
    for target in &a.targets {
        let prefix = match target.as_str() {
            "medic" => "medic",
            "prometheus" => "prometheus",
            other => bail!("unknown target {other:?}; use medic or prometheus"),
        };
        let rules_dir = tempfile::tempdir()?;
        let server = ingest::start_with(
            target,
            &a.medic,
            &format!("rule_files: ['{}/*.yml']\n", rules_dir.path().display()),
        )?;
        // History up to now, and what the scrapes of the next minutes would bring.
        let live_span = ((a.rounds + 3) as f64 * interval_s * 1000.0) as i64 + 120_000;
        let t0 = now_ms();
        eprintln!("{target}: generating {} h of history …", a.hours);
        let data: Vec<Vec<medic_model::Sample>> = specs
            .iter()
            .map(|s| s.samples(t0 - a.hours * 3_600_000, t0 + live_span))
            .collect();
        let t0 = now_ms();
        eprintln!("{target}: loading history …");
        let load_start = Instant::now();
        // In time order, 5 minutes at a time, as it would have arrived (both stores refuse
        // samples far behind their newest).
        load_history(&rt, &c, &server.base, &specs, &data, t0, a.hours)?;
        eprintln!(
            "{target}: loaded in {:.0} s",
            load_start.elapsed().as_secs_f64()
        );

        // Fresh samples every 5 s from here on, as scrapes would bring them.
        let (feeding, feeder) = spawn_feeder(&rt, &c, &server.base, a.series, data, t0);

        std::fs::write(rules_dir.path().join("rules.yml"), &rules)?;
        let reload = rt.block_on(async {
            let r = c.post(format!("{}/-/reload", server.base)).send().await?;
            Ok::<_, reqwest::Error>((r.status(), r.text().await?))
        })?;
        if !reload.0.is_success() {
            bail!("{target}: reload failed: {} {}", reload.0, reload.1);
        }
        let pid = server.child.id();
        let cpu_before = proc::cpu_seconds(pid);
        let eval_start = Instant::now();

        let (seen, missed, peak_rss) =
            watch_groups(&rt, &c, &server.base, pid, prefix, &a, interval_s, target)?;
        let cpu_seconds = proc::cpu_seconds(pid) - cpu_before;
        let eval_wall = eval_start.elapsed().as_secs_f64();
        let unhealthy = unhealthy_rules(&rt, &c, &server.base)?;
        // What the recording rules produced, to check both did the same work.
        let recorded = recorded_series(&rt, &c, &server.base)?;
        feeding.store(false, Ordering::SeqCst);
        let _ = rt.block_on(feeder);
        let (rounds, groups) = per_round(&seen, a.rounds);
        eprintln!(
            "{target}: rounds {:?} s; {cpu_seconds:.1} CPU-s over {eval_wall:.0} s",
            rounds
        );
        outcomes.push(Outcome {
            target: target.clone(),
            rounds,
            groups,
            cpu_seconds: cpu_seconds / eval_wall * interval_s,
            peak_rss,
            unhealthy,
            missed,
            recorded,
        });
        drop(server);
    }
    report(&a, n_rules, &outcomes);
    Ok(())
}

pub(crate) type Rt = tokio::runtime::Runtime;

/// Per rule group: evaluation time (ms) → duration (s).
type Evaluations = HashMap<String, BTreeMap<i64, f64>>;

/// Loads the history in time order, 5 minutes at a time, as it would have arrived (both stores
/// refuse samples far behind their newest).
pub(crate) fn load_history(
    rt: &Rt,
    c: &reqwest::Client,
    base: &str,
    specs: &[workload::SeriesSpec],
    data: &[Vec<medic_model::Sample>],
    t0: i64,
    hours: i64,
) -> anyhow::Result<()> {
    let mut from = t0 - hours * 3_600_000 - 60_000;
    while from < t0 {
        let to = (from + 300_000).min(t0);
        rt.block_on(post_all(c, base, requests(specs, data, from, to, 2000)))?;
        from = to;
    }
    Ok(())
}

/// Fresh samples every 5 s from `t0` on, as scrapes would bring them, until the flag drops.
pub(crate) fn spawn_feeder(
    rt: &Rt,
    c: &reqwest::Client,
    base: &str,
    series: usize,
    data: Vec<Vec<medic_model::Sample>>,
    t0: i64,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (feeding, c, base) = (feeding.clone(), c.clone(), base.to_string());
        let specs = workload::series(series, 42);
        let data = Arc::new(data);
        rt.spawn(async move {
            let mut sent_to = t0;
            while feeding.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = now_ms();
                let reqs = requests(&specs, &data, sent_to, now, 5000);
                sent_to = now;
                if let Err(e) = post_all(&c, &base, reqs).await {
                    eprintln!("feeding {base}: {e}");
                }
            }
        })
    };
    (feeding, feeder)
}

/// Each group's (evaluation time → duration) from `/metrics`, until every group has
/// `rounds + 1` evaluations; the iterations missed and the peak RSS.
#[allow(clippy::too_many_arguments)]
fn watch_groups(
    rt: &Rt,
    c: &reqwest::Client,
    base: &str,
    pid: u32,
    prefix: &str,
    a: &Args,
    interval_s: f64,
    target: &str,
) -> anyhow::Result<(Evaluations, f64, u64)> {
    let mut peak_rss = 0;
    // Each group's (evaluation time → duration), until every group has rounds+1.
    let mut seen: HashMap<String, BTreeMap<i64, f64>> = HashMap::new();
    let deadline =
        Instant::now() + Duration::from_secs_f64(interval_s * (a.rounds as f64 + 4.0) + 120.0);
    let dur_name = format!("{prefix}_rule_group_last_duration_seconds");
    let ts_name = format!("{prefix}_rule_group_last_evaluation_timestamp_seconds");
    let mut missed;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        peak_rss = peak_rss.max(proc::status_bytes(pid, "VmRSS:"));
        let text = rt.block_on(async {
            c.get(format!("{}/metrics", base))
                .send()
                .await?
                .text()
                .await
        })?;
        let durs: HashMap<&str, f64> = metric_lines(&text, &dur_name).into_iter().collect();
        for (labels, ts) in metric_lines(&text, &ts_name) {
            if ts <= 0.0 {
                continue;
            }
            if let Some(d) = durs.get(labels) {
                seen.entry(labels.to_string())
                    .or_default()
                    .insert((ts * 1000.0) as i64, *d);
            }
        }
        missed = metric_lines(
            &text,
            &format!("{prefix}_rule_group_iterations_missed_total"),
        )
        .iter()
        .map(|x| x.1)
        .sum();
        let groups_done = seen.len() >= 7 && seen.values().all(|m| m.len() > a.rounds);
        if groups_done {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{target}: groups did not complete {} evaluations in time: {:?}",
                a.rounds + 1,
                seen.iter().map(|(g, m)| (g, m.len())).collect::<Vec<_>>()
            );
        }
    }
    Ok((seen, missed, peak_rss))
}

fn unhealthy_rules(rt: &Rt, c: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let rules_json: serde_json::Value = rt.block_on(async {
        c.get(format!("{base}/api/v1/rules"))
            .send()
            .await?
            .json()
            .await
    })?;
    let mut unhealthy = Vec::new();
    for g in rules_json["data"]["groups"]
        .as_array()
        .context("rules API")?
    {
        for r in g["rules"].as_array().context("rules API")? {
            if r["health"] != "ok" {
                unhealthy.push(format!("{}: {}", r["name"], r["lastError"]));
            }
        }
    }
    Ok(unhealthy)
}

/// What the recording rules produced, to check both did the same work.
fn recorded_series(rt: &Rt, c: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let recorded: serde_json::Value = rt.block_on(async {
        c.get(format!("{}/api/v1/query", base))
            .query(&[("query", "count({__name__=~\".+:.+\"})")])
            .send()
            .await?
            .json()
            .await
    })?;
    let recorded: f64 = recorded["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok(recorded)
}

/// Round k is every group's k-th evaluation (the first, which restores state, skipped); and
/// each group's median.
fn per_round(seen: &Evaluations, n: usize) -> (Vec<f64>, BTreeMap<String, f64>) {
    // Round k is every group's k-th evaluation (the first, which restores state, skipped).
    let rounds: Vec<f64> = (1..=n)
        .map(|k| {
            seen.values()
                .map(|m| m.values().nth(k).unwrap_or(&0.0))
                .sum()
        })
        .collect();
    let groups = seen
        .iter()
        .map(|(g, m)| {
            let name = g
                .rsplit_once(';')
                .map(|x| x.1.trim_end_matches("\"}").to_string())
                .unwrap_or_else(|| g.clone());
            (name, median(m.values().skip(1).copied().collect()))
        })
        .collect();
    (rounds, groups)
}

fn report(a: &Args, n_rules: usize, outcomes: &[Outcome]) {
    println!(
        "\n{n_rules} rules in 7 groups over {} series ({} h of history, fresh samples every 5 s); every group every {}; median of {} rounds\n",
        a.series, a.hours, a.interval, a.rounds
    );
    let medic = outcomes.iter().find(|o| o.target == "medic");
    print!("| group |");
    for o in outcomes {
        print!(" {} ms |", o.target);
    }
    if medic.is_some() {
        for o in outcomes.iter().filter(|o| o.target != "medic") {
            print!(" medic ÷ {} |", o.target);
        }
    }
    println!();
    print!("|---|");
    for _ in 0..(outcomes.len() * 2 - usize::from(medic.is_some())) {
        print!("---:|");
    }
    println!();
    let names: Vec<&String> = outcomes
        .first()
        .map(|o| o.groups.keys().collect())
        .unwrap_or_default();
    let row = |label: &str, get: &dyn Fn(&Outcome) -> Option<f64>| {
        print!("| {label} |");
        for o in outcomes {
            match get(o) {
                Some(v) => print!(" {:.1} |", v * 1000.0),
                None => print!(" – |"),
            }
        }
        if let Some(m) = medic {
            for o in outcomes.iter().filter(|o| o.target != "medic") {
                match (get(m), get(o)) {
                    (Some(x), Some(y)) if y > 0.0 => print!(" {:.2}× |", x / y),
                    _ => print!(" – |"),
                }
            }
        }
        println!();
    };
    for n in names {
        row(&format!("`{n}`"), &|o| o.groups.get(n).copied());
    }
    row("**all groups, per interval**", &|o| {
        Some(median(o.rounds.clone()))
    });
    println!();
    for o in outcomes {
        println!(
            "{}: {} recorded series; rounds {:?} ms; {:.2} CPU-s per interval (evaluation + {} samples/s of ingest); peak RSS {:.0} MiB; missed iterations {}; unhealthy rules {}{}",
            o.target,
            o.recorded,
            o.rounds.iter().map(|r| (r * 1000.0).round()).collect::<Vec<_>>(),
            o.cpu_seconds,
            a.series / 15,
            o.peak_rss as f64 / (1 << 20) as f64,
            o.missed,
            o.unhealthy.len(),
            if o.unhealthy.is_empty() { String::new() } else { format!(": {:?}", o.unhealthy) }
        );
    }
}
