//! Writing a backup from a source into a destination.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::fsutil::{self, HashReader, HashWriter};
use crate::manifest::{self, check_path, FileEntry, Manifest, BACKUPS, FORMAT, MANIFEST};
use crate::progress::Progress;
use crate::{crypt, Error};

/// A file a source offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceFile {
    /// Its restore-layout path (`metrics/<ULID>/index`, `state/alerts.db`, `config/…`).
    pub path: String,
    /// Its size.
    pub size: u64,
}

/// What a backup is made from: a snapshot on disk, or one served by a running medic.
pub trait Source {
    /// Every file, in the restore layout.
    fn files(&self) -> &[SourceFile];
    /// The content of one of them.
    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, Error>;
}

/// A snapshot directory on this machine, already in the restore layout.
#[derive(Debug)]
pub struct LocalSource {
    root: PathBuf,
    files: Vec<SourceFile>,
}

impl LocalSource {
    /// Lists every file under `root`; refuses paths outside the restore layout.
    pub fn new(root: &Path) -> Result<LocalSource, Error> {
        let mut files = Vec::new();
        for (path, size) in fsutil::walk(root)? {
            check_path(&path).map_err(|m| Error::Source(format!("{}: {m}", root.display())))?;
            files.push(SourceFile { path, size });
        }
        Ok(LocalSource {
            root: root.to_path_buf(),
            files,
        })
    }
}

impl Source for LocalSource {
    fn files(&self) -> &[SourceFile] {
        &self.files
    }
    fn open(&self, path: &str) -> Result<Box<dyn Read + '_>, Error> {
        let p = self.root.join(path);
        Ok(Box::new(File::open(&p).map_err(Error::io("open", &p))?))
    }
}

/// How to write a backup.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Encrypt every file to these recipients (none: plain).
    pub recipients: Vec<age::x25519::Recipient>,
    /// When the backup began (Unix ms): its id and `created_ms`.
    pub began_ms: i64,
    /// The medic version writing it.
    pub medic_version: String,
}

/// What [`write_backup`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteSummary {
    /// The new backup's id.
    pub id: String,
    /// Files in the backup.
    pub files: usize,
    /// Bytes of content in the backup.
    pub bytes: u64,
    /// Files copied by this run.
    pub copied_files: usize,
    /// Bytes copied by this run.
    pub copied_bytes: u64,
    /// Block files already in the destination, taken from an earlier backup.
    pub reused_files: usize,
    /// Their bytes.
    pub reused_bytes: u64,
}

/// Copies `source` into a new backup under `dest`: block files the destination already holds
/// (same block, file and size, listed by a complete backup) are not copied again; the backup
/// directory gets its final name only once its manifest is written and synced.
pub fn write_backup(
    dest: &Path,
    source: &dyn Source,
    opts: &WriteOptions,
    progress: &dyn Progress,
) -> Result<WriteSummary, Error> {
    let _lock = fsutil::lock_destination(dest)?;
    let encrypted = !opts.recipients.is_empty();
    let id = manifest::id_for(opts.began_ms);
    let final_dir = manifest::backup_dir(dest, &id);
    if final_dir.exists() {
        return Err(Error::Refused(format!(
            "{}: a backup with this id exists",
            final_dir.display()
        )));
    }
    let known: HashMap<String, FileEntry> = manifest::list(dest)?
        .into_iter()
        .flat_map(|m| m.files)
        .filter(|f| f.stored.starts_with(manifest::BLOCKS))
        .map(|f| (f.stored.clone(), f))
        .collect();
    let tmp_dir = dest.join(BACKUPS).join(format!("{id}.tmp"));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(Error::io("remove", &tmp_dir))?;
    }
    fs::create_dir_all(&tmp_dir).map_err(Error::io("create", &tmp_dir))?;

    let mut summary = WriteSummary {
        id: id.clone(),
        ..Default::default()
    };
    let total: u64 = source.files().iter().map(|f| f.size).sum();
    progress.begin("copying", total);
    let mut files = Vec::new();
    for f in source.files() {
        check_path(&f.path).map_err(Error::Source)?;
        let stored = manifest::stored_path(&id, &f.path, encrypted);
        if let Some(prev) = known.get(&stored) {
            let on_disk = fs::metadata(dest.join(&stored)).map(|m| m.len()).ok();
            if prev.size == f.size && on_disk == Some(prev.stored_size) {
                summary.reused_files += 1;
                summary.reused_bytes += f.size;
                progress.advance(f.size);
                files.push(prev.clone());
                continue;
            }
        }
        // Files of this backup's own directory are written into its temporary directory.
        let target = match stored.strip_prefix(&format!("{BACKUPS}/{id}/")) {
            Some(rest) => tmp_dir.join(rest),
            None => dest.join(&stored),
        };
        let entry = copy_file(source, f, &stored, &target, &opts.recipients, progress)?;
        summary.copied_files += 1;
        summary.copied_bytes += f.size;
        files.push(entry);
    }
    progress.end();
    summary.files = files.len();
    summary.bytes = files.iter().map(|f| f.size).sum();
    let manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        created_ms: opts.began_ms,
        medic_version: opts.medic_version.clone(),
        encrypted,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Manifest {
        path: tmp_dir.join(MANIFEST),
        message: e.to_string(),
    })?;
    fsutil::write_atomic(&tmp_dir.join(MANIFEST), &json)?;
    fs::rename(&tmp_dir, &final_dir).map_err(Error::io("rename", &tmp_dir))?;
    fsutil::sync_dir(&dest.join(BACKUPS))?;
    Ok(summary)
}

/// Copies one source file to `target` (through `target.tmp`), hashing what was read and what
/// was written, encrypting when there are recipients.
fn copy_file(
    source: &dyn Source,
    f: &crate::SourceFile,
    stored: &str,
    target: &Path,
    recipients: &[age::x25519::Recipient],
    progress: &dyn Progress,
) -> Result<FileEntry, Error> {
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", target.display()));
    let out = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    let mut reader = HashReader::new(source.open(&f.path)?, progress);
    let mut writer = HashWriter::new(BufWriter::with_capacity(1 << 20, out));
    if recipients.is_empty() {
        std::io::copy(&mut reader, &mut writer).map_err(|e| match e.kind() {
            std::io::ErrorKind::Other => Error::Source(format!("{}: {e}", f.path)),
            _ => Error::Io {
                op: "copy",
                path: tmp.clone(),
                source: e,
            },
        })?;
    } else {
        writer = crypt::encrypt_copy(recipients, &mut reader, writer)?;
    }
    writer.flush().map_err(Error::io("write", &tmp))?;
    let (stored_size, stored_hash) = (writer.bytes, fsutil::hex(&writer.hash.finalize_reset()));
    let file = writer
        .inner
        .into_inner()
        .map_err(|e| Error::io("write", &tmp)(e.into_error()))?;
    file.sync_all().map_err(Error::io("fsync", &tmp))?;
    let (size, sha256) = reader.finish();
    if size != f.size {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Source(format!(
            "{}: {size} bytes read, {} announced",
            f.path, f.size
        )));
    }
    fs::rename(&tmp, target).map_err(Error::io("rename", &tmp))?;
    if let Some(dir) = target.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(FileEntry {
        path: f.path.clone(),
        size,
        sha256,
        stored: stored.to_string(),
        stored_size,
        stored_sha256: stored_hash,
    })
}
