//! medic's logs: the entries and streams the store keeps (`entry`), LogQL (`logql`: parser,
//! pipeline, evaluator), redaction before anything is stored (`redact`), the store itself
//! (`store`: WAL, head, compressed time-partitioned parts with a label index and token blooms),
//! and the ingest formats (`ingest`: Loki push JSON/protobuf, OTLP logs JSON/protobuf).

pub mod entry;
pub mod ingest;
pub mod logql;
pub mod redact;
pub mod store;
pub mod tail;

pub use entry::{Entry, Push, Stream};
