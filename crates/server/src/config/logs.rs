//! `logs:` — the log store, its limits and redaction (docs/logs.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use medic_model::Dur;
use serde::Deserialize;

use super::ByteSize;

/// `logs:` in medic.yml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Accept and store logs (default true).
    pub enabled: bool,
    /// Where the log store lives; default `logs/` in the storage directory.
    pub path: Option<PathBuf>,
    /// How long entries are kept (default 30d); older pushes are refused.
    pub retention: Dur,
    /// Most bytes of parts to keep, oldest deleted first (default 0: no limit).
    pub max_bytes: ByteSize,
    /// The head is flushed to parts at this size (default 64MiB)…
    pub head_max_bytes: ByteSize,
    /// …or when its oldest push is this old (default 15m).
    pub flush_after: Dur,
    /// Bytes of lines one query may decode (default 1GiB).
    pub max_query_bytes: ByteSize,
    /// Longest line accepted (default 256KiB, as Loki's `max_line_size`).
    pub max_line_bytes: ByteSize,
    /// Most entries a log query returns (default 5000, as Loki's `max_entries_limit_per_query`).
    pub max_entries: usize,
    /// zstd level of parts (default 3).
    pub compression_level: i32,
    /// Loki ruler files (LogQL alerting and recording rules in Prometheus's rule format), as
    /// paths or globs relative to the config file. Re-read on reload with `rule_files`.
    pub rule_files: Vec<String>,
    /// Redaction before anything is stored.
    pub redaction: medic_logs::redact::RedactionConfig,
    /// Syslog listeners (off unless an address is given).
    pub syslog: SyslogConfig,
    /// Files to tail: `{path: '/var/log/app/*.log', labels: {job: app}}`. Rotation by rename
    /// and by truncation is followed; positions are stored with the lines.
    pub files: Vec<medic_logs::tail::FileSpec>,
    /// How often tailed files are read (default 1s).
    pub files_interval: Dur,
}

/// `logs.syslog`: where to listen for syslog (RFC 5424 and 3164).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// TCP address, e.g. `127.0.0.1:1514` (RFC 6587 framing: octet counting or lines).
    pub tcp: Option<String>,
    /// UDP address, e.g. `127.0.0.1:1514`.
    pub udp: Option<String>,
    /// Labels added to every syslog stream (`job` defaults to `syslog`).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Longest message accepted (default 64KiB).
    pub max_message_bytes: ByteSize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            tcp: None,
            udp: None,
            labels: Default::default(),
            max_message_bytes: ByteSize(64 << 10),
        }
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            path: None,
            retention: Dur::from_secs(30 * 86400),
            max_bytes: ByteSize(0),
            head_max_bytes: ByteSize(64 << 20),
            flush_after: Dur::from_secs(15 * 60),
            max_query_bytes: ByteSize(1 << 30),
            max_line_bytes: ByteSize(256 << 10),
            max_entries: 5000,
            compression_level: 3,
            rule_files: Vec::new(),
            redaction: Default::default(),
            syslog: Default::default(),
            files: Vec::new(),
            files_interval: Dur::from_secs(1),
        }
    }
}

impl LogsConfig {
    /// The store's options, its directory under `storage_path` unless `path` is set.
    pub fn store_options(&self, storage_path: &Path) -> medic_logs::store::Options {
        let mut o = medic_logs::store::Options::new(
            self.path
                .clone()
                .unwrap_or_else(|| storage_path.join("logs")),
        );
        o.retention = self.retention.duration();
        o.max_bytes = self.max_bytes.0;
        o.head_max_bytes = self.head_max_bytes.0 as usize;
        o.flush_after = self.flush_after.duration();
        o.max_query_bytes = self.max_query_bytes.0;
        o.max_line_bytes = self.max_line_bytes.0 as usize;
        o.zstd_level = self.compression_level;
        o.redaction = self.redaction.clone();
        o
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.retention.duration() < Duration::from_secs(3600) {
            return Err(format!(
                "logs.retention: {} is shorter than the 1h minimum",
                self.retention
            ));
        }
        if !(1..=22).contains(&self.compression_level) {
            return Err(format!(
                "logs.compression_level: {} is outside zstd's 1..22",
                self.compression_level
            ));
        }
        if self.max_entries == 0 {
            return Err("logs.max_entries must be at least 1".into());
        }
        for (i, f) in self.files.iter().enumerate() {
            glob::Pattern::new(&f.path)
                .map_err(|e| format!("logs.files[{i}].path: {:?}: {e}", f.path))?;
            if let Some(k) = f
                .labels
                .keys()
                .find(|k| !medic_model::is_valid_label_name(k))
            {
                return Err(format!("logs.files[{i}].labels: invalid label name {k:?}"));
            }
        }
        if self.files_interval.is_zero() {
            return Err("logs.files_interval must be greater than 0".into());
        }
        for k in self.syslog.labels.keys() {
            if !medic_model::is_valid_label_name(k) {
                return Err(format!("logs.syslog.labels: invalid label name {k:?}"));
            }
        }
        medic_logs::redact::Redactor::new(&self.redaction)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
