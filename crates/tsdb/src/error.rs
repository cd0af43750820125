//! The tsdb's error type.

use std::path::PathBuf;

/// What went wrong inside the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "fsync"...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Bytes on disk did not decode.
    #[error("decode error: {0}")]
    Decode(String),
    /// A checksum did not match.
    #[error("checksum mismatch in {0}")]
    Checksum(String),
    /// Samples could not be encoded.
    #[error("encode error: {0}")]
    Encode(String),
    /// A block is unusable; it is moved aside rather than loaded.
    #[error("block {path}: {reason}")]
    BadBlock {
        /// The block directory.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// The options do not make sense.
    #[error("invalid storage option: {0}")]
    InvalidOption(String),
    /// The data directory is used by another process.
    #[error(
        "data directory {0} is locked by another medic process (remove {0}/lock only if none runs)"
    )]
    Locked(PathBuf),
    /// The store has been closed.
    #[error("storage is closed")]
    Closed,
    /// A selection went over its caller's sample limit.
    #[error("selection would load more than {0} samples")]
    TooManySamples(usize),
}

impl Error {
    /// Wraps an I/O error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

impl From<Error> for medic_model::StorageError {
    fn from(e: Error) -> Self {
        match e {
            Error::Io { source, .. } => medic_model::StorageError::Io(source),
            Error::Closed => medic_model::StorageError::Closed,
            Error::TooManySamples(n) => medic_model::StorageError::TooManySamples(n),
            other => medic_model::StorageError::Corrupted {
                location: "tsdb".into(),
                reason: other.to_string(),
            },
        }
    }
}
