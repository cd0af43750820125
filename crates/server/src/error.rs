//! The server crate's error type.

use std::path::PathBuf;

/// What can stop the server from starting or running.
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
    Storage(#[from] medic_tsdb::Error),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
