//! `medic heal`: the heal engine of a running medic over its HTTP API (executions, manual
//! trigger, approvals, pauses, trust), and `medic heal dry-run`, which needs no server.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::client::{ms_time, table, text, Remote};

#[derive(Debug, clap::Args)]
pub struct HealArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: HealCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HealCommand {
    /// List executions, newest first.
    List {
        /// Only this playbook's.
        #[arg(long)]
        playbook: Option<String>,
        /// Only this target's.
        #[arg(long)]
        target: Option<String>,
        /// Only in this status (running, awaiting_approval, verifying, succeeded, failed,
        /// vetoed, rejected, resolved, dry_run).
        #[arg(long)]
        status: Option<String>,
        /// Created at or after (RFC 3339 or Unix seconds).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one execution: trigger, evidence, diagnosis and its step timeline.
    Show { id: String },
    /// The playbooks loaded, with their triggers and pauses.
    Playbooks,
    /// Start a playbook by hand (guards still apply). Prints the execution.
    Trigger {
        playbook: String,
        /// A trigger label, `name=value` (repeatable): what the playbook's templates see as
        /// `$labels`.
        #[arg(long = "label", short = 'l', value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Who asks (recorded).
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        /// Wait until the execution ends, then exit 0 only if it succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// Approve the action an execution proposes.
    Approve {
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[arg(long, short = 'c', default_value = "")]
        comment: String,
    },
    /// Reject the action an execution proposes (nothing is done).
    Reject {
        id: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
        #[arg(long, short = 'c', default_value = "")]
        comment: String,
    },
    /// Pause automatic repair: of one playbook, one target, or everything (`--all`).
    Pause {
        /// The playbook to pause.
        playbook: Option<String>,
        /// Pause repairs of this target instead.
        #[arg(long, conflicts_with = "playbook")]
        target: Option<String>,
        /// Pause every playbook.
        #[arg(long, conflicts_with_all = ["playbook", "target"])]
        all: bool,
        /// Lift the pause by itself after this long (e.g. 2h); until resumed otherwise.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Why (recorded, shown in vetoes).
        #[arg(long, short = 'r', default_value = "")]
        reason: String,
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// Lift a pause.
    Resume {
        playbook: Option<String>,
        #[arg(long, conflicts_with = "playbook")]
        target: Option<String>,
        #[arg(long, conflicts_with_all = ["playbook", "target"])]
        all: bool,
    },
    /// Pauses in force.
    Pauses,
    /// Success rates and trust levels of actions.
    Trust,
    /// Print what a playbook would do for an alert, and why, without doing anything. PLAYBOOK
    /// is a playbook file (checked offline) or the name of one loaded in the running medic.
    /// Exit 0 if it would act, 2 if it would not (no match, no cause), 1 on error.
    DryRun {
        playbook: String,
        /// The alert: YAML or JSON with `labels`, `annotations` and optionally `evidence`
        /// (collector name → the value it would have collected).
        #[arg(long)]
        alert: PathBuf,
    },
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected name=value"))?;
    if !medic_model::is_valid_label_name(k) {
        return Err(format!("{k:?} is not a valid label name"));
    }
    Ok((k.to_string(), v.to_string()))
}

fn scope(playbook: Option<String>, target: Option<String>, all: bool) -> anyhow::Result<String> {
    match (playbook, target, all) {
        (Some(p), None, false) => Ok(format!("playbook:{p}")),
        (None, Some(t), false) => Ok(format!("target:{t}")),
        (None, None, true) => Ok("all".into()),
        _ => bail!("name a playbook, or --target T, or --all"),
    }
}

/// Evidence for people: each collector's result as indented lines, long text kept to its first
/// lines, never one escaped JSON line.
fn print_evidence(ev: &serde_json::Map<String, Value>) {
    const MAX_LINES: usize = 8;
    println!("evidence:");
    for (name, val) in ev {
        println!("  {name}:");
        let Some(fields) = val.as_object() else {
            println!("    {val}");
            continue;
        };
        for (k, v) in fields {
            match v {
                Value::String(s) if s.contains('\n') || s.len() > 100 => {
                    let lines: Vec<&str> = s.trim_end().lines().collect();
                    println!("    {k}: |");
                    for l in lines.iter().take(MAX_LINES) {
                        println!("      {}", l.chars().take(160).collect::<String>());
                    }
                    if lines.len() > MAX_LINES {
                        println!("      … {} more lines", lines.len() - MAX_LINES);
                    }
                }
                Value::Object(_) | Value::Array(_) => {
                    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                    let lines: Vec<&str> = pretty.lines().collect();
                    println!("    {k}: {}", lines[0]);
                    for l in lines.iter().skip(1).take(MAX_LINES * 2) {
                        println!("      {l}");
                    }
                    if lines.len() > MAX_LINES * 2 + 1 {
                        println!("      … {} more lines", lines.len() - MAX_LINES * 2 - 1);
                    }
                }
                Value::String(s) => println!("    {k}: {s}"),
                other => println!("    {k}: {other}"),
            }
        }
    }
}

/// Runs `medic heal …`; `Ok(false)` means exit 2 (dry run: would not act).
pub fn heal(args: HealArgs) -> anyhow::Result<bool> {
    let r = &args.remote;
    match args.what {
        HealCommand::List {
            playbook,
            target,
            status,
            since,
            limit,
        } => list(r, playbook, target, status, since, limit),
        HealCommand::Show { id } => show(r, id),
        HealCommand::Playbooks => playbooks(r),
        HealCommand::Trigger {
            playbook,
            labels,
            by,
            wait,
        } => trigger(r, playbook, labels, by, wait),
        HealCommand::Approve { id, by, comment } => {
            post(
                r,
                &format!("/api/v1/medic/heal/executions/{id}/approve"),
                json!({"by": by, "comment": comment}),
            )?;
            println!("approved {id}");
            Ok(true)
        }
        HealCommand::Reject { id, by, comment } => {
            post(
                r,
                &format!("/api/v1/medic/heal/executions/{id}/reject"),
                json!({"by": by, "comment": comment}),
            )?;
            println!("rejected {id}");
            Ok(true)
        }
        HealCommand::Pause {
            playbook,
            target,
            all,
            duration,
            reason,
            by,
        } => {
            let s = scope(playbook, target, all)?;
            let v = post(
                r,
                "/api/v1/medic/heal/pause",
                json!({"scope": s, "reason": reason, "by": by, "duration": duration}),
            )?;
            if !r.print_json(&v)? {
                println!("paused {s}");
            }
            Ok(true)
        }
        HealCommand::Resume {
            playbook,
            target,
            all,
        } => {
            let s = scope(playbook, target, all)?;
            post(r, "/api/v1/medic/heal/resume", json!({"scope": s}))?;
            println!("resumed {s}");
            Ok(true)
        }
        HealCommand::Pauses => pauses(r),
        HealCommand::Trust => trust(r),
        HealCommand::DryRun { playbook, alert } => dry_run(r, playbook, alert),
    }
}

fn post(r: &Remote, path: &str, body: Value) -> anyhow::Result<Value> {
    r.call(reqwest::Method::POST, path, &[], Some(body))
}

fn list(
    r: &Remote,
    playbook: Option<String>,
    target: Option<String>,
    status: Option<String>,
    since: Option<String>,
    limit: usize,
) -> anyhow::Result<bool> {
    let mut q = vec![("limit", limit.to_string())];
    q.extend(playbook.map(|v| ("playbook", v)));
    q.extend(target.map(|v| ("target", v)));
    q.extend(status.map(|v| ("status", v)));
    q.extend(since.map(|v| ("since", v)));
    let v = r.get("/api/v1/medic/heal/executions", &q)?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                text(e, "id"),
                ms_time(&e["created_at"]),
                text(e, "playbook"),
                text(e, "target"),
                text(e, "status"),
                text(e, "summary"),
            ]
        })
        .collect();
    table(
        &["ID", "CREATED", "PLAYBOOK", "TARGET", "STATUS", "SUMMARY"],
        &rows,
    );
    Ok(true)
}

