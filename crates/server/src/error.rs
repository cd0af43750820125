//! The server crate's error type.

use std::path::PathBuf;

/// What can stop the server from starting or running. Each message carries its cause's text
/// itself, so causes are not also chained as sources (which printed them twice).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the field and what was expected.
    #[error("config file {}: {message}", file.display())]
    Config {
        /// The file at fault.
        file: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// The store failed to open or close.
    #[error("storage: {0}")]
    Storage(medic_tsdb::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<medic_tsdb::Error> for Error {
    fn from(e: medic_tsdb::Error) -> Self {
        Error::Storage(e)
    }
}
