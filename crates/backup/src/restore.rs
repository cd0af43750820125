//! Restoring a backup onto a fresh data directory.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::crypt::Identities;
use crate::fsutil;
use crate::manifest::{FileEntry, Manifest, Section};
use crate::progress::Progress;
use crate::verify::{check_contents, check_stored, materialize, Problem};
use crate::Error;

/// What to restore.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// One section only (`--only`); all when `None`.
    pub only: Option<Section>,
    /// Identities that decrypt an encrypted backup.
    pub identities: Option<Identities>,
}

/// What [`restore`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    /// The backup restored.
    pub id: String,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Blocks restored (and read whole on the way in).
    pub blocks: usize,
    /// Databases restored (and checked).
    pub databases: usize,
    /// Where the config went, when it was restored: `DIR/config/<its file name>`.
    pub config_dir: Option<PathBuf>,
}

/// Where a restore-layout path lands in the data directory: blocks and state at the top,
/// the config under `config/`.
fn target(data: &Path, path: &str) -> PathBuf {
    match path.split_once('/') {
        Some(("metrics", rest)) | Some(("state", rest)) => data.join(rest),
        _ => data.join(path),
    }
}

/// Restores `manifest` from `dest` into `data`. Refuses a directory a running medic holds, and
/// one that already holds what would be restored; checks every file (checksums, blocks read
/// whole, SQLite integrity) in a staging directory first and moves it into place only when all
/// of it is sound, so a damaged backup changes nothing.
pub fn restore(
    dest: &Path,
    manifest: &Manifest,
    data: &Path,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary, Error> {
    let files: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| opts.only.is_none_or(|s| f.section() == Some(s)))
        .collect();
    if files.is_empty() {
        return Err(Error::Refused(format!(
            "backup {} holds nothing to restore{}",
            manifest.id,
            opts.only
                .map(|s| format!(" in {}", s.as_str()))
                .unwrap_or_default()
        )));
    }
    fs::create_dir_all(data).map_err(Error::io("create", data))?;
    let _lock = hold_data_dir(data)?;
    check_fresh(data, &files)?;
    let none = Identities::none();
    let ids = opts.identities.as_ref().unwrap_or(&none);
    if manifest.encrypted && ids.is_empty() {
        return Err(Error::Refused(format!(
            "backup {} is encrypted: pass the age identity file (--identity)",
            manifest.id
        )));
    }
    let owned: Vec<FileEntry> = files.iter().map(|f| (*f).clone()).collect();
    refuse_if(&manifest.id, check_stored(dest, &owned, progress))?;

    let staging = data.join(format!(".restore-{}.tmp", manifest.id));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(Error::io("remove", &staging))?;
    }
    let result = stage(dest, manifest, &files, &staging, ids, progress);
    let contents = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Everything is sound: move it into place.
    let mut moved = BTreeSet::new();
    for f in &files {
        let top = top_level(&f.path);
        if !moved.insert(top.clone()) {
            continue;
        }
        let from = staging.join(&top);
        let to = target(data, &top);
        fs::rename(&from, &to).map_err(Error::io("move into place", &to))?;
    }
    fs::remove_dir_all(&staging).map_err(Error::io("remove", &staging))?;
    fsutil::sync_dir(data)?;
    Ok(RestoreSummary {
        id: manifest.id.clone(),
        files: files.len(),
        bytes: files.iter().map(|f| f.size).sum(),
        blocks: contents.0,
        databases: contents.1,
        config_dir: files
            .iter()
            .any(|f| f.section() == Some(Section::Config))
            .then(|| data.join("config")),
    })
}

/// Writes the files into `staging` and checks them there; (blocks, databases).
fn stage(
    dest: &Path,
    manifest: &Manifest,
    files: &[&FileEntry],
    staging: &Path,
    ids: &Identities,
    progress: &dyn Progress,
) -> Result<(usize, usize), Error> {
    refuse_if(
        &manifest.id,
        materialize(dest, manifest, files, staging, ids, progress)?,
    )?;
    let c = check_contents(files, |f| staging.join(&f.path));
    refuse_if(&manifest.id, c.problems)?;
    Ok((c.blocks, c.databases))
}

fn refuse_if(id: &str, problems: Vec<Problem>) -> Result<(), Error> {
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    Err(Error::Refused(format!(
        "backup {id} is damaged; nothing was restored:\n{}",
        list.join("\n")
    )))
}

/// The part of a restore-layout path moved into place as one: `metrics/<ULID>`,
/// `state/<file>`, `config`.
fn top_level(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    match parts[0] {
        "config" => "config".into(),
        _ => parts[..2].join("/"),
    }
}

/// Takes the data directory's lock, as `medic run` does, so a running medic's directory is
/// refused and none can start on it while the restore runs.
fn hold_data_dir(data: &Path) -> Result<File, Error> {
    let path = data.join("lock");
    let f = File::create(&path).map_err(Error::io("create", &path))?;
    if f.try_lock().is_err() {
        return Err(Error::Refused(format!(
            "{}: a running medic holds this directory; stop it or restore elsewhere",
            data.display()
        )));
    }
    Ok(f)
}

/// Refuses a directory that already holds what the restore would write.
fn check_fresh(data: &Path, files: &[&FileEntry]) -> Result<(), Error> {
    let mut clashes = Vec::new();
    if files.iter().any(|f| f.section() == Some(Section::Metrics)) && data.join("wal").exists() {
        clashes.push(data.join("wal"));
    }
    let tops: BTreeSet<String> = files.iter().map(|f| top_level(&f.path)).collect();
    for t in tops {
        let p = target(data, &t);
        if p.exists() {
            clashes.push(p);
        }
    }
    if clashes.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = clashes
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect();
    Err(Error::Refused(format!(
        "{} is not fresh; it already holds:\n{}\nrestore into an empty directory",
        data.display(),
        list.join("\n")
    )))
}