fn show(r: &Remote, id: String) -> anyhow::Result<bool> {
    let v = r.get(&format!("/api/v1/medic/heal/executions/{id}"), &[])?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let e = &v["data"];
    println!(
        "execution {}  playbook {}  target {}",
        e["id"].as_str().unwrap_or(""),
        e["playbook"].as_str().unwrap_or(""),
        e["target"].as_str().unwrap_or("")
    );
    println!(
        "status:    {}{}",
        e["status"].as_str().unwrap_or(""),
        if e["dry_run"].as_bool() == Some(true) {
            " (dry run)"
        } else {
            ""
        }
    );
    println!("summary:   {}", e["summary"].as_str().unwrap_or(""));
    println!(
        "trigger:   {} {}",
        e["trigger"]["kind"].as_str().unwrap_or(""),
        e["trigger"]["labels"]
    );
    if let Some(d) = e.get("diagnosis").filter(|d| !d.is_null()) {
        println!(
            "diagnosis: {} because {} {}",
            d["cause"].as_str().unwrap_or(""),
            d["when"].as_str().unwrap_or(""),
            d["support"]
        );
    }
    if let Some(ev) = e["evidence"].as_object().filter(|ev| !ev.is_empty()) {
        print_evidence(ev);
    }
    println!();
    let rows: Vec<Vec<String>> = e["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            vec![
                ms_time(&s["started_at"]),
                text(s, "kind"),
                text(s, "name"),
                text(s, "state"),
                text(s, "message"),
            ]
        })
        .collect();
    table(&["AT", "STEP", "NAME", "STATE", "MESSAGE"], &rows);
    Ok(true)
}

