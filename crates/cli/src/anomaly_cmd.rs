//! `medic anomalies`: anomalies, baselines and the per-rule report of a running medic.
//! `medic anomaly nab|score`: the Numenta Anomaly Benchmark, run and scored offline.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use medic_anomaly::nab;
use serde_json::{json, Value};

use crate::client::{secs_time, table, Remote};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AnomaliesArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: Option<AnomaliesCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Clone, Default, clap::Args)]
struct ListArgs {
    /// Only anomalies whose peak score is at least this (0–1).
    #[arg(long)]
    min_score: Option<f64>,
    /// Only anomalies under way at or after this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// Only this anomaly rule's.
    #[arg(long)]
    rule: Option<String>,
    /// Only series matching this selector (repeatable), e.g. '{service="api"}'.
    #[arg(long = "match", short = 'm')]
    selectors: Vec<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, clap::Subcommand)]
enum AnomaliesCommand {
    /// Recent anomalies with their scores, newest first (the default).
    List(ListArgs),
    /// The current baseline of matching series: expected value, band, spread, seasonality,
    /// trend and forecasts.
    Baseline {
        #[arg(long)]
        rule: Option<String>,
        #[arg(long = "match", short = 'm')]
        selectors: Vec<String>,
    },
    /// Per anomaly rule: series, how many are warm and anomalous, anomalies in 24h, the top
    /// scores.
    Report,
}

fn num(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.4}"))
        .unwrap_or_else(|| "-".into())
}

fn labels(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
                .collect();
            format!("{{{}}}", inner.join(", "))
        })
        .unwrap_or_default()
}

