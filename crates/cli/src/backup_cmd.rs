//! `medic backup`: online backups of a running medic (create), and what is done with them
//! offline (list, verify, restore, prune), plus `keygen` for age encryption. docs/backup.md.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use medic_backup::{Identities, Keep, Progress, Section, Source, SourceFile};
use serde_json::Value;

use crate::client::{table, Remote};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    what: BackupCommand,
}

#[derive(Debug, clap::Args)]
struct KeepArgs {
    /// Keep the newest N backups.
    #[arg(long, default_value_t = 0)]
    keep_last: usize,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, default_value_t = 0)]
    keep_daily: usize,
    /// Keep the newest backup of each of the last N weeks.
    #[arg(long, default_value_t = 0)]
    keep_weekly: usize,
    /// Keep the newest backup of each of the last N months.
    #[arg(long, default_value_t = 0)]
    keep_monthly: usize,
}

impl KeepArgs {
    fn keep(&self) -> Keep {
        Keep {
            last: self.keep_last,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum BackupCommand {
    /// Backs up a running medic into DEST (a directory): TSDB blocks and the head, every state
    /// database, the config and the files it references. Blocks already in DEST are not
    /// copied again. With --keep-*, prunes DEST afterwards.
    Create {
        dest: PathBuf,
        #[command(flatten)]
        remote: Remote,
        /// Encrypt to this age recipient (`age1…`; repeatable). See `medic backup keygen`.
        #[arg(long = "encrypt-to")]
        encrypt_to: Vec<String>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Lists the backups in DEST.
    List {
        dest: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Checks a backup: every file's SHA-256; with its content readable (not encrypted, or
    /// --identity given), every block opened and read and SQLite's integrity check on every
    /// database. Exits 1 when anything is wrong.
    Verify {
        dest: PathBuf,
        /// Which backup (default the newest).
        #[arg(long)]
        backup: Option<String>,
        /// Every backup in DEST.
        #[arg(long, conflicts_with = "backup")]
        all: bool,
        /// The age identity file that decrypts an encrypted backup.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Restores a backup onto a fresh data directory, checking everything on the way in; a
    /// damaged backup restores nothing.
    Restore {
        dest: PathBuf,
        /// The data directory to restore into (must not be in use or hold what is restored).
        #[arg(long)]
        data: PathBuf,
        /// Which backup (default the newest).
        #[arg(long)]
        backup: Option<String>,
        /// Only one part: metrics, state or config.
        #[arg(long, value_parser = ["metrics", "state", "config"])]
        only: Option<String>,
        /// The age identity file that decrypts an encrypted backup.
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Removes the backups a retention policy does not keep, and blocks no backup holds.
    Prune {
        dest: PathBuf,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Makes an age identity for encrypted backups: writes the secret key to FILE (mode
    /// 0600) and prints the recipient to give `--encrypt-to` or `backup.encrypt_to`.
    Keygen {
        /// Where to write the identity (refuses to overwrite).
        #[arg(long, short)]
        output: PathBuf,
    },
}

pub fn backup(args: BackupArgs) -> anyhow::Result<i32> {
    match args.what {
        BackupCommand::Create {
            dest,
            remote,
            encrypt_to,
            keep,
        } => create(&dest, &remote, &encrypt_to, &keep.keep()),
        BackupCommand::List { dest, json } => list(&dest, json),
        BackupCommand::Verify {
            dest,
            backup,
            all,
            identity,
        } => verify(&dest, backup.as_deref(), all, identity.as_deref()),
        BackupCommand::Restore {
            dest,
            data,
            backup,
            only,
            identity,
        } => restore(
            &dest,
            &data,
            backup.as_deref(),
            only.as_deref(),
            identity.as_deref(),
        ),
        BackupCommand::Prune { dest, keep } => {
            if keep.keep().keeps_all() {
                bail!(
                    "say what to keep: --keep-last, --keep-daily, --keep-weekly or --keep-monthly"
                );
            }
            print_prune(&medic_backup::prune(&dest, &keep.keep())?);
            Ok(0)
        }
        BackupCommand::Keygen { output } => keygen(&output),
    }
}

fn create(dest: &Path, remote: &Remote, encrypt_to: &[String], keep: &Keep) -> anyhow::Result<i32> {
    let recipients = encrypt_to
        .iter()
        .map(|r| medic_backup::parse_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
    let source = HttpSource::take(remote)?;
    let opts = medic_backup::WriteOptions {
        recipients,
        began_ms: source.began_ms,
        medic_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let written = medic_backup::write_backup(dest, &source, &opts, &Bar::default());
    source.release();
    let s = written?;
    println!(
        "backup {} in {}: {} files, {}; copied {} files ({}), {} block files already there ({})",
        s.id,
        dest.display(),
        s.files,
        human(s.bytes),
        s.copied_files,
        human(s.copied_bytes),
        s.reused_files,
        human(s.reused_bytes)
    );
    if !keep.keeps_all() {
        print_prune(&medic_backup::prune(dest, keep)?);
    }
    Ok(0)
}

fn list(dest: &Path, json: bool) -> anyhow::Result<i32> {
    let all = medic_backup::list(dest)?;
    if json {
        let v: Vec<Value> = all
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "created_ms": m.created_ms, "encrypted": m.encrypted,
                    "files": m.files.len(), "bytes": m.files.iter().map(|f| f.size).sum::<u64>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|m| {
            let count = |s: Section| m.files.iter().filter(|f| f.section() == Some(s)).count();
            vec![
                m.id.clone(),
                human(m.files.iter().map(|f| f.size).sum()),
                count(Section::Metrics).to_string(),
                count(Section::State).to_string(),
                count(Section::Config).to_string(),
                if m.encrypted { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    table(
        &[
            "BACKUP",
            "SIZE",
            "METRICS FILES",
            "STATE FILES",
            "CONFIG FILES",
            "ENCRYPTED",
        ],
        &rows,
    );
    Ok(0)
}

fn identities(path: Option<&Path>) -> anyhow::Result<Identities> {
    Ok(match path {
        Some(p) => medic_backup::read_identities(p)?,
        None => Identities::none(),
    })
}

fn verify(
    dest: &Path,
    id: Option<&str>,
    all: bool,
    identity: Option<&Path>,
) -> anyhow::Result<i32> {
    let ids = identities(identity)?;
    let manifests = if all {
        medic_backup::list(dest)?
    } else {
        vec![medic_backup::pick(dest, id)?]
    };
    let mut bad = 0;
    for m in &manifests {
        let r = medic_backup::verify(dest, m, &ids, &Bar::default())?;
        if r.problems.is_empty() {
            let depth = if r.contents_checked {
                format!("{} blocks read, {} databases intact", r.blocks, r.databases)
            } else {
                "encrypted: stored checksums only (pass --identity to check the content)".into()
            };
            println!(
                "backup {}: OK, {} files, {}; {depth}",
                r.id,
                r.files,
                human(r.bytes)
            );
        } else {
            bad += 1;
            println!("backup {}: DAMAGED, {} problems:", r.id, r.problems.len());
            for p in &r.problems {
                println!("  {p}");
            }
        }
    }
    Ok(if bad > 0 { 1 } else { 0 })
}

fn restore(
    dest: &Path,
    data: &Path,
    id: Option<&str>,
    only: Option<&str>,
    identity: Option<&Path>,
) -> anyhow::Result<i32> {
    let m = medic_backup::pick(dest, id)?;
    let opts = medic_backup::RestoreOptions {
        only: only.and_then(Section::parse),
        identities: identity.map(|p| identities(Some(p))).transpose()?,
    };
    let s = medic_backup::restore(dest, &m, data, &opts, &Bar::default())?;
    println!(
        "restored backup {} into {}: {} files, {}; {} blocks, {} databases, all checked",
        s.id,
        data.display(),
        s.files,
        human(s.bytes),
        s.blocks,
        s.databases
    );
    if let Some(c) = &s.config_dir {
        println!(
            "config in {}; start with: medic run --config {}/<your config file> --data {}",
            c.display(),
            c.display(),
            data.display()
        );
        println!("(files the config named outside its directory are under {}/_external/; state_file settings that pointed elsewhere must now point into {})", c.display(), data.display());
    }
    Ok(0)
}

fn print_prune(p: &medic_backup::PruneSummary) {
    println!(
        "kept {} backups, removed {}{}; removed {} block files ({})",
        p.kept.len(),
        p.removed.len(),
        if p.removed.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.removed.join(", "))
        },
        p.block_files_removed,
        human(p.bytes_removed)
    );
}

fn keygen(output: &Path) -> anyhow::Result<i32> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (secret, public) = medic_backup::generate_identity();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    writeln!(f, "# public key: {public}\n{secret}")?;
    f.sync_all()?;
    println!("{public}");
    eprintln!(
        "identity written to {}; keep it apart from the backups",
        output.display()
    );
    Ok(0)
}

/// Bytes for people.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A progress bar on standard error (drawn only on a terminal).
#[derive(Default)]
struct Bar(Mutex<Option<indicatif::ProgressBar>>);

impl Progress for Bar {
    fn begin(&self, phase: &str, total: u64) {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(phase.to_string());
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(b) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            b.inc(bytes);
        }
    }
    fn end(&self) {
        if let Some(b) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

/// Copies the files of a fresh snapshot of the medic at `remote` whose paths start with one of
/// `prefixes` into `dir`, in the data directory's layout (blocks and databases at the top).
pub(crate) fn copy_snapshot(remote: &Remote, dir: &Path, prefixes: &[&str]) -> anyhow::Result<()> {
    let source = HttpSource::take(remote)?;
    let copied = (|| -> anyhow::Result<()> {
        for f in source
            .files()
            .iter()
            .filter(|f| prefixes.iter().any(|p| f.path.starts_with(p)))
        {
            let rel = f.path.split_once('/').map_or(f.path.as_str(), |(_, r)| r);
            let target = dir.join(rel);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p)?;
            }
            let mut out = std::fs::File::create(&target)?;
            std::io::copy(&mut source.open(&f.path)?, &mut out)
                .with_context(|| format!("copying {}", f.path))?;
        }
        Ok(())
    })();
    source.release();
    copied
}

/// A snapshot of a running medic, read over its API piece by piece.
struct HttpSource {
    remote: Remote,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    id: String,
    began_ms: i64,
    files: Vec<SourceFile>,
}

impl HttpSource {
    /// Asks medic for a snapshot.
    fn take(remote: &Remote) -> anyhow::Result<HttpSource> {
        let v = remote.call(
            reqwest::Method::POST,
            "/api/v1/medic/backup/snapshots",
            &[],
            Some(serde_json::json!({})),
        )?;
        let data = &v["data"];
        let files: Vec<SourceFile> =
            serde_json::from_value(data["files"].clone()).context("the snapshot's file list")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(HttpSource {
            remote: remote.clone(),
            rt,
            client,
            id: data["id"].as_str().unwrap_or_default().to_string(),
            began_ms: data["began_ms"].as_i64().unwrap_or_default(),
            files,
        })
    }

    /// Bytes of `path` from `offset` (up to what the server gives at once; empty at the end).
    fn piece(&self, path: &str, offset: u64) -> Result<Vec<u8>, String> {
        let url = format!(
            "{}/api/v1/medic/backup/snapshots/{}/file",
            self.remote.base_url(),
            self.id
        );
        let req = self
            .client
            .get(&url)
            .query(&[("path", path.to_string()), ("offset", offset.to_string())]);
        let req = self.remote.authorize(req);
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            if !status.is_success() {
                return Err(format!(
                    "{url}: {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Ok(body.to_vec())
        })
    }

    /// Tells medic the snapshot can go.
    fn release(&self) {
        let path = format!("/api/v1/medic/backup/snapshots/{}", self.id);
        if let Err(e) = self.remote.call(reqwest::Method::DELETE, &path, &[], None) {
            eprintln!("warning: could not release snapshot {}: {e:#}", self.id);
        }
    }
}

impl Source for HttpSource {
    fn files(&self) -> &[SourceFile] {
        &self.files
    }
    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, medic_backup::Error> {
        Ok(Box::new(PieceReader {
            source: self,
            path: path.to_string(),
            offset: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }))
    }
}

/// Reads one snapshot file over HTTP, a piece at a time.
struct PieceReader<'a> {
    source: &'a HttpSource,
    path: String,
    offset: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for PieceReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf = self
                .source
                .piece(&self.path, self.offset)
                .map_err(std::io::Error::other)?;
            self.pos = 0;
            self.offset += self.buf.len() as u64;
            if self.buf.is_empty() {
                self.done = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
