//! `medic logs`: LogQL from the terminal against a running medic — query (lines or samples),
//! follow (new lines as they arrive), labels and label values. Through Loki's API, so it also
//! works against Loki itself.

use serde_json::Value;

use crate::client::{table, Remote};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: LogsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LogsCommand {
    /// Runs a LogQL query: log lines (`{app="api"} |= "error"`) or samples
    /// (`sum by (app) (count_over_time({env="prod"}[5m]))`).
    Query {
        query: String,
        /// How far back (a duration: 15m, 1h, 2d).
        #[arg(long, default_value = "1h")]
        since: String,
        /// Most lines.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Oldest first (default newest first).
        #[arg(long)]
        forward: bool,
        /// Print each line's labels before it.
        #[arg(long)]
        labels: bool,
    },
    /// Prints new lines of a log query as they arrive, until interrupted.
    Follow {
        query: String,
        /// Print each line's labels before it.
        #[arg(long)]
        labels: bool,
        /// How often to ask (a duration).
        #[arg(long, default_value = "1s")]
        every: String,
    },
    /// Label names, or the values of one label.
    Labels {
        name: Option<String>,
        #[arg(long, default_value = "1h")]
        since: String,
    },
}

fn secs(d: &str) -> anyhow::Result<f64> {
    let d = medic_model::parse_duration(d).map_err(|e| anyhow::anyhow!("{d:?}: {e}"))?;
    Ok(d.as_secs_f64())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `(ts_ns, labels, line)` of a streams answer, in time order (`forward`) or newest first.
fn lines(v: &Value, forward: bool) -> Vec<(i64, String, String)> {
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().into_iter().flatten() {
        let labels = s["stream"].to_string();
        for e in s["values"].as_array().into_iter().flatten() {
            let ts = e[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            out.push((ts, labels.clone(), e[1].as_str().unwrap_or("").to_string()));
        }
    }
    out.sort_by_key(|l| l.0);
    if !forward {
        out.reverse();
    }
    out
}

fn print_line(ts: i64, labels: &str, line: &str, with_labels: bool) {
    let t = medic_model::format_rfc3339_millis(ts.div_euclid(1_000_000));
    if with_labels {
        println!("{t} {labels} {line}");
    } else {
        println!("{t} {line}");
    }
}

/// Runs `medic logs …`.
pub fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let r = &args.remote;
    match args.what {
        LogsCommand::Query {
            query,
            since,
            limit,
            forward,
            labels,
        } => {
            let end = now_ns();
            let start = end - (secs(&since)? * 1e9) as i64;
            let q = vec![
                ("query", query),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("limit", limit.to_string()),
                (
                    "direction",
                    if forward { "forward" } else { "backward" }.to_string(),
                ),
            ];
            let v = r.get("/loki/api/v1/query_range", &q)?;
            if r.print_json(&v)? {
                return Ok(());
            }
            match v["data"]["resultType"].as_str() {
                Some("streams") => {
                    for (ts, l, line) in lines(&v, forward) {
                        print_line(ts, &l, &line, labels);
                    }
                }
                _ => print_matrix(&v),
            }
            Ok(())
        }
        LogsCommand::Follow {
            query,
            labels,
            every,
        } => follow(r, &query, labels, secs(&every)?),
        LogsCommand::Labels { name, since } => {
            let end = now_ns();
            let start = end - (secs(&since)? * 1e9) as i64;
            let path = match &name {
                Some(n) => format!(
                    "/loki/api/v1/label/{}/values",
                    crate::client::path_segment(n)
                ),
                None => "/loki/api/v1/labels".into(),
            };
            let v = r.get(
                &path,
                &[("start", start.to_string()), ("end", end.to_string())],
            )?;
            if !r.print_json(&v)? {
                for l in v["data"].as_array().into_iter().flatten() {
                    println!("{}", l.as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
    }
}

fn print_matrix(v: &Value) {
    let rows: Vec<Vec<String>> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let last = s["values"]
                .as_array()
                .and_then(|a| a.last())
                .cloned()
                .unwrap_or_default();
            vec![
                s["metric"].to_string(),
                last[1].as_str().unwrap_or("").to_string(),
                s["values"].as_array().map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    table(&["SERIES", "LAST", "POINTS"], &rows);
}

/// Asks for lines newer than the last printed, every `every` seconds.
fn follow(r: &Remote, query: &str, labels: bool, every: f64) -> anyhow::Result<()> {
    let mut from = now_ns() - 10_000_000_000;
    // Lines at the last printed nanosecond, so one arriving at the same time is not repeated.
    let mut seen_at_from: Vec<String> = Vec::new();
    loop {
        let q = vec![
            ("query", query.to_string()),
            ("start", from.to_string()),
            ("end", (now_ns() + 1).to_string()),
            ("limit", "5000".to_string()),
            ("direction", "forward".to_string()),
        ];
        let v = r.get("/loki/api/v1/query_range", &q)?;
        if v["data"]["resultType"] != "streams" {
            anyhow::bail!("follow needs a log query, not a metric query");
        }
        for (ts, l, line) in lines(&v, true) {
            let key = format!("{l}{line}");
            if ts == from && seen_at_from.contains(&key) {
                continue;
            }
            if ts > from {
                from = ts;
                seen_at_from.clear();
            }
            seen_at_from.push(key);
            print_line(ts, &l, &line, labels);
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(every));
    }
}
