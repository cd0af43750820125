//! The store's own metrics, registered by the server into medic's `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label set with one `reason` label.
pub type ReasonLabels = Vec<(&'static str, &'static str)>;

/// Counters and gauges of one store. Cheap to update from hot paths (atomics).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Samples appended to the head.
    pub samples_appended: Counter,
    /// Samples rejected, by reason.
    pub samples_rejected: Family<ReasonLabels, Counter>,
    /// Series in the head.
    pub head_series: Gauge,
    /// Series created in the head.
    pub head_series_created: Counter,
    /// Series removed from the head by garbage collection.
    pub head_series_removed: Counter,
    /// Head chunks in memory.
    pub head_chunks: Gauge,
    /// Oldest timestamp visible in the head (ms).
    pub head_min_time: Gauge,
    /// Newest timestamp in the head (ms).
    pub head_max_time: Gauge,
    /// Head truncations after a block was cut.
    pub head_truncations: Counter,
    /// Bytes written to the WAL.
    pub wal_bytes_written: Counter,
    /// WAL fsyncs.
    pub wal_fsyncs: Counter,
    /// WAL fsync latency.
    pub wal_fsync_duration: Histogram,
    /// WAL segments created.
    pub wal_segments_created: Counter,
    /// Torn or corrupted WAL data truncated at replay.
    pub wal_truncations: Counter,
    /// Records replayed at the last start.
    pub wal_replay_records: Gauge,
    /// Duration of the last WAL replay (seconds).
    pub wal_replay_seconds: Gauge<f64, AtomicU64>,
    /// Checkpoints written.
    pub checkpoints: Counter,
    /// Checkpoints that failed.
    pub checkpoints_failed: Counter,
    /// Blocks written from the head or by compaction.
    pub blocks_written: Counter,
    /// Compactions (merges of blocks).
    pub compactions: Counter,
    /// Compactions that failed.
    pub compactions_failed: Counter,
    /// Compaction latency.
    pub compaction_duration: Histogram,
    /// Blocks loaded.
    pub blocks_loaded: Gauge,
    /// Bytes in blocks on disk.
    pub blocks_bytes: Gauge,
    /// Blocks moved to quarantine because they could not be read.
    pub blocks_quarantined: Counter,
    /// Blocks deleted by retention, by reason (`time`, `size`).
    pub retention_deleted: Family<ReasonLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            samples_appended: Counter::default(),
            samples_rejected: Family::default(),
            head_series: Gauge::default(),
            head_series_created: Counter::default(),
            head_series_removed: Counter::default(),
            head_chunks: Gauge::default(),
            head_min_time: Gauge::default(),
            head_max_time: Gauge::default(),
            head_truncations: Counter::default(),
            wal_bytes_written: Counter::default(),
            wal_fsyncs: Counter::default(),
            wal_fsync_duration: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            wal_segments_created: Counter::default(),
            wal_truncations: Counter::default(),
            wal_replay_records: Gauge::default(),
            wal_replay_seconds: Gauge::default(),
            checkpoints: Counter::default(),
            checkpoints_failed: Counter::default(),
            blocks_written: Counter::default(),
            compactions: Counter::default(),
            compactions_failed: Counter::default(),
            compaction_duration: Histogram::new(exponential_buckets(0.01, 4.0, 9)),
            blocks_loaded: Gauge::default(),
            blocks_bytes: Gauge::default(),
            blocks_quarantined: Counter::default(),
            retention_deleted: Family::default(),
        }
    }
}

impl Metrics {
    /// Counts one rejected sample.
    pub fn reject(&self, reason: &'static str) {
        self.samples_rejected
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// Registers every metric under `medic_tsdb_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("medic_tsdb");
        self.register_head(r);
        self.register_wal(r);
        self.register_blocks(r);
    }

    fn register_head(&self, r: &mut Registry) {
        r.register(
            "head_samples_appended",
            "Samples appended to the head",
            self.samples_appended.clone(),
        );
        r.register(
            "samples_rejected",
            "Samples rejected, by reason",
            self.samples_rejected.clone(),
        );
        r.register(
            "head_series",
            "Series in the head",
            self.head_series.clone(),
        );
        r.register(
            "head_series_created",
            "Series created in the head",
            self.head_series_created.clone(),
        );
        r.register(
            "head_series_removed",
            "Series removed from the head by garbage collection",
            self.head_series_removed.clone(),
        );
        r.register(
            "head_chunks",
            "Chunks held in the head",
            self.head_chunks.clone(),
        );
        r.register(
            "head_min_time_milliseconds",
            "Oldest timestamp the head answers for",
            self.head_min_time.clone(),
        );
        r.register(
            "head_max_time_milliseconds",
            "Newest timestamp in the head",
            self.head_max_time.clone(),
        );
        r.register(
            "head_truncations",
            "Head truncations after a block was cut",
            self.head_truncations.clone(),
        );
    }

    fn register_wal(&self, r: &mut Registry) {
        r.register(
            "wal_written_bytes",
            "Bytes written to the WAL",
            self.wal_bytes_written.clone(),
        );
        r.register(
            "wal_fsync_duration_seconds",
            "WAL fsync latency",
            self.wal_fsync_duration.clone(),
        );
        r.register(
            "wal_segments_created",
            "WAL segments created",
            self.wal_segments_created.clone(),
        );
        r.register(
            "wal_truncations",
            "Torn or corrupted WAL tails truncated during replay",
            self.wal_truncations.clone(),
        );
        r.register(
            "wal_replay_records",
            "Records replayed from the WAL at the last start",
            self.wal_replay_records.clone(),
        );
        r.register(
            "wal_replay_duration_seconds",
            "How long the last WAL replay took",
            self.wal_replay_seconds.clone(),
        );
        r.register(
            "checkpoints",
            "WAL checkpoints written",
            self.checkpoints.clone(),
        );
        r.register(
            "checkpoints_failed",
            "WAL checkpoints that failed",
            self.checkpoints_failed.clone(),
        );
    }

    /// Blocks, compaction and retention.
    fn register_blocks(&self, r: &mut Registry) {
        r.register(
            "blocks_written",
            "Blocks written from the head or by compaction",
            self.blocks_written.clone(),
        );
        r.register(
            "compactions",
            "Compactions (merges of blocks)",
            self.compactions.clone(),
        );
        r.register(
            "compactions_failed",
            "Compactions that failed",
            self.compactions_failed.clone(),
        );
        r.register(
            "compaction_duration_seconds",
            "Compaction latency",
            self.compaction_duration.clone(),
        );
        r.register(
            "blocks_loaded",
            "Persisted blocks open for queries",
            self.blocks_loaded.clone(),
        );
        r.register(
            "blocks_bytes",
            "Bytes of persisted blocks on disk",
            self.blocks_bytes.clone(),
        );
        r.register(
            "blocks_quarantined",
            "Blocks moved aside because they could not be read",
            self.blocks_quarantined.clone(),
        );
        r.register(
            "retention_deleted_blocks",
            "Blocks deleted by retention, by reason",
            self.retention_deleted.clone(),
        );
    }
}
