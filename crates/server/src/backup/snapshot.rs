//! Taking a snapshot of a running medic in the restore layout: `metrics/` (blocks linked, the
//! head written as blocks), `state/` (online SQLite copies, the anomaly detectors) and
//! `config/` (the config file and every file it references).

use std::fs;
use std::path::{Path, PathBuf};

use medic_backup::SourceFile;
use tracing::info;

use crate::config::Config;

/// A snapshot on disk, offered to one backup.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its id (the backup id it will get).
    pub id: String,
    /// Its directory, in the restore layout.
    pub dir: PathBuf,
    /// When it began (Unix ms): every sample acknowledged before is in it.
    pub began_ms: i64,
    /// Its files.
    pub files: Vec<SourceFile>,
}

/// Where the config's files go in a backup: under `config/`, at their path relative to the
/// config file's directory, or under `config/_external/` with their absolute path when they
/// lie outside it.
pub fn config_backup_path(base: &Path, file: &Path) -> String {
    let rel = match file.strip_prefix(base) {
        Ok(r) if !r.as_os_str().is_empty() => r.to_path_buf(),
        _ => {
            let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
            Path::new("_external").join(abs.strip_prefix("/").unwrap_or(&abs))
        }
    };
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    format!("config/{}", parts.join("/"))
}

/// Writes a snapshot into `dir` (which must not exist). `config_file` is the file medic was
/// started with, if any.
pub fn take(
    dir: &Path,
    id: &str,
    began_ms: i64,
    config: &Config,
    config_file: Option<&Path>,
    db: &medic_tsdb::Db,
) -> Result<Snapshot, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("snapshot: {what}: {e}");
    fs::create_dir_all(dir).map_err(|e| err(&dir.display().to_string(), &e))?;
    let summary = db
        .snapshot(&dir.join("metrics"))
        .map_err(|e| err("metrics", &e))?;
    let state = dir.join("state");
    fs::create_dir_all(&state).map_err(|e| err("state", &e))?;
    for (name, path) in config.state_databases() {
        if path.exists() {
            medic_backup::online_copy(&path, &state.join(name)).map_err(|e| err(name, &e))?;
        }
    }
    let detectors = crate::bridge::anomaly::snapshot_path(&config.storage.path);
    if detectors.exists() {
        fs::copy(&detectors, state.join("anomaly-detectors.json"))
            .map_err(|e| err("anomaly detectors", &e))?;
    }
    if let Some(file) = config_file {
        let base = file.parent().unwrap_or(Path::new("."));
        let mut files = config
            .referenced_files(base)
            .map_err(|e| err("config", &e))?;
        files.insert(0, file.to_path_buf());
        // Compared as real paths, so `../x` or a symlinked directory lands where it really is.
        let real_base = fs::canonicalize(if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        })
        .map_err(|e| err(&base.display().to_string(), &e))?;
        for f in files {
            let real = fs::canonicalize(&f).map_err(|e| err(&f.display().to_string(), &e))?;
            let to = dir.join(config_backup_path(&real_base, &real));
            if let Some(p) = to.parent() {
                fs::create_dir_all(p).map_err(|e| err("config", &e))?;
            }
            fs::copy(&f, &to).map_err(|e| err(&f.display().to_string(), &e))?;
        }
    }
    let source = medic_backup::LocalSource::new(dir).map_err(|e| err("listing", &e))?;
    let files = medic_backup::Source::files(&source).to_vec();
    info!(
        id,
        blocks = summary.blocks,
        head_blocks = summary.head_blocks,
        files = files.len(),
        "snapshot taken for a backup"
    );
    Ok(Snapshot {
        id: id.to_string(),
        dir: dir.to_path_buf(),
        began_ms,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_keep_their_place_or_go_under_external() {
        let base = Path::new("/etc/medic");
        assert_eq!(
            config_backup_path(base, Path::new("/etc/medic/rules/a.yml")),
            "config/rules/a.yml"
        );
        assert_eq!(
            config_backup_path(base, Path::new("/srv/playbooks/p.yml")),
            "config/_external/srv/playbooks/p.yml"
        );
    }
}
