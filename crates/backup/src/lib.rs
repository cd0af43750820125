//! Backups of a medic data directory.
//!
//! A backup is made from a *source*: a snapshot of a running medic laid out as a restore would
//! lay it out — `metrics/<ULID>/…` (TSDB blocks, the head written as blocks), `state/*.db`
//! (SQLite copies made with the online backup API) and `config/…` (the config file and every
//! file it references). [`write_backup`] copies a source into a *destination* directory:
//!
//! ```text
//! DEST/lock                         held while a backup is written or pruned
//! DEST/blocks/<ULID>/<file>[.age]   block files, shared by every backup that holds the block
//! DEST/backups/<id>/manifest.json   what the backup holds: a SHA-256 per file
//! DEST/backups/<id>/<path>[.age]    everything else (state, config)
//! ```
//!
//! Blocks never change once written, so a later backup to the same destination copies only
//! the blocks it has not seen. A backup directory appears under its final name only when its
//! manifest is complete. [`verify`] checks every checksum, opens every block and runs SQLite's
//! integrity check; [`restore`] does the same on the way in and refuses what fails. Files may
//! be encrypted to age recipients (`crypt`). [`retention::select`] decides which backups a
//! keep-daily/weekly/monthly policy keeps, and [`prune`] removes the rest and the blocks no
//! backup holds any more.

mod crypt;
mod fsutil;
mod manifest;
mod progress;
mod restore;
pub mod retention;
mod sqlite;
mod verify;
mod write;

use std::path::PathBuf;

pub use crypt::{generate_identity, parse_recipient, read_identities, Identities};
pub use manifest::{id_for as manifest_id, list, load, pick, FileEntry, Manifest, Section};
pub use progress::{NoProgress, Progress};
pub use restore::{restore, RestoreOptions, RestoreSummary};
pub use retention::{prune, Keep, PruneSummary};
pub use sqlite::{integrity_check, online_copy};
pub use verify::{verify, Problem, VerifyReport};
pub use write::{write_backup, LocalSource, Source, SourceFile, WriteOptions, WriteSummary};

/// What can go wrong with a backup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// To which path.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A manifest that cannot be read.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The source of a backup failed (the running medic, over HTTP).
    #[error("source: {0}")]
    Source(String),
    /// Encryption or decryption failed (no matching identity, a damaged file).
    #[error("{0}")]
    Crypt(String),
    /// A SQLite database could not be copied or checked.
    #[error("{}: {message}", path.display())]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// The operation was refused before anything was changed.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
