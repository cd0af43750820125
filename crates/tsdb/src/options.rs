//! Options of the store. The server maps its YAML config onto these; defaults suit one machine
//! with a few hundred thousand series.

use std::time::Duration;

use crate::chunkenc::BlockCodec;

/// When the WAL is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before every commit returns: survives power loss, costs a disk flush per commit.
    Always,
    /// Write every commit to the OS before it returns (survives a crash of medic, `kill -9`
    /// included) and fsync in the background at this interval (bounds loss on power failure).
    Interval(Duration),
    /// Never fsync; the OS writes back when it likes. Survives a crash of medic, not of the host.
    Never,
}

/// Options for [`crate::Db::open`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Width of a block cut from the head, in ms (default 2h). The head holds up to 1.5× this.
    pub block_range_ms: i64,
    /// Keep data at most this long (ms; 0 = forever).
    pub retention_ms: i64,
    /// Keep at most this many bytes of blocks and WAL (0 = no limit); oldest blocks go first.
    pub retention_bytes: u64,
    /// How far behind a series' newest sample an older sample is still accepted (ms, 0 = none).
    pub out_of_order_window_ms: i64,
    /// How far ahead of the wall clock a sample may be (ms; 0 = no limit). Default 10 minutes,
    /// the limit Prometheus applies to scraped samples.
    pub max_future_ms: i64,
    /// WAL fsync policy.
    pub fsync: FsyncPolicy,
    /// Size at which a WAL segment is closed and a new one started.
    pub wal_segment_bytes: u64,
    /// WAL bytes written since the last checkpoint that trigger a new one, bounding replay.
    pub wal_checkpoint_bytes: u64,
    /// Codec for persisted chunks.
    pub block_codec: BlockCodec,
    /// Most samples in one persisted chunk.
    pub block_chunk_samples: usize,
    /// Samples per head chunk before it is closed.
    pub head_chunk_samples: u32,
    /// Longest block compaction produces (ms); default 31 days or a tenth of retention.
    pub max_block_duration_ms: i64,
    /// Most series the head may hold; samples of further new series are rejected (0 = no limit).
    pub max_series: usize,
    /// Downsampled tiers, finest first (empty: none). Raw data is kept `retention_ms`.
    pub tiers: Vec<Tier>,
    /// Largest number of label pairs on a series (0 = no limit).
    pub max_labels_per_series: usize,
    /// Longest label name in bytes (0 = no limit).
    pub max_label_name_bytes: usize,
    /// Longest label value in bytes (0 = no limit).
    pub max_label_value_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            block_range_ms: 2 * 3_600_000,
            retention_ms: 15 * 24 * 3_600_000,
            retention_bytes: 0,
            out_of_order_window_ms: 0,
            max_future_ms: 10 * 60_000,
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            wal_segment_bytes: 128 << 20,
            wal_checkpoint_bytes: 512 << 20,
            block_codec: BlockCodec::Pco,
            block_chunk_samples: 960,
            head_chunk_samples: 120,
            max_block_duration_ms: 31 * 24 * 3_600_000,
            max_series: 2_000_000,
            tiers: Vec::new(),
            max_labels_per_series: 64,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 4096,
        }
    }
}

impl Options {
    /// Checks that the options are coherent.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |s: String| Err(crate::Error::InvalidOption(s));
        if self.block_range_ms < 60_000 {
            return bad(format!(
                "block range must be at least 1m, got {}ms",
                self.block_range_ms
            ));
        }
        if self.out_of_order_window_ms < 0 || self.out_of_order_window_ms > self.block_range_ms / 2
        {
            return bad(format!(
                "out-of-order window must be between 0 and half the block range ({}ms), got {}ms",
                self.block_range_ms / 2,
                self.out_of_order_window_ms
            ));
        }
        if self.wal_segment_bytes < 64 << 10 {
            return bad("WAL segment size must be at least 64KiB".into());
        }
        if !(2..=65_535).contains(&self.head_chunk_samples) {
            return bad("head chunk samples must be between 2 and 65535".into());
        }
        if !(16..=crate::chunkenc::MAX_CHUNK_SAMPLES).contains(&self.block_chunk_samples) {
            return bad("block chunk samples must be between 16 and 1048576".into());
        }
        if self.max_future_ms < 0 {
            return bad("future tolerance must not be negative".into());
        }
        if self.retention_ms < 0 {
            return bad("retention must not be negative".into());
        }
        let mut prev = 0;
        for t in &self.tiers {
            if t.resolution_ms <= prev || t.resolution_ms < 1000 {
                return bad(format!(
                    "downsampling tiers must go from fine to coarse, each at least 1s: {}ms after {prev}ms",
                    t.resolution_ms
                ));
            }
            if t.retention_ms < 0 {
                return bad("tier retention must not be negative".into());
            }
            prev = t.resolution_ms;
        }
        Ok(())
    }

    /// The longest block compaction may produce at `resolution_ms` (0: raw).
    pub fn max_block_ms_at(&self, resolution_ms: i64) -> i64 {
        match self.tiers.iter().find(|t| t.resolution_ms == resolution_ms) {
            None => self.effective_max_block_ms(),
            Some(t) => {
                let mut m = self.max_block_duration_ms;
                if t.retention_ms > 0 {
                    m = m.min(t.retention_ms / 10);
                }
                m.max(self.block_range_ms)
            }
        }
    }

    /// The longest block compaction may produce: the configured maximum, but no more than a
    /// tenth of the retention (so retention frees space in steps), and at least one block range.
    pub fn effective_max_block_ms(&self) -> i64 {
        let mut m = self.max_block_duration_ms;
        if self.retention_ms > 0 {
            m = m.min(self.retention_ms / 10);
        }
        m.max(self.block_range_ms)
    }
}

/// A downsampled tier: aggregates at `resolution_ms`, kept `retention_ms` (0: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Width of one aggregation interval (ms).
    pub resolution_ms: i64,
    /// How long the tier's blocks are kept (ms; 0 = forever).
    pub retention_ms: i64,
}
