//! `medic report`: reports of a running medic — generate one on demand for a period (stored,
//! optionally delivered), list the configured and stored ones, show one.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::{ms_time, table, text, Remote};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// medic's base URL.
    #[arg(
        long,
        env = "MEDIC_URL",
        default_value = "http://127.0.0.1:9099",
        global = true
    )]
    url: String,
    /// A bearer token for a medic with `auth:` configured.
    #[arg(long, env = "MEDIC_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Basic-auth credentials as `user:password`.
    #[arg(long, env = "MEDIC_USER", global = true, hide_env_values = true)]
    user: Option<String>,
    #[command(subcommand)]
    what: ReportCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ReportCommand {
    /// Makes a report now, stores it, prints or writes it.
    Generate {
        /// `2026-11` (a month), `2026-11-03` (a day), `2026-W45` (an ISO week), `30d` or `24h`
        /// (up to now), or `START..END` in RFC 3339.
        #[arg(long)]
        period: String,
        /// A report of the configuration (its title, series, time zone and receivers).
        #[arg(long)]
        name: Option<String>,
        /// The zone of calendar periods when `--name` gives none (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long, value_parser = ["markdown", "html", "json"], default_value = "markdown")]
        format: String,
        /// Also send it to the named report's receivers (admin only).
        #[arg(long)]
        deliver: bool,
        /// Write it here instead of standard output.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
    /// The configured reports with their next run, and the stored ones.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One stored report.
    Show {
        id: String,
        #[arg(long, value_parser = ["markdown", "html", "json"], default_value = "markdown")]
        format: String,
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
}

fn emit(v: &Value, out: Option<PathBuf>) -> anyhow::Result<()> {
    let body = match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other)?,
    };
    match out {
        Some(p) => {
            std::fs::write(&p, body).with_context(|| format!("cannot write {}", p.display()))
        }
        None => {
            println!("{body}");
            Ok(())
        }
    }
}

/// Runs `medic report …`.
pub fn report(a: ReportArgs) -> anyhow::Result<()> {
    let r = Remote::with(a.url, a.token, a.user);
    match a.what {
        ReportCommand::Generate {
            period,
            name,
            timezone,
            format,
            deliver,
            out,
        } => {
            let body = json!({
                "period": period, "name": name, "timezone": timezone,
                "format": format, "deliver": deliver,
            });
            let v = r.call(
                reqwest::Method::POST,
                "/api/v1/medic/reports/generate",
                &[],
                Some(body),
            )?;
            emit(&v, out)
        }
        ReportCommand::List { limit } => {
            let v = r.get("/api/v1/medic/reports", &[("limit", limit.to_string())])?;
            let d = &v["data"];
            let defs: Vec<Vec<String>> = d["definitions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        text(x, "name"),
                        text(x, "schedule"),
                        text(x, "timezone"),
                        text(x, "period"),
                        ms_time(&x["next_run"]),
                    ]
                })
                .collect();
            table(&["REPORT", "SCHEDULE", "ZONE", "PERIOD", "NEXT RUN"], &defs);
            println!();
            let stored: Vec<Vec<String>> = d["reports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        x["id"].to_string(),
                        text(x, "name"),
                        text(x, "period"),
                        ms_time(&x["generated_at"]),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "PERIOD", "GENERATED"], &stored);
            Ok(())
        }
        ReportCommand::Show { id, format, out } => {
            let v = r.get(
                &format!("/api/v1/medic/reports/{}", crate::client::path_segment(&id)),
                &[("format", format)],
            )?;
            emit(&v, out)
        }
    }
}
