//! Checking a backup: every stored checksum; with the content readable, every plaintext
//! checksum, every block opened and read, SQLite's integrity check on every database.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::crypt::{self, Identities};
use crate::fsutil::{self, HashReader};
use crate::manifest::{FileEntry, Manifest, Section};
use crate::progress::Progress;
use crate::{sqlite, Error};

/// Something wrong with one file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file, as stored (relative to the destination).
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// The backup.
    pub id: String,
    /// Files checked.
    pub files: usize,
    /// Bytes of content.
    pub bytes: u64,
    /// Whether the content was read (false for an encrypted backup without an identity: only
    /// the stored checksums were checked).
    pub contents_checked: bool,
    /// Blocks opened and read whole.
    pub blocks: usize,
    /// Databases that passed SQLite's integrity check.
    pub databases: usize,
    /// Everything wrong; empty when the backup is sound.
    pub problems: Vec<Problem>,
}

/// Checks backup `manifest` in `dest`.
pub fn verify(
    dest: &Path,
    manifest: &Manifest,
    ids: &Identities,
    progress: &dyn Progress,
) -> Result<VerifyReport, Error> {
    let mut report = VerifyReport {
        id: manifest.id.clone(),
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        ..Default::default()
    };
    report.problems = check_stored(dest, &manifest.files, progress);
    let sound: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| !report.problems.iter().any(|p| p.file == f.stored))
        .collect();
    if manifest.encrypted && ids.is_empty() {
        return Ok(report);
    }
    report.contents_checked = true;
    let contents = if manifest.encrypted {
        let tmp = tempfile::Builder::new()
            .prefix("medic-verify-")
            .tempdir()
            .map_err(Error::io("create", std::env::temp_dir()))?;
        report.problems.extend(materialize(
            dest,
            manifest,
            &sound,
            tmp.path(),
            ids,
            progress,
        )?);
        check_contents(&sound, |f| tmp.path().join(&f.path))
    } else {
        check_contents(&sound, |f| dest.join(&f.stored))
    };
    report.blocks = contents.blocks;
    report.databases = contents.databases;
    report.problems.extend(contents.problems);
    Ok(report)
}

/// Each stored file exists with the size and SHA-256 the manifest gives.
pub(crate) fn check_stored(
    dest: &Path,
    files: &[FileEntry],
    progress: &dyn Progress,
) -> Vec<Problem> {
    progress.begin("checking", files.iter().map(|f| f.stored_size).sum());
    let mut problems = Vec::new();
    for f in files {
        let path = dest.join(&f.stored);
        let problem = match fs::metadata(&path) {
            Err(e) => Some(format!("missing: {e}")),
            Ok(m) if m.len() != f.stored_size => Some(format!(
                "{} bytes, the manifest says {}",
                m.len(),
                f.stored_size
            )),
            Ok(_) => match fsutil::hash_file(&path, progress) {
                Err(e) => Some(e.to_string()),
                Ok((_, h)) if h != f.stored_sha256 => Some(format!(
                    "SHA-256 {h}, the manifest says {}: the file is damaged",
                    f.stored_sha256
                )),
                Ok(_) => None,
            },
        };
        if let Some(message) = problem {
            problems.push(Problem {
                file: f.stored.clone(),
                message,
            });
        }
    }
    progress.end();
    problems
}

/// Writes the content of `files` under `out` in the restore layout (decrypting), checking each
/// against its plaintext SHA-256. A file whose content is wrong is removed and reported.
pub(crate) fn materialize(
    dest: &Path,
    manifest: &Manifest,
    files: &[&FileEntry],
    out: &Path,
    ids: &Identities,
    progress: &dyn Progress,
) -> Result<Vec<Problem>, Error> {
    progress.begin("restoring", files.iter().map(|f| f.size).sum());
    let mut problems = Vec::new();
    for f in files {
        let src = dest.join(&f.stored);
        let target = out.join(&f.path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        }
        let input =
            BufReader::with_capacity(1 << 20, File::open(&src).map_err(Error::io("open", &src))?);
        let plain: Box<dyn std::io::Read> = if manifest.encrypted {
            match crypt::decrypt_reader(ids, input, &f.stored) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Problem {
                        file: f.stored.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            }
        } else {
            Box::new(input)
        };
        let mut reader = HashReader::new(plain, progress);
        let mut w = BufWriter::with_capacity(
            1 << 20,
            File::create(&target).map_err(Error::io("create", &target))?,
        );
        let copied = std::io::copy(&mut reader, &mut w);
        w.flush().map_err(Error::io("write", &target))?;
        let file = w
            .into_inner()
            .map_err(|e| Error::io("write", &target)(e.into_error()))?;
        file.sync_all().map_err(Error::io("fsync", &target))?;
        let (size, sha) = reader.finish();
        let message = match copied {
            Err(e) => Some(format!("cannot read: {e}")),
            Ok(_) if sha != f.sha256 || size != f.size => Some(format!(
                "content SHA-256 {sha} ({size} bytes), the manifest says {} ({} bytes)",
                f.sha256, f.size
            )),
            Ok(_) => None,
        };
        if let Some(message) = message {
            let _ = fs::remove_file(&target);
            problems.push(Problem {
                file: f.stored.clone(),
                message,
            });
        }
    }
    progress.end();
    Ok(problems)
}

/// What [`check_contents`] found.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    pub blocks: usize,
    pub databases: usize,
    pub problems: Vec<Problem>,
}

/// Opens every block (reading every chunk, whose checksums are verified on read) and runs the
/// integrity check on every database; `locate` says where each file's content is on disk.
pub(crate) fn check_contents(
    files: &[&FileEntry],
    locate: impl Fn(&FileEntry) -> PathBuf,
) -> Contents {
    let mut out = Contents::default();
    let mut blocks: BTreeMap<&str, Vec<&FileEntry>> = BTreeMap::new();
    for f in files {
        match f.section() {
            Some(Section::Metrics) => {
                let block = f.path.split('/').nth(1).unwrap_or("");
                blocks.entry(block).or_default().push(f);
            }
            Some(Section::State) if f.path.ends_with(".db") => {
                match sqlite::integrity_check(&locate(f)) {
                    Ok(None) => out.databases += 1,
                    Ok(Some(m)) => out.problems.push(Problem {
                        file: f.stored.clone(),
                        message: format!("SQLite integrity check: {m}"),
                    }),
                    Err(e) => out.problems.push(Problem {
                        file: f.stored.clone(),
                        message: e.to_string(),
                    }),
                }
            }
            _ => {}
        }
    }
    for (ulid, entries) in blocks {
        let Some(meta) = entries.iter().find(|f| f.path.ends_with("/meta.json")) else {
            out.problems.push(Problem {
                file: format!("{}/{ulid}", crate::manifest::BLOCKS),
                message: "block without meta.json".into(),
            });
            continue;
        };
        let dir = locate(meta)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        match read_block(&dir) {
            Ok(()) => out.blocks += 1,
            Err(e) => out.problems.push(Problem {
                file: meta
                    .stored
                    .rsplit_once('/')
                    .map_or(meta.stored.clone(), |(d, _)| d.to_string()),
                message: format!("block {ulid} does not open: {e}"),
            }),
        }
    }
    out
}

/// Opens a block and decodes every series.
fn read_block(dir: &Path) -> Result<(), medic_tsdb::Error> {
    let block = medic_tsdb::block::Block::open(dir)?;
    for s in block.series_iter() {
        s?;
    }
    Ok(())
}
