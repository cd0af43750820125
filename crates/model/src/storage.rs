//! The storage traits, shaped after Prometheus's `storage` package: readers ask a [`Queryable`]
//! for a [`Querier`] over a time range and select series with matchers; writers get an
//! [`Appender`] from an [`Appendable`], add samples, and commit or roll back.

use crate::{HistogramSample, Labels, Matcher, Sample};

/// Opaque handle to a series inside one store, returned by [`Appender::series_ref`] so that
/// repeated appends to a series skip the label lookup.
pub type SeriesRef = u64;

/// A failure of the store itself (I/O, corruption, limits), as opposed to a rejected sample.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Reading or writing the disk failed.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data failed a checksum or did not decode.
    #[error("corrupted data in {location}: {reason}")]
    Corrupted {
        /// Which file or block.
        location: String,
        /// What was wrong.
        reason: String,
    },
    /// The request would exceed a configured limit.
    #[error("{0}")]
    Limit(String),
    /// The store is shutting down.
    #[error("storage is closed")]
    Closed,
    /// A selection would return more samples than its caller allowed; it stopped before
    /// decoding the rest.
    #[error("selection would load more than {0} samples")]
    TooManySamples(usize),
}

/// Why one sample was not accepted. The valid samples of a batch are kept; each rejected one is
/// counted under [`AppendError::reason`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    /// Older than the newest sample of its series (and outside any out-of-order window).
    #[error("out of order sample")]
    OutOfOrder,
    /// Older than the store accepts at all (before the head's window).
    #[error("out of bounds: sample is too old")]
    TooOld,
    /// Newer than the clock allows (by default more than 10 minutes ahead, Prometheus's rule for
    /// scrapes): such a sample would move the store's idea of "now" and with it retention.
    #[error("out of bounds: sample timestamp is too far in the future")]
    TooFarInFuture,
    /// Same timestamp as the newest sample of its series but a different value.
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, the metric name is invalid or missing, or a
    /// name is repeated.
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// More labels than the configured limit.
    #[error("too many labels: {count} > limit {limit}")]
    TooManyLabels {
        /// Labels on the series.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A label name or value is longer than the configured limit.
    #[error("label {name:?} is {len} bytes long, over the limit of {limit}")]
    LabelTooLong {
        /// The label name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Creating the series would exceed the store's series limit.
    #[error("series limit of {limit} reached; new series are rejected until old ones are removed")]
    SeriesLimit {
        /// The configured limit.
        limit: usize,
    },
    /// The store cannot take samples now.
    #[error("storage error: {0}")]
    Storage(String),
}

impl AppendError {
    /// A short, stable reason for metrics labels (`medic_tsdb_samples_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            AppendError::OutOfOrder => "out_of_order",
            AppendError::TooOld => "too_old",
            AppendError::TooFarInFuture => "too_far_in_future",
            AppendError::DuplicateTimestamp => "duplicate_timestamp",
            AppendError::InvalidLabels(_) => "invalid_labels",
            AppendError::TooManyLabels { .. } => "too_many_labels",
            AppendError::LabelTooLong { .. } => "label_too_long",
            AppendError::SeriesLimit { .. } => "series_limit",
            AppendError::Storage(_) => "storage_error",
        }
    }
}

/// A series with its samples inside the queried range, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Samples in `[mint, maxt]`, oldest first.
    pub samples: Vec<Sample>,
}

/// The series a [`Querier::select`] found, sorted by labels.
pub trait SeriesSet: Iterator<Item = Result<Series, StorageError>> + Send {}

impl<T: Iterator<Item = Result<Series, StorageError>> + Send> SeriesSet for T {}

/// A [`SeriesSet`] over series already in memory.
pub type VecSeriesSet = std::vec::IntoIter<Result<Series, StorageError>>;

/// Told when stored data changes in a way a reader of the past must hear about: samples
/// appended (in order or late), data deleted or dropped by retention. What caches of query
/// results listen to (`medic_promql::ResultCache`).
pub trait ChangeObserver: Send + Sync {
    /// Data at or after `from` (ms) may have changed; `i64::MIN` means anything may have.
    /// Called on every commit, so it must be cheap when `from` is newer than anything it holds.
    fn changed_from(&self, from: i64);
}

/// Given every commit's accepted samples, in commit order, before the commit is acknowledged
/// and applied: what forwards medic's samples elsewhere (remote write out) hooks into. An error
/// fails the commit — nothing of it is stored — so what medic acknowledges has been handed on.
pub trait CommitTap: Send + Sync {
    /// The commit's series, each with its samples `(t, v)` in the order appended.
    fn committed(&self, series: &[(&Labels, Vec<(i64, f64)>)]) -> Result<(), String>;
}

/// Something that can be read over a time range.
pub trait Queryable: Send + Sync {
    /// A querier over samples with timestamps in `[mint, maxt]` (milliseconds, inclusive).
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;
}

/// Reads series from a fixed time range.
pub trait Querier: Send {
    /// Series that match all `matchers` and have at least one sample in range, sorted by labels.
    /// An empty matcher list selects nothing.
    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError>;

    /// As [`Querier::select`], but fails with [`StorageError::TooManySamples`] once more than
    /// `max_samples` samples would be returned — a store that can stops decoding there, so
    /// that a selection over the limit never holds more than the limit in memory. The default
    /// selects everything and counts afterwards.
    fn select_at_most(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        let all: Vec<Result<Series, StorageError>> = self.select(matchers)?.collect();
        let mut n = 0usize;
        for s in all.iter().flatten() {
            n = n.saturating_add(s.samples.len());
            if n > max_samples {
                return Err(StorageError::TooManySamples(max_samples));
            }
        }
        Ok(Box::new(all.into_iter()))
    }

