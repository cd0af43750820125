//! `medic incident`: incidents of a running medic — list, show with the timeline, open by hand,
//! acknowledge, assign, comment, mitigate, resolve, close, and the post-incident report.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::{ms_time, path_segment, table, text, Remote};

#[derive(Debug, clap::Args)]
pub struct IncidentArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: IncidentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IncidentCommand {
    /// Incidents, newest first.
    List {
        /// triggered, acknowledged, mitigated, resolved or closed.
        #[arg(long)]
        status: Option<String>,
        /// P0 to P3.
        #[arg(long)]
        level: Option<String>,
        /// Opened at or after this time (RFC 3339 or Unix seconds).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One incident: status, figures and the whole timeline.
    Show { id: String },
    /// Opens an incident by hand.
    Open {
        /// What is wrong, for people.
        title: String,
        /// P0 to P3.
        #[arg(long, default_value = "P2")]
        level: String,
        /// Labels saying what it is about, `service=checkout` (repeatable): alert groups of
        /// the same service join it.
        #[arg(long = "label", value_parser = label_pair)]
        labels: Vec<(String, String)>,
    },
    /// Acknowledges it: someone is on it.
    Ack {
        id: String,
        /// A comment added with it.
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// Gives it to someone.
    Assign { id: String, assignee: String },
    /// Adds a comment to its timeline.
    Comment { id: String, text: String },
    /// The impact has stopped (the cause may remain).
    Mitigate {
        id: String,
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// It is over.
    Resolve {
        id: String,
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// Closes a resolved incident: nothing more happens to it.
    Close {
        id: String,
        #[arg(long, short = 'm')]
        comment: Option<String>,
    },
    /// The post-incident report, as Markdown (default) or one self-contained HTML file.
    Report {
        id: String,
        /// HTML with the charts inline, instead of Markdown.
        #[arg(long)]
        html: bool,
        /// Write it here instead of standard output.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
    },
}

fn label_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?}: expected name=value"))
}

/// Milliseconds as `1h2m3s`, `-` when absent.
fn span(v: &Value) -> String {
    let Some(ms) = v.as_i64() else {
        return "-".into();
    };
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m"),
    }
}

/// Runs `medic incident …`.
pub fn incident(args: IncidentArgs) -> anyhow::Result<()> {
    let r = &args.remote;
    let act = |id: &str, action: &str, body: Value| -> anyhow::Result<()> {
        let v = r.call(
            reqwest::Method::POST,
            &format!("/api/v1/medic/incidents/{}/{action}", path_segment(id)),
            &[],
            Some(body),
        )?;
        if !r.print_json(&v)? {
            let d = &v["data"];
            println!(
                "incident {} is {}{}",
                d["id"],
                text(d, "status"),
                d["assignee"]
                    .as_str()
                    .map(|a| format!(", assigned to {a}"))
                    .unwrap_or_default()
            );
        }
        Ok(())
    };
    let comment = |c: Option<String>| json!({ "text": c });
    match args.what {
        IncidentCommand::List {
            status,
            level,
            since,
            limit,
        } => list(r, status, level, since, limit),
        IncidentCommand::Show { id } => show(r, &id),
        IncidentCommand::Open {
            title,
            level,
            labels,
        } => {
            let labels: serde_json::Map<String, Value> =
                labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
            let body =
                json!({"title": title, "level": level.to_ascii_uppercase(), "labels": labels});
            let v = r.call(
                reqwest::Method::POST,
                "/api/v1/medic/incidents",
                &[],
                Some(body),
            )?;
            if !r.print_json(&v)? {
                let d = &v["data"];
                println!("incident {} opened at {}", d["id"], text(d, "level"));
            }
            Ok(())
        }
        IncidentCommand::Ack { id, comment: c } => act(&id, "ack", comment(c)),
        IncidentCommand::Assign { id, assignee } => {
            act(&id, "assign", json!({ "assignee": assignee }))
        }
        IncidentCommand::Comment { id, text } => act(&id, "comment", json!({ "text": text })),
        IncidentCommand::Mitigate { id, comment: c } => act(&id, "mitigate", comment(c)),
        IncidentCommand::Resolve { id, comment: c } => act(&id, "resolve", comment(c)),
        IncidentCommand::Close { id, comment: c } => act(&id, "close", comment(c)),
        IncidentCommand::Report { id, html, out } => {
            report(r, &id, if html { "html" } else { "markdown" }, out)
        }
    }
}

fn list(
    r: &Remote,
    status: Option<String>,
    level: Option<String>,
    since: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut q: Vec<(&str, String)> = vec![("limit", limit.to_string())];
    q.extend(status.map(|s| ("status", s)));
    q.extend(level.map(|s| ("level", s)));
    q.extend(since.map(|s| ("since", s)));
    let v = r.get("/api/v1/medic/incidents", &q)?;
    if r.print_json(&v)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let f = &i["figures"];
            vec![
                i["id"].to_string(),
                text(i, "level"),
                format!(
                    "{}{}",
                    text(i, "status"),
                    if i["auto_mitigated"] == json!(true) {
                        " (auto)"
                    } else {
                        ""
                    }
                ),
                ms_time(&i["opened_at"]),
                span(&f["time_to_acknowledge"]),
                span(&f["time_to_resolve"]),
                i["assignee"].as_str().unwrap_or("-").to_string(),
                text(i, "title"),
            ]
        })
        .collect();
    table(
        &[
            "ID", "LEVEL", "STATUS", "OPENED", "TTA", "TTR", "ASSIGNEE", "TITLE",
        ],
        &rows,
    );
    Ok(())
}

fn show(r: &Remote, id: &str) -> anyhow::Result<()> {
    let v = r.get(
        &format!("/api/v1/medic/incidents/{}", path_segment(id)),
        &[],
    )?;
    if r.print_json(&v)? {
        return Ok(());
    }
    let i = &v["data"];
    let f = &i["figures"];
    println!("incident:     {} ({})", i["id"], text(i, "level"));
    println!("title:        {}", text(i, "title"));
    let auto = if i["auto_mitigated"] == json!(true) {
        " (auto-mitigated: medic's repair was verified before anyone acknowledged it)"
    } else {
        ""
    };
    println!("status:       {}{auto}", text(i, "status"));
    println!(
        "assignee:     {}",
        i["assignee"].as_str().unwrap_or("nobody")
    );
    println!("opened:       {}", ms_time(&i["opened_at"]));
    println!(
        "to ack / mitigate / resolve: {} / {} / {}",
        span(&f["time_to_acknowledge"]),
        span(&f["time_to_mitigate"]),
        span(&f["time_to_resolve"])
    );
    println!();
    let rows: Vec<Vec<String>> = i["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                ms_time(&e["at"]),
                text(e, "who"),
                text(e, "kind"),
                text(e, "detail"),
            ]
        })
        .collect();
    table(&["WHEN", "WHO", "WHAT", "DETAIL"], &rows);
    Ok(())
}

fn report(r: &Remote, id: &str, format: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    let v = r.get(
        &format!("/api/v1/medic/incidents/{}/report", path_segment(id)),
        &[("format", format.to_string())],
    )?;
    let body = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    match out {
        Some(p) => {
            std::fs::write(&p, body).with_context(|| format!("cannot write {}", p.display()))
        }
        None => {
            print!("{body}");
            Ok(())
        }
    }
}
