//! `storage`, `wal`, `limits` and `remote_write`: where samples go and how much medic takes in.

use super::*;

/// When WAL writes reach the disk.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every write is handed to the OS before it is acknowledged and fsynced every
    /// `fsync_interval`: a crash of medic loses nothing; a power loss at most that interval.
    #[default]
    Interval,
    /// fsync before acknowledging each write: nothing is lost even on power loss; slower.
    Always,
    /// Leave flushing to the OS.
    Never,
}

/// `storage.wal:` — the write-ahead log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalConfig {
    /// `interval` (default), `always` or `never`.
    #[serde(default)]
    pub fsync: FsyncMode,
    /// fsync period under `interval` (default 1s).
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval: Dur,
    /// Size of one WAL segment file (default 128MiB).
    #[serde(default = "default_segment_size")]
    pub segment_size: ByteSize,
    /// WAL growth since the last checkpoint that triggers a new checkpoint, bounding replay
    /// time after a crash (default 512MiB).
    #[serde(default = "default_checkpoint_size")]
    pub checkpoint_after: ByteSize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncMode::Interval,
            fsync_interval: default_fsync_interval(),
            segment_size: default_segment_size(),
            checkpoint_after: default_checkpoint_size(),
        }
    }
}

pub(super) fn default_fsync_interval() -> Dur {
    Dur::from_secs(1)
}
pub(super) fn default_segment_size() -> ByteSize {
    ByteSize(128 << 20)
}
pub(super) fn default_checkpoint_size() -> ByteSize {
    ByteSize(512 << 20)
}

/// `storage.limits:` — how many series, and what a series may look like.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most series held in memory (default 2000000, roughly 2–4 GiB; 0 = no limit). Samples of
    /// further new series are rejected (`series_limit`), so a cardinality explosion cannot
    /// exhaust memory; existing series keep working.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Most labels on one series, `__name__` included (default 64; 0 = no limit).
    #[serde(default = "default_max_labels")]
    pub max_labels_per_series: usize,
    /// Longest label name in bytes (default 1024; 0 = no limit).
    #[serde(default = "default_max_name")]
    pub max_label_name_length: usize,
    /// Longest label value in bytes (default 4096; 0 = no limit).
    #[serde(default = "default_max_value")]
    pub max_label_value_length: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_series: default_max_series(),
            max_labels_per_series: default_max_labels(),
            max_label_name_length: default_max_name(),
            max_label_value_length: default_max_value(),
        }
    }
}

pub(super) fn default_max_series() -> usize {
    2_000_000
}
pub(super) fn default_max_labels() -> usize {
    64
}
pub(super) fn default_max_name() -> usize {
    1024
}
pub(super) fn default_max_value() -> usize {
    4096
}

/// `storage:` — the embedded time-series store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (default `./data`). `--data` overrides it.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// How long to keep samples (default 15d; `0` keeps them forever).
    #[serde(default = "default_retention")]
    pub retention: Dur,
    /// Most bytes of blocks and WAL to keep; the oldest blocks are deleted first (default 0:
    /// no limit). Accepts units: `50GB`, `200GiB`.
    #[serde(default)]
    pub retention_size: ByteSize,
    /// Time span of a block cut from the in-memory head (default 2h). The head holds up to
    /// 1.5× this; samples older than half of it behind the newest are rejected as too old.
    #[serde(default = "default_block_range")]
    pub block_range: Dur,
    /// Accept samples up to this far behind their series' newest sample (default 0s: reject
    /// out-of-order samples, as Prometheus does by default). At most half of `block_range`.
    #[serde(default = "default_zero")]
    pub out_of_order_window: Dur,
    /// Codec for persisted chunks: `pco` (default, smallest) or `xor` (Gorilla, as in the head).
    #[serde(default)]
    pub block_codec: medic_tsdb::BlockCodec,
    /// The write-ahead log.
    #[serde(default)]
    pub wal: WalConfig,
    /// Limits on series shape.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Downsampled tiers kept beside raw samples, finest first (default: 1m for 30d and 5m for
    /// 365d; `[]` turns downsampling off). docs/retention.md.
    #[serde(default = "default_tiers")]
    pub downsampling: Vec<TierConfig>,
}