fn playbooks(r: &Remote) -> anyhow::Result<bool> {
    let v = r.get("/api/v1/medic/heal/playbooks", &[])?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let state = if p["enabled"].as_bool() != Some(true) {
                "disabled".to_string()
            } else if !p["paused"].is_null() {
                format!("paused by {}", p["paused"]["by"].as_str().unwrap_or(""))
            } else if p["dry_run"].as_bool() == Some(true) {
                "dry run".into()
            } else {
                "active".into()
            };
            vec![text(p, "name"), state, text(p, "trigger")]
        })
        .collect();
    table(&["PLAYBOOK", "STATE", "TRIGGER"], &rows);
    Ok(true)
}

fn trigger(
    r: &Remote,
    playbook: String,
    labels: Vec<(String, String)>,
    by: String,
    wait: bool,
) -> anyhow::Result<bool> {
    let labels: serde_json::Map<String, Value> =
        labels.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let v = post(
        r,
        "/api/v1/medic/heal/trigger",
        json!({"playbook": playbook, "labels": labels, "by": by}),
    )?;
    let mut e = v["data"].clone();
    let id = text(&e, "id");
    if wait {
        eprint!("waiting for execution {id}");
        let mut last = String::new();
        loop {
            let status = text(&e, "status");
            if !["running", "awaiting_approval", "verifying"].contains(&status.as_str()) {
                break;
            }
            if status != last {
                eprint!(" {status}");
                last = status;
            } else {
                eprint!(".");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            e = r.get(&format!("/api/v1/medic/heal/executions/{id}"), &[])?["data"].clone();
        }
        eprintln!();
    }
    if !r.print_json(&e)? {
        let status = e["status"].as_str().unwrap_or("");
        match e["summary"].as_str().filter(|s| !s.is_empty()) {
            Some(summary) => println!("execution {id}: {status} — {summary}"),
            None => println!(
                "execution {id}: {status}; follow it with `medic heal show {id}`, or wait for it with --wait"
            ),
        }
    }
    if wait && e["status"] != "succeeded" && e["status"] != "dry_run" {
        bail!(
            "execution {id} ended {}",
            e["status"].as_str().unwrap_or("?")
        );
    }
    Ok(true)
}

fn pauses(r: &Remote) -> anyhow::Result<bool> {
    let v = r.get("/api/v1/medic/heal/pauses", &[])?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                text(p, "scope"),
                text(p, "by"),
                ms_time(&p["at"]),
                ms_time(&p["until"]),
                text(p, "reason"),
            ]
        })
        .collect();
    table(&["SCOPE", "BY", "SINCE", "UNTIL", "REASON"], &rows);
    Ok(true)
}

fn trust(r: &Remote) -> anyhow::Result<bool> {
    let v = r.get("/api/v1/medic/heal/trust", &[])?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                text(t, "playbook"),
                text(t, "cause"),
                text(t, "action"),
                format!("{}/{}", t["successes"], t["attempts"]),
                text(t, "level"),
            ]
        })
        .collect();
    table(&["PLAYBOOK", "CAUSE", "ACTION", "OK/TRIED", "LEVEL"], &rows);
    Ok(true)
}

fn dry_run(r: &Remote, playbook: String, alert: PathBuf) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&alert)
        .with_context(|| format!("cannot read {}", alert.display()))?;
    let file: medic_heal::plan::AlertFile = medic_model::yaml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", alert.display()))?;
    let path = PathBuf::from(&playbook);
    let (plan, acts) = if path.is_file() {
        let pb = medic_heal::Playbook::load(&path)?;
        medic_heal::plan::dry_run(&pb, &file)
    } else {
        let v = post(
            r,
            "/api/v1/medic/heal/dry-run",
            json!({"playbook": playbook, "alert": {
            "labels": file.labels, "annotations": file.annotations, "evidence": file.evidence}}),
        )?;
        (
            v["data"]["plan"].as_str().unwrap_or("").to_string(),
            v["data"]["would_act"].as_bool().unwrap_or(false),
        )
    };
    print!("{plan}");
    Ok(acts)
}