    /// As [`Querier::select_at_most`], told what the samples are for, so a store that keeps
    /// downsampled data can answer from it (`hints`). The default ignores the hints.
    fn select_hinted(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
        hints: &SelectHints,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        let _ = hints;
        self.select_at_most(matchers, max_samples)
    }

    /// Label names of the series that match (all series when `matchers` is empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` among the series that match (all series when `matchers` is
    /// empty), sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Native histograms of the series that match, in the querier's range, oldest first. A
    /// series may hold floats at some times and histograms at others: its floats come from
    /// [`Querier::select`], its histograms from here. Stores that keep no histograms return
    /// none.
    fn select_histograms(
        &self,
        _matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        Ok(Vec::new())
    }
}

/// The native histograms of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Histograms in `[mint, maxt]`, oldest first.
    pub samples: Vec<HistogramSample>,
}

/// What a selection is for, so a store with downsampled tiers can pick one (Thanos's
/// `SelectHints` and `max_source_resolution`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// The PromQL function the samples feed (`rate`, `max_over_time`, …), if any.
    pub func: Option<String>,
    /// The coarsest resolution (ms) that serves the query; 0 prefers raw samples. Older data
    /// only a tier holds is read from the tier either way.
    pub max_resolution_ms: i64,
}

/// Something that can take samples.
pub trait Appendable: Send + Sync {
    /// A new transaction.
    fn appender(&self) -> Box<dyn Appender + '_>;
}

/// What a commit accepted and rejected.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CommitSummary {
    /// Samples now durable and visible.
    pub accepted: usize,
    /// Of `accepted`, native histograms.
    pub accepted_histograms: usize,
    /// Samples refused at commit time (e.g. a concurrent writer got a newer sample in first),
    /// with the reason; rejections found at append time were already returned by `append`.
    pub rejected: Vec<(SeriesRef, AppendError)>,
}

/// A write transaction: samples are buffered until [`Appender::commit`], which makes them durable
/// (written to the WAL) before it returns, or until [`Appender::rollback`], which drops them.
pub trait Appender: Send {
    /// The reference of the series with these labels, creating it at commit if it is new.
    /// Validates the labels (names, limits).
    fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, AppendError>;

    /// The reference of an existing series given its labels as borrowed pairs sorted by name and
    /// their [`Labels::hash_pairs`], without allocating; `None` when the series is unknown (or the
    /// store has no such fast path), in which case callers build [`Labels`] and use
    /// [`Appender::series_ref`].
    fn existing_series_ref(&mut self, _hash: u64, _pairs: &[(&str, &str)]) -> Option<SeriesRef> {
        None
    }

    /// Adds a sample to a series. Order, age and duplicates are checked here against what is
    /// already stored and buffered.
    fn append(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError>;

    /// Adds a native histogram to a series, with the same order, age and duplicate rules as
    /// [`Appender::append`]. A store that keeps no histograms refuses it.
    fn append_histogram(
        &mut self,
        _series: SeriesRef,
        _t: i64,
        _h: std::sync::Arc<crate::FloatHistogram>,
    ) -> Result<(), AppendError> {
        Err(AppendError::Storage(
            "this store does not keep native histograms".into(),
        ))
    }

    /// Convenience: [`Appender::series_ref`] then [`Appender::append`].
    fn append_labels(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        let r = self.series_ref(labels)?;
        self.append(r, t, v)?;
        Ok(r)
    }

    /// Makes the buffered samples durable and visible.
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError>;

    /// Drops the buffered samples.
    fn rollback(self: Box<Self>);
}

/// One series of a query result: its labels and its samples (one for an instant query).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    pub labels: Labels,
    /// `(timestamp ms, value)`, oldest first.
    pub samples: Vec<(i64, f64)>,
}

/// PromQL as a service: what components that only need answers (the heal engine) use, so they
/// do not depend on the evaluator. Calls may block; run them off the async runtime.
/// Why a query for another component (the heal engine) gave no series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse, or its evaluation failed (a limit, the timeout, storage).
    #[error("{0}")]
    Failed(String),
    /// The query ran, but its result is not series or a number.
    #[error("{expr}: a {kind} is not a usable result")]
    NotSeries { expr: String, kind: &'static str },
}

/// One log line a LogQL log query returned, for components that only need answers.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Nanoseconds since the epoch.
    pub ts_ns: i64,
    /// The labels of the line's stream (with what the query's parsers extracted).
    pub labels: std::collections::BTreeMap<String, String>,
    pub line: String,
}

pub trait InstantQuery: Send + Sync {
    /// Evaluates `expr` at `t` (ms). A scalar comes back as one series without labels.
    fn instant(&self, expr: &str, t: i64) -> Result<Vec<QuerySeries>, QueryError>;

    /// Evaluates `expr` at every `step` from `start` to `end` (ms, inclusive).
    fn range(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<QuerySeries>, QueryError>;

    /// Runs the LogQL log query `expr` over `[start, end)` (ms) and returns at most `limit`
    /// lines, newest first. Stores without logs answer with an error.
    fn logs(
        &self,
        expr: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<LogLine>, QueryError> {
        let _ = (expr, start, end, limit);
        Err(QueryError::Failed("logs are not available here".into()))
    }
}
