//! medic's shared vocabulary. Every other crate speaks in these types: label sets and matchers,
//! samples and timestamps, an injectable [`Clock`], Prometheus-style durations, and the storage
//! traits ([`Queryable`]/[`Querier`]/[`SeriesSet`] for reading, [`Appendable`]/[`Appender`] for
//! writing) that put the PromQL engine, the rules and the ingest paths on top of any store.
//! [`MemStorage`] is a small in-memory store behind those traits, for tests.
//!
//! This crate depends on nothing else of medic's.

mod audit;
mod clock;
mod duration;
pub mod histogram;
mod labels;
mod matcher;
mod memstore;
mod sample;
mod selector;
mod storage;
mod timefmt;
pub mod yaml;

/// An error with its chain of sources, `outer: inner: innermost`, for logs and messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub use audit::{AuditEntry, AuditSink, NoAudit, ACTOR_HEAL};
pub use clock::{Clock, ManualClock, SystemClock};
pub use duration::{format_duration, format_human_duration, parse_duration, Dur, DurationError};
pub use histogram::{FloatHistogram, HistogramSample};
pub use labels::{
    is_valid_label_name, is_valid_metric_name, Label, Labels, LabelsBuilder, METRIC_NAME,
};
pub use matcher::{MatchType, Matcher, MatcherError};
pub use memstore::MemStorage;
pub use sample::{is_stale_nan, Sample, STALE_NAN};
pub use selector::{parse_selector, SelectorError};
pub use storage::{
    AppendError, Appendable, Appender, ChangeObserver, CommitSummary, CommitTap, HistogramSeries,
    InstantQuery, LogLine, Querier, QueryError, QuerySeries, Queryable, SelectHints, Series,
    SeriesRef, SeriesSet, StorageError, VecSeriesSet,
};
pub use timefmt::{
    format_human_time, format_rfc3339, format_rfc3339_millis, format_rfc3339_nano, parse_api_time,
    parse_rfc3339,
};