/// One entry of `storage.downsampling`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Width of one aggregation interval (at least 1s).
    pub resolution: Dur,
    /// How long the tier is kept (`0`: forever).
    pub retention: Dur,
}

fn default_tiers() -> Vec<TierConfig> {
    vec![
        TierConfig {
            resolution: Dur::from_secs(60),
            retention: Dur::from_secs(30 * 86_400),
        },
        TierConfig {
            resolution: Dur::from_secs(300),
            retention: Dur::from_secs(365 * 86_400),
        },
    ]
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: default_path(),
            retention: default_retention(),
            retention_size: ByteSize(0),
            block_range: default_block_range(),
            out_of_order_window: default_zero(),
            block_codec: medic_tsdb::BlockCodec::default(),
            wal: WalConfig::default(),
            limits: LimitsConfig::default(),
            downsampling: default_tiers(),
        }
    }
}

pub(super) fn default_path() -> PathBuf {
    PathBuf::from("./data")
}
pub(super) fn default_retention() -> Dur {
    Dur::from_secs(15 * 86_400)
}
pub(super) fn default_block_range() -> Dur {
    Dur::from_secs(2 * 3600)
}
pub(super) fn default_zero() -> Dur {
    Dur::ZERO
}

impl StorageConfig {
    /// The store's options.
    pub fn tsdb_options(&self) -> medic_tsdb::Options {
        let fsync = match self.wal.fsync {
            FsyncMode::Interval => {
                medic_tsdb::FsyncPolicy::Interval(self.wal.fsync_interval.duration())
            }
            FsyncMode::Always => medic_tsdb::FsyncPolicy::Always,
            FsyncMode::Never => medic_tsdb::FsyncPolicy::Never,
        };
        medic_tsdb::Options {
            block_range_ms: self.block_range.as_millis(),
            retention_ms: self.retention.as_millis(),
            retention_bytes: self.retention_size.0,
            out_of_order_window_ms: self.out_of_order_window.as_millis(),
            fsync,
            wal_segment_bytes: self.wal.segment_size.0,
            wal_checkpoint_bytes: self.wal.checkpoint_after.0,
            block_codec: self.block_codec,
            max_series: self.limits.max_series,
            max_labels_per_series: self.limits.max_labels_per_series,
            max_label_name_bytes: self.limits.max_label_name_length,
            max_label_value_bytes: self.limits.max_label_value_length,
            tiers: self
                .downsampling
                .iter()
                .map(|t| medic_tsdb::Tier {
                    resolution_ms: t.resolution.as_millis(),
                    retention_ms: t.retention.as_millis(),
                })
                .collect(),
            ..medic_tsdb::Options::default()
        }
    }
}

/// `remote_write:` — as a mapping, the receiver for Prometheus remote write 1.0 (and, under
/// `send_to`, where to send); as a list, Prometheus's: the stores to send samples to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Accept remote write at all (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Largest compressed request body (default 32MiB); larger requests get 413.
    #[serde(default = "default_max_body")]
    pub max_body_size: ByteSize,
    /// Largest body after snappy decompression (default 256MiB); larger requests get 413.
    #[serde(default = "default_max_decoded")]
    pub max_decoded_size: ByteSize,
    /// Memory that requests being decoded and stored may hold together (default 1GiB),
    /// estimated at 8× each body's decoded size; a request that finds it full gets 503 with
    /// `Retry-After` (Prometheus retries), so concurrent large bodies cannot exhaust memory.
    #[serde(default = "default_max_inflight")]
    pub max_inflight_bytes: ByteSize,
    /// Where to send every stored sample (remote write out). Written as Prometheus writes it:
    /// `remote_write:` as a list; with the receiver's settings, under `send_to:`.
    #[serde(default)]
    pub send_to: Vec<super::RemoteWriteTarget>,
}

pub(super) fn default_max_inflight() -> ByteSize {
    ByteSize(1 << 30)
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_body_size: default_max_body(),
            max_decoded_size: default_max_decoded(),
            max_inflight_bytes: default_max_inflight(),
            send_to: Vec::new(),
        }
    }
}

pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_max_body() -> ByteSize {
    ByteSize(32 << 20)
}
pub(super) fn default_max_decoded() -> ByteSize {
    ByteSize(256 << 20)
}
