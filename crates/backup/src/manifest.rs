//! The manifest of one backup (`backups/<id>/manifest.json`) and the destination's layout.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The manifest format this code writes and reads.
pub const FORMAT: u32 = 1;
/// A backup's manifest file name.
pub const MANIFEST: &str = "manifest.json";
/// Where backups live under a destination.
pub const BACKUPS: &str = "backups";
/// Where shared block files live under a destination.
pub const BLOCKS: &str = "blocks";
/// The suffix of an encrypted file.
pub const AGE_SUFFIX: &str = ".age";

/// What one backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The backup's name: its UTC creation time, `20261204T160102.345Z`.
    pub id: String,
    /// When the backup began (Unix ms). Every sample acknowledged before it is in the backup.
    pub created_ms: i64,
    /// The medic version that wrote it.
    pub medic_version: String,
    /// Whether the files are encrypted to age recipients.
    pub encrypted: bool,
    /// Every file, in the restore layout.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Where the file goes in the restore layout: `metrics/<ULID>/index`, `state/alerts.db`,
    /// `config/medic.yml`.
    pub path: String,
    /// Size of the content.
    pub size: u64,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// Where it is stored, relative to the destination.
    pub stored: String,
    /// Size of the stored file (larger than `size` when encrypted).
    pub stored_size: u64,
    /// SHA-256 of the stored file (hex); checkable without the decryption key.
    pub stored_sha256: String,
}

/// The parts of a backup that can be restored alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    /// TSDB blocks.
    Metrics,
    /// SQLite state databases and the anomaly detectors.
    State,
    /// The config file and the files it references.
    Config,
}

impl Section {
    /// `metrics`, `state` or `config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Metrics => "metrics",
            Section::State => "state",
            Section::Config => "config",
        }
    }

    /// The section named `s`.
    pub fn parse(s: &str) -> Option<Section> {
        match s {
            "metrics" => Some(Section::Metrics),
            "state" => Some(Section::State),
            "config" => Some(Section::Config),
            _ => None,
        }
    }

    /// The section a restore-layout path belongs to.
    pub fn of(path: &str) -> Option<Section> {
        Section::parse(path.split('/').next().unwrap_or(""))
    }
}

impl FileEntry {
    /// The section this file belongs to.
    pub fn section(&self) -> Option<Section> {
        Section::of(&self.path)
    }
}

/// Checks a restore-layout path from a source or a manifest: relative, `/`-separated, no
/// `.`/`..` components, in a known section. Nothing outside the destination or the restore
/// directory can be named.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(format!("{path:?}: not a relative path"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!("{path:?}: empty, `.` or `..` component"));
    }
    if Section::of(path).is_none() {
        return Err(format!("{path:?}: not under metrics/, state/ or config/"));
    }
    if Section::of(path) == Some(Section::Metrics) && path.split('/').count() != 3 {
        return Err(format!(
            "{path:?}: metrics files are metrics/<block>/<file>"
        ));
    }
    Ok(())
}

/// Where a file of backup `id` is stored, relative to the destination: block files in the
/// shared `blocks/`, the rest under the backup's own directory.
pub fn stored_path(id: &str, path: &str, encrypted: bool) -> String {
    let base = match path.strip_prefix("metrics/") {
        Some(rest) => format!("{BLOCKS}/{rest}"),
        None => format!("{BACKUPS}/{id}/{path}"),
    };
    if encrypted {
        base + AGE_SUFFIX
    } else {
        base
    }
}

/// A backup id for a backup begun at `ms`.
pub fn id_for(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y%m%dT%H%M%S.%3fZ").to_string()
}

/// The directory of backup `id`.
pub fn backup_dir(dest: &Path, id: &str) -> PathBuf {
    dest.join(BACKUPS).join(id)
}

/// Reads the manifest of backup `id`.
pub fn load(dest: &Path, id: &str) -> Result<Manifest, Error> {
    let path = backup_dir(dest, id).join(MANIFEST);
    let text = fs::read(&path).map_err(Error::io("read", &path))?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| Error::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if m.format != FORMAT {
        return Err(Error::Manifest {
            path,
            message: format!(
                "format {} (this medic reads format {FORMAT}); use the medic version that wrote it ({})",
                m.format, m.medic_version
            ),
        });
    }
    for f in &m.files {
        check_path(&f.path).map_err(|message| Error::Manifest {
            path: path.clone(),
            message,
        })?;
        if f.stored != stored_path(&m.id, &f.path, m.encrypted) {
            return Err(Error::Manifest {
                path: path.clone(),
                message: format!(
                    "{}: stored at {:?}, not where its path says",
                    f.path, f.stored
                ),
            });
        }
    }
    Ok(m)
}

/// Every complete backup in `dest`, oldest first. Unfinished ones (`*.tmp`) are not listed.
pub fn list(dest: &Path) -> Result<Vec<Manifest>, Error> {
    let dir = dest.join(BACKUPS);
    if !dir.exists() {
        if !dest.exists() {
            return Err(Error::Refused(format!(
                "{}: no such backup destination",
                dest.display()
            )));
        }
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(Error::io("list", &dir))? {
        let entry = entry.map_err(Error::io("list", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || !entry.path().join(MANIFEST).exists() {
            continue;
        }
        out.push(load(dest, &name)?);
    }
    out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(out)
}

/// Backup `id`, or the newest one when `id` is `None`.
pub fn pick(dest: &Path, id: Option<&str>) -> Result<Manifest, Error> {
    match id {
        Some(id) => load(dest, id),
        None => list(dest)?
            .pop()
            .ok_or_else(|| Error::Refused(format!("{}: holds no complete backup", dest.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_layout_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "metrics/../x",
            "state/./a.db",
            "config//x",
            "other/x",
            "metrics/x",
            "metrics/a/b/c",
            "config\\x",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "metrics/01ABC/index",
            "state/alerts.db",
            "config/rules/a.yml",
        ] {
            check_path(good).unwrap();
        }
    }

    #[test]
    fn blocks_are_shared_and_the_rest_is_per_backup() {
        assert_eq!(
            stored_path("X", "metrics/01A/index", false),
            "blocks/01A/index"
        );
        assert_eq!(
            stored_path("X", "state/a.db", true),
            "backups/X/state/a.db.age"
        );
        assert_eq!(id_for(1_764_864_062_345), "20251204T160102.345Z");
    }
}
