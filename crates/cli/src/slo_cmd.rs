//! `medic slo generate`: the rule file Sloth generates from a `prometheus/v1` SLO spec
//! (`sloth generate -i FILE`), with Sloth's group, rule, series and label names.
//! `medic slo list | show`: the SLOs of a running medic, from their recorded series.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use crate::client::{path_segment, table, Remote};

/// Arguments of `medic slo list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    remote: Remote,
    /// Evaluate at this time (RFC 3339 or Unix seconds) instead of now.
    #[arg(long)]
    time: Option<String>,
}

/// Arguments of `medic slo show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    remote: Remote,
    /// The SLO's id: `<service>-<slo>` (its `sloth_id`).
    id: String,
    /// Evaluate at this time (RFC 3339 or Unix seconds) instead of now.
    #[arg(long)]
    time: Option<String>,
}

/// A ratio as a percentage, `-` when absent (no traffic gives no ratio).
fn percent(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{:.3}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn times(v: &Value) -> String {
    v.as_f64()
        .map(|x| format!("{x:.2}×"))
        .unwrap_or_else(|| "-".into())
}

/// `medic slo list`: one line per SLO.
pub fn list(a: ListArgs) -> anyhow::Result<()> {
    let q: Vec<(&str, String)> = a.time.map(|t| ("time", t)).into_iter().collect();
    let v = a.remote.get("/api/v1/medic/slos", &q)?;
    if a.remote.print_json(&v)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                s["id"].as_str().unwrap_or("").to_string(),
                percent(&s["objective"]),
                percent(&s["error_ratio"]["5m"]),
                times(&s["current_burn_rate"]),
                times(&s["period_burn_rate"]),
                percent(&s["budget_remaining"]),
            ]
        })
        .collect();
    table(
        &[
            "SLO",
            "OBJECTIVE",
            "ERRORS (5m)",
            "BURN NOW",
            "BURN (PERIOD)",
            "BUDGET LEFT",
        ],
        &rows,
    );
    Ok(())
}

/// `medic slo show ID`: one SLO with every window.
pub fn show(a: ShowArgs) -> anyhow::Result<()> {
    let q: Vec<(&str, String)> = a.time.map(|t| ("time", t)).into_iter().collect();
    let v = a
        .remote
        .get(&format!("/api/v1/medic/slos/{}", path_segment(&a.id)), &q)?;
    if a.remote.print_json(&v)? {
        return Ok(());
    }
    let s = &v["data"];
    println!("SLO:          {}", s["id"].as_str().unwrap_or(""));
    println!("service:      {}", s["service"].as_str().unwrap_or(""));
    println!("objective:    {}", percent(&s["objective"]));
    println!("error budget: {}", percent(&s["error_budget"]));
    println!("period:       {} days", s["period_days"]);
    println!("budget left:  {}", percent(&s["budget_remaining"]));
    println!();
    let rows: Vec<Vec<String>> = s["error_ratio"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(w, r)| vec![w.clone(), percent(r), times(&s["burn_rate"][w])])
        .collect();
    table(&["WINDOW", "ERROR RATIO", "BURN RATE"], &rows);
    Ok(())
}

/// Arguments of `medic slo generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// A Sloth SLO spec (`version: "prometheus/v1"`).
    #[arg(short = 'i', long = "input")]
    input: PathBuf,

    /// Write the rules here instead of standard output.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,

    /// The SLO period (Sloth's `--default-slo-period`), in whole days: `30d`, `28d`, `4w`.
    #[arg(long = "default-slo-period", default_value = "30d")]
    period: String,
}

/// Generates the rules; errors name the file, line, SLO and field.
pub fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    let period = medic_model::parse_duration(&a.period)
        .map_err(|e| anyhow::anyhow!("--default-slo-period: {e}"))?;
    let days = period.as_secs() / 86_400;
    if days == 0 || period.as_secs() % 86_400 != 0 || days > 3650 {
        anyhow::bail!(
            "--default-slo-period: {:?} must be a whole number of days between 1d and 3650d",
            a.period
        );
    }
    let opts = medic_rules::slo::Options {
        period_days: days as u32,
        ..Default::default()
    };
    let text = std::fs::read_to_string(&a.input)
        .with_context(|| format!("cannot read {}", a.input.display()))?;
    let spec = medic_rules::slo::spec::parse(&text, &a.input).map_err(|errs| {
        anyhow::anyhow!(errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    })?;
    let rules = medic_rules::slo::generate(&spec, &opts);
    // What was generated must load as a rule file, or it is medic's bug, not the user's.
    medic_rules::file::parse(&rules, &a.input, false).map_err(|errs| {
        anyhow::anyhow!(
            "the generated rules do not load (a bug in medic): {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    match a.out {
        Some(path) => std::fs::write(&path, rules)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{rules}"),
    }
    Ok(())
}
