//! The logs crate's integration tests.

mod logql_docs;
mod redaction;
mod store;
