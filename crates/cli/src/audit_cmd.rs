//! `medic audit`: the audit log of a running medic; `medic audit verify`: its hash chain
//! checked, through the API or straight from the database file (`--file`), so a log edited
//! while medic was down is found too.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

use crate::client::{ms_time, table, text, Remote};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(flatten)]
    remote: Remote,
    #[command(subcommand)]
    what: Option<AuditCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Debug, Clone, Default, clap::Args)]
struct ListArgs {
    /// Only entries of this identity (`anonymous`, `heal`, a user or token name).
    #[arg(long)]
    actor: Option<String>,
    /// Only actions starting with this (`POST`, `heal.`).
    #[arg(long)]
    action: Option<String>,
    /// Only targets containing this.
    #[arg(long)]
    target: Option<String>,
    /// Only entries at or after this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Entries, newest first (the default).
    List(ListArgs),
    /// Checks the hash chain: every row unchanged, none removed. Exit 1 when it is broken.
    Verify {
        /// The audit database itself (`audit.db` in the storage directory), instead of asking
        /// a running medic.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// Runs `medic audit …`; `Ok(false)`: the chain is broken (exit 1).
pub fn audit(args: AuditArgs) -> anyhow::Result<bool> {
    let r = &args.remote;
    match args.what {
        None => list(r, &args.list),
        Some(AuditCommand::List(l)) => list(r, &l),
        Some(AuditCommand::Verify { file: Some(path) }) => {
            anyhow::ensure!(path.is_file(), "{}: no such file", path.display());
            let log = medic_state::SqliteAudit::open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let v = medic_server::http::verdict_json(&medic_state::AuditStore::verify(&log)?);
            report(r, &v)
        }
        Some(AuditCommand::Verify { file: None }) => {
            let v = r.get("/api/v1/medic/audit/verify", &[])?;
            report(r, &v["data"])
        }
    }
}

fn report(r: &Remote, v: &Value) -> anyhow::Result<bool> {
    let intact = v["intact"].as_bool() == Some(true);
    if !r.print_json(v)? {
        if intact {
            println!(
                "intact: {} entries; head {}",
                v["rows"],
                v["head"].as_str().unwrap_or("")
            );
        } else {
            println!(
                "BROKEN at entry {}: {}",
                v["seq"],
                v["reason"].as_str().unwrap_or("")
            );
        }
    }
    Ok(intact)
}

fn list(r: &Remote, l: &ListArgs) -> anyhow::Result<bool> {
    let mut q = vec![("limit", l.limit.to_string())];
    q.extend(l.actor.clone().map(|v| ("actor", v)));
    q.extend(l.action.clone().map(|v| ("action", v)));
    q.extend(l.target.clone().map(|v| ("target", v)));
    q.extend(l.since.clone().map(|v| ("since", v)));
    let v = r.get("/api/v1/medic/audit", &q)?;
    if r.print_json(&v)? {
        return Ok(true);
    }
    let rows: Vec<Vec<String>> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                e["seq"].to_string(),
                ms_time(&e["at"]),
                text(e, "actor"),
                text(e, "source"),
                text(e, "action"),
                text(e, "target"),
                text(e, "result"),
            ]
        })
        .collect();
    table(
        &["SEQ", "AT", "ACTOR", "FROM", "ACTION", "TARGET", "RESULT"],
        &rows,
    );
    Ok(true)
}
