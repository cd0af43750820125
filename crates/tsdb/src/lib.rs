//! medic's embedded time-series store, after the design of Prometheus's TSDB.
//!
//! A sample goes through an [`medic_model::Appender`] into the head ([`head`]): the commit
//! writes it to the write-ahead log ([`wal`]) first, then to the series' open XOR chunk
//! ([`chunkenc`]). When the head spans 1.5 block ranges, the oldest range is cut into an
//! immutable block on disk ([`block`]) and the head is truncated; blocks are merged into larger
//! ones ([`compact`]) and deleted by retention. [`Db`] ties these together and answers queries
//! through [`medic_model::Queryable`], merging blocks and head.
//!
//! Layout of the data directory and the byte formats: `crates/tsdb/docs/format/`.
//! Depends only on `medic-model` among medic's crates.

pub mod block;
pub mod block_histograms;
pub mod chunkenc;
pub mod compact;
mod db;
pub mod downsample;
mod encoding;
mod error;
pub mod head;
mod histogram_codec;
pub mod metrics;
mod options;
pub mod postings;
mod querier;
pub mod wal;

pub use chunkenc::BlockCodec;
pub use db::{Db, DbAppender, DbStats, FlushSummary, SnapshotSummary};
pub use error::Error;
pub use metrics::Metrics;
pub use options::{FsyncPolicy, Options, Tier};
pub use querier::DbQuerier;
