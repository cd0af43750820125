//! The PromQL crate's error type.

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The query does not parse; the message is Prometheus's `line:col: parse error: what`.
    #[error("{0}")]
    Parse(String),
    /// The query parsed but cannot be evaluated as written (wrong types, bad arguments).
    #[error("{0}")]
    Eval(String),
    /// The query is nested deeper than the engine allows.
    #[error("query is nested {depth} levels deep; the limit is {max}", max = crate::engine::MAX_DEPTH)]
    TooDeep {
        /// The query's depth.
        depth: usize,
    },
    /// The query would load more samples than allowed.
    #[error("query processing would load too many samples into memory in query execution (limit {0}); narrow the selectors or the time range")]
    TooManySamples(usize),
    /// The query ran longer than its timeout.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The caller gave up on the query (its client disconnected).
    #[error("query cancelled: the client went away")]
    Cancelled,
    /// The store failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<medic_model::StorageError> for Error {
    fn from(e: medic_model::StorageError) -> Self {
        match e {
            medic_model::StorageError::TooManySamples(n) => Error::TooManySamples(n),
            e => Error::Storage(e.to_string()),
        }
    }
}