pub fn anomalies(args: AnomaliesArgs) -> anyhow::Result<()> {
    let r = &args.remote;
    match args.what.unwrap_or(AnomaliesCommand::List(args.list)) {
        AnomaliesCommand::List(l) => {
            let mut q = vec![("limit", l.limit.to_string())];
            q.extend(l.min_score.map(|v| ("min_score", v.to_string())));
            q.extend(l.since.map(|v| ("since", v)));
            q.extend(l.rule.map(|v| ("rule", v)));
            q.extend(l.selectors.into_iter().map(|v| ("match[]", v)));
            let v = r.get("/api/v1/medic/anomalies", &q)?;
            if r.print_json(&v)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        secs_time(&e["start"]),
                        if e["end"].is_null() {
                            "ongoing".into()
                        } else {
                            secs_time(&e["end"])
                        },
                        e["rule"].as_str().unwrap_or("").to_string(),
                        labels(&e["labels"]),
                        format!("{:.2}", e["peak"].as_f64().unwrap_or(0.0)),
                        e["test"].as_str().unwrap_or("").to_string(),
                        num(&e["value"]),
                        format!("{}..{}", num(&e["lower"]), num(&e["upper"])),
                    ]
                })
                .collect();
            table(
                &[
                    "START", "END", "RULE", "SERIES", "PEAK", "TEST", "VALUE", "EXPECTED",
                ],
                &rows,
            );
        }
        AnomaliesCommand::Baseline { rule, selectors } => {
            let mut q = Vec::new();
            q.extend(rule.map(|v| ("rule", v)));
            q.extend(selectors.into_iter().map(|v| ("match[]", v)));
            let v = r.get("/api/v1/medic/anomalies/baseline", &q)?;
            if r.print_json(&v)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    vec![
                        s["rule"].as_str().unwrap_or("").to_string(),
                        labels(&s["labels"]),
                        s["points"].to_string(),
                        num(&s["last"]["value"]),
                        num(&s["last"]["baseline"]),
                        format!("{}..{}", num(&s["last"]["lower"]), num(&s["last"]["upper"])),
                        format!("{:.2}", s["last"]["score"].as_f64().unwrap_or(0.0)),
                        s["baseline"]["seasonality"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        num(&s["trend"]["holt_per_hour"]),
                    ]
                })
                .collect();
            table(
                &[
                    "RULE", "SERIES", "POINTS", "VALUE", "BASELINE", "BAND", "SCORE", "SEASON",
                    "TREND/H",
                ],
                &rows,
            );
        }
        AnomaliesCommand::Report => {
            let v = r.get("/api/v1/medic/anomalies/report", &[])?;
            if r.print_json(&v)? {
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let top = s["top"]
                        .as_array()
                        .and_then(|t| t.first())
                        .map(|t| {
                            format!(
                                "{} {:.2}",
                                labels(&t["labels"]),
                                t["score"].as_f64().unwrap_or(0.0)
                            )
                        })
                        .unwrap_or_default();
                    vec![
                        s["rule"].as_str().unwrap_or("").to_string(),
                        s["series"].to_string(),
                        s["warm"].to_string(),
                        s["anomalous"].to_string(),
                        s["anomalies_24h"].to_string(),
                        top,
                    ]
                })
                .collect();
            table(
                &["RULE", "SERIES", "WARM", "ANOMALOUS", "24H", "TOP SCORE"],
                &rows,
            );
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct AnomalyArgs {
    #[command(subcommand)]
    what: AnomalyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AnomalyCommand {
    /// Run medic's detector over the Numenta Anomaly Benchmark exactly as anomaly rules run it
    /// (each series point by point, no look-ahead), write NAB result files under OUT, and print
    /// the normalised scores of the three profiles.
    Nab {
        /// NAB's data directory: <category>/<file>.csv files of timestamp,value.
        data: PathBuf,
        /// Where result files go (<OUT>/medic/<category>/medic_<file>.csv).
        #[arg(long)]
        out: PathBuf,
        /// NAB's combined_windows.json [default: DATA/../labels/combined_windows.json].
        #[arg(long)]
        windows: Option<PathBuf>,
        /// Print the scores as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Score NAB result files (medic's or any detector's anomaly_score column) with the
    /// scorer written from NAB's rules: NAB's threshold search for each profile.
    Score {
        /// A directory of result files (searched recursively).
        results: PathBuf,
        /// NAB's combined_windows.json.
        #[arg(long)]
        windows: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn report_json(r: &nab::Report) -> Value {
    json!({
        "files": r.files,
        "windows": r.windows,
        "no_anomaly_alerts": r.no_anomaly_alerts,
        "scores": r.rows.iter().map(|row| json!({
            "profile": row.profile,
            "method": row.method,
            "threshold": row.outcome.threshold,
            "score": row.outcome.normalised,
            "tp": row.outcome.tp,
            "fp": row.outcome.fp,
            "fn": row.outcome.fn_,
        })).collect::<Vec<_>>(),
    })
}

pub fn anomaly(args: AnomalyArgs) -> anyhow::Result<()> {
    match args.what {
        AnomalyCommand::Nab {
            data,
            out,
            windows,
            json,
        } => {
            let windows_path = windows.unwrap_or_else(|| {
                data.parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("labels/combined_windows.json")
            });
            let began = Instant::now();
            let corpus = nab::read_corpus(&data)?;
            let points: usize = corpus.iter().map(|s| s.values.len()).sum();
            eprintln!(
                "read {} series, {points} points from {}",
                corpus.len(),
                data.display()
            );
            let params = medic_anomaly::Params::default();
            let t = Instant::now();
            let scored = nab::detect(corpus, &params);
            let took = t.elapsed();
            eprintln!(
                "scored in {:.0} ms ({:.0} ns per point)",
                took.as_secs_f64() * 1000.0,
                took.as_nanos() as f64 / points.max(1) as f64
            );
            let windows = nab::read_windows(&windows_path)
                .with_context(|| "labelled windows are needed to score (see --windows)")?;
            let n = nab::write_results(&out, &scored, Some(&windows), &params)?;
            eprintln!(
                "wrote {n} result files under {}",
                out.join("medic").display()
            );
            eprintln!("optimising thresholds...");
            let report = nab::report(&scored, &windows, Some(&params))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
            } else {
                print!("{report}");
                eprintln!("done in {:.1} s", began.elapsed().as_secs_f64());
            }
        }
        AnomalyCommand::Score {
            results,
            windows,
            json,
        } => {
            let scored = nab::read_results(&results)?;
            let windows = nab::read_windows(&windows)?;
            let report = nab::report(&scored, &windows, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
            } else {
                print!("{report}");
            }
        }
    }
    Ok(())
}
