//! `medic replay`: rules and playbooks over stored history — what would have fired, been
//! notified, and which repairs would have run or been vetoed, and when (docs/replay.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use medic_server::replay::{self, ReplaySpec};
use medic_server::Config;

use crate::client::table;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// A timeline for people.
    Table,
    /// Everything, for scripts.
    Json,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Start (RFC 3339 or Unix seconds).
    #[arg(long)]
    from: String,
    /// End (RFC 3339 or Unix seconds).
    #[arg(long)]
    to: String,
    /// The config whose rule files, playbooks, alerting and heal settings to replay. Give it by
    /// the path medic was started with: a group's evaluation phase comes from its file's path.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The data directory holding the history: a stopped medic's, or a restored backup
    /// (`medic backup restore --only metrics`). Default: the config's `storage.path`.
    #[arg(long, conflicts_with = "url")]
    data: Option<PathBuf>,
    /// Replay the history of a running medic instead: its metrics are copied from a snapshot
    /// (admin; `--token`/`--user` as for other commands) into a temporary directory.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, env = "MEDIC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[arg(long, env = "MEDIC_USER", hide_env_values = true)]
    user: Option<String>,
    /// Rule files (paths or globs) instead of the config's.
    #[arg(long)]
    rules: Vec<String>,
    /// Playbook files (paths or globs) instead of the config's.
    #[arg(long)]
    playbooks: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the output here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Also write what the recording rules produced as TSDB blocks into this directory (move
    /// them into a stopped medic's data directory to add them to its history).
    #[arg(long)]
    backfill: Option<PathBuf>,
}

fn time(s: &str, what: &str) -> anyhow::Result<i64> {
    medic_model::parse_api_time(s)
        .with_context(|| format!("--{what} {s:?}: not an RFC 3339 time or Unix seconds"))
}

pub fn replay(a: ReplayArgs) -> anyhow::Result<()> {
    let (from, to) = (time(&a.from, "from")?, time(&a.to, "to")?);
    let (config, base) = match &a.config {
        Some(p) => (
            Config::load(p)?,
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => (Config::default(), PathBuf::new()),
    };
    let scratch = tempfile::Builder::new().prefix("medic-replay-").tempdir()?;
    let data = match (&a.url, &a.data) {
        (Some(url), _) => {
            let remote = crate::client::Remote::with(url.clone(), a.token.clone(), a.user.clone());
            crate::backup_cmd::copy_snapshot(
                &remote,
                scratch.path(),
                &["metrics/", "state/alerts.db"],
            )?;
            scratch.path().to_path_buf()
        }
        (None, Some(d)) => d.clone(),
        (None, None) => config.storage.path.clone(),
    };
    let silences = match config
        .state
        .postgres_url(&base)
        .map_err(anyhow::Error::msg)?
    {
        // Replicas keep their silences in PostgreSQL: read them there.
        Some(url) => {
            let st = medic_state::pg::PgState::open(&url).map_err(|e| anyhow::anyhow!("{e}"))?;
            medic_alert::state::StateStore::load_silences(st.as_ref())
                .map_err(|e| anyhow::anyhow!("silences: {e}"))?
        }
        None => load_silences(&data.join("alerts.db"))?,
    };
    let mut opts = config.storage.tsdb_options();
    opts.retention_ms = 0;
    opts.retention_bytes = 0;
    let db = medic_tsdb::Db::open(&data, opts, medic_tsdb::Metrics::default()).map_err(|e| match e {
        medic_tsdb::Error::Locked(d) => anyhow::anyhow!(
            "{}: a running medic holds this directory; replay it with --url, or from a backup (medic backup restore --only metrics)",
            d.display()
        ),
        e => anyhow::anyhow!("{}: {e}", data.display()),
    })?;
    let block_range = config.storage.block_range.as_millis();
    let spec = ReplaySpec {
        config,
        base,
        from,
        to,
        rule_files: (!a.rules.is_empty()).then(|| a.rules.clone()),
        playbooks: (!a.playbooks.is_empty()).then(|| a.playbooks.clone()),
        silences,
    };
    let history: Arc<dyn medic_model::Queryable> = db.clone();
    let r = replay::run(history, spec).map_err(|e| anyhow::anyhow!(e))?;
    let _ = db.close();
    if let Some(dir) = &a.backfill {
        let blocks = replay::backfill(&r, dir, block_range).map_err(|e| anyhow::anyhow!(e))?;
        eprintln!(
            "backfill: {} blocks with {} series, {} samples in {}",
            blocks.len(),
            r.recorded_series,
            r.recorded_samples,
            dir.display()
        );
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&r)? + "\n",
        Format::Html => replay::html(&r),
        Format::Table => {
            let (rows, summary) = replay::table(&r);
            if a.output.is_some() {
                bail!("--output takes --format json or html");
            }
            table(&["TIME", "EVENT", "WHAT", "DETAIL"], &rows);
            println!();
            for l in summary {
                println!("{l}");
            }
            return Ok(());
        }
    };
    match &a.output {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The silences a medic stored in `path` (none when there is no such file).
fn load_silences(path: &Path) -> anyhow::Result<Vec<medic_alert::silence::Silence>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let st = medic_state::SqliteState::open(path).with_context(|| format!("{}", path.display()))?;
    medic_alert::state::StateStore::load_silences(st.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
