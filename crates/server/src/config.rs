//! medic's configuration file (`medic.yml`). Every struct here is documented field by field;
//! `docs/configuration.md` is written from these comments. Scrape configuration uses
//! Prometheus's syntax unchanged, so `scrape_configs` can be copied from a `prometheus.yml`.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use serde::{de, Deserialize, Deserializer};

use crate::scrape::relabel::RelabelConfig;
use crate::Error;

pub use medic_model::Dur;

/// A size in bytes: a plain number, or with a unit (`512KiB`, `128MiB`, `10GB`, `1TB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `128MiB`, `10GB`, `4096`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            format!(
                "not a size: {s:?}; expected a number with an optional unit like 512MiB or 10GB"
            )
        })?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => {
                return Err(format!(
                "unknown size unit {other:?} in {s:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(de::Error::custom),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Defaults shared by all scrape jobs, as in Prometheus.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// The embedded time-series store.
    #[serde(default)]
    pub storage: StorageConfig,
    /// The Prometheus remote_write receiver at `POST /api/v1/write`. (A `prometheus.yml`'s
    /// `remote_write:` list of stores to send to is refused with a message that says what to do.)
    #[serde(default, deserialize_with = "remote_write_field")]
    pub remote_write: RemoteWriteConfig,
    /// Prometheus's `remote_read`: refused when it lists stores (medic answers from its own).
    #[serde(default)]
    pub remote_read: Option<serde_norway::Value>,
    /// Prometheus scrape jobs, in Prometheus's syntax. When the file has no `scrape_configs`
    /// key, medic scrapes its own `/metrics` (job `medic`); an explicit empty list scrapes
    /// nothing.
    pub scrape_configs: Option<Vec<ScrapeConfig>>,
    /// Prometheus rule files to load, as paths or globs (`rules/*.yml`); relative ones are
    /// taken from the config file's directory. Re-read on SIGHUP and `POST /-/reload`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rule_files: Vec<String>,
    /// How alerting rules behave around restarts and notifications.
    #[serde(default)]
    pub rules: RulesConfig,
    /// The alert manager: where alerts from rules and from outside go.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// The heal engine: playbooks and their guards.
    #[serde(default)]
    pub heal: HealConfig,
    /// Limits of the PromQL engine (Prometheus's `--query.*` flags).
    #[serde(default)]
    pub query: QueryConfig,
}

/// `query:` — limits of the PromQL engine, for the API, rules and playbooks alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Most samples one query may hold at once: loaded by selectors, produced by subqueries,
    /// cached across steps (Prometheus's `--query.max-samples`, default 50,000,000). Bounds a
    /// query's memory at roughly 16–48 bytes per sample.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Longest a query may run (default 2m; a request's `timeout` may only shorten it).
    #[serde(default = "default_query_timeout")]
    pub timeout: Dur,
    /// How far back an instant selector looks for a sample (default 5m).
    #[serde(default = "default_lookback")]
    pub lookback_delta: Dur,
}

fn default_max_samples() -> usize {
    50_000_000
}

fn default_query_timeout() -> Dur {
    Dur::from_secs(120)
}

fn default_lookback() -> Dur {
    Dur::from_secs(300)
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_samples: default_max_samples(),
            timeout: default_query_timeout(),
            lookback_delta: default_lookback(),
        }
    }
}

impl QueryConfig {
    /// The engine options these limits give.
    pub fn engine_options(&self) -> medic_promql::EngineOptions {
        medic_promql::EngineOptions {
            lookback_ms: self.lookback_delta.as_millis(),
            max_samples: self.max_samples.max(1),
            timeout: self.timeout.duration(),
            ..medic_promql::EngineOptions::default()
        }
    }
}

/// `heal:` — the self-healing engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealConfig {
    /// Playbook files, as paths or globs (`playbooks/*.yml`), relative to this file.
    #[serde(default)]
    pub playbooks: Vec<String>,
    /// `false` stops every automatic repair (executions are recorded as vetoed).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Decide and record everything, execute nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Where the execution journal lives; default `heal.db` in the storage directory.
    pub state_file: Option<PathBuf>,
    /// At most this many executions started across all playbooks per window.
    pub rate_limit: Option<medic_heal::playbook::RateLimit>,
    /// Periods in which medic repairs nothing the matchers select.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
    /// The trust ladder.
    #[serde(default)]
    pub trust: medic_heal::trust::TrustConfig,
    /// How often condition triggers are evaluated (default 15s).
    #[serde(default = "default_condition_interval")]
    pub condition_interval: Dur,
    /// How long an approval is awaited before escalating, unless a playbook says (default 30m).
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout: Dur,
    /// How long finished executions are kept (default 30d).
    #[serde(default = "default_history_retention")]
    pub retention: Dur,
}

fn default_condition_interval() -> Dur {
    Dur::from_secs(15)
}
fn default_approval_timeout() -> Dur {
    Dur::from_secs(30 * 60)
}

impl Default for HealConfig {
    fn default() -> Self {
        medic_model::yaml::from_str("{}").expect("defaults parse")
    }
}

/// One maintenance window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub name: String,
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// A selector over alert labels (`{service="db"}`); everything when absent.
    pub matchers: Option<String>,
}

impl HealConfig {
    /// The engine options this section implies.
    pub fn options(&self, external_url: &str) -> Result<medic_heal::Options, String> {
        let mut maintenance = Vec::new();
        for (i, m) in self.maintenance.iter().enumerate() {
            let at = |f: &str, v: &str| {
                medic_model::parse_rfc3339(v).ok_or_else(|| {
                    format!("heal.maintenance[{i}].{f}: {v:?} is not an RFC 3339 time")
                })
            };
            let (starts_at, ends_at) = (at("start", &m.start)?, at("end", &m.end)?);
            if ends_at <= starts_at {
                return Err(format!("heal.maintenance[{i}]: end is not after start"));
            }
            let matchers = match &m.matchers {
                Some(sel) => medic_model::parse_selector(sel)
                    .map_err(|e| format!("heal.maintenance[{i}].matchers: {e}"))?,
                None => Vec::new(),
            };
            maintenance.push(medic_heal::guard::MaintenanceWindow {
                name: m.name.clone(),
                starts_at,
                ends_at,
                matchers,
            });
        }
        if let Some(r) = self.rate_limit {
            if r.max == 0 || r.per.0 <= 0 {
                return Err("heal.rate_limit: `max` and `per` must be positive".into());
            }
        }
        let t = &self.trust;
        if !(0.0..=1.0).contains(&t.demote_below)
            || !(0.0..=1.0).contains(&t.disable_below)
            || !(0.0..=1.0).contains(&t.promote_at)
            || t.disable_below > t.demote_below
        {
            return Err(
                "heal.trust: rates are between 0 and 1, and disable_below ≤ demote_below".into(),
            );
        }
        Ok(medic_heal::Options {
            enabled: self.enabled,
            dry_run: self.dry_run,
            rate_limit: self.rate_limit,
            maintenance,
            trust: self.trust,
            condition_interval: self.condition_interval.as_millis(),
            approval_timeout: self.approval_timeout.as_millis(),
            retention: self.retention.as_millis(),
            external_url: external_url.to_string(),
        })
    }
}

/// `alerting:` — the embedded alert manager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// An Alertmanager configuration file (`alertmanager.yml`, unmodified), relative to this
    /// file. Without one, alerts are kept and shown by the API but sent nowhere.
    pub config_file: Option<String>,
    /// Where the alert manager's durable state (alerts, silences, acks, notification log,
    /// history) lives; default `alerts.db` in the storage directory.
    pub state_file: Option<PathBuf>,
    /// Escalation policies: page the next receiver when a group stays unacknowledged.
    #[serde(default)]
    pub escalations: Vec<EscalationConfig>,
    /// How long expired silences and notification-log entries are kept (default 120h, as in
    /// Alertmanager's `--data.retention`).
    #[serde(default = "default_data_retention")]
    pub data_retention: Dur,
    /// How long alert history is kept (default 30d).
    #[serde(default = "default_history_retention")]
    pub history_retention: Dur,
    /// How long an acknowledgement lasts unless the request says (default 4h).
    #[serde(default = "default_ack_duration")]
    pub default_ack_duration: Dur,
    /// How long a flapping alert (`flapping="true"` from medic's rules) that resolved is still
    /// treated as firing, so its flips are not each notified (default 15m).
    #[serde(default = "default_flap_hold")]
    pub flap_hold: Dur,
    /// Prometheus's `alertmanagers`: external Alertmanagers the rules' alerts are sent to as
    /// well (a `prometheus.yml`'s `alerting:` section works unchanged).
    #[serde(default)]
    pub alertmanagers: Vec<crate::forward::AlertmanagerTarget>,
    /// Prometheus's `alert_relabel_configs`, applied to alerts sent to those Alertmanagers.
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

impl AlertingConfig {
    /// The Prometheus part of the section.
    pub fn prometheus(&self) -> crate::forward::PrometheusAlerting {
        crate::forward::PrometheusAlerting {
            alertmanagers: self.alertmanagers.clone(),
            alert_relabel_configs: self.alert_relabel_configs.clone(),
        }
    }
}

impl Default for AlertingConfig {
    fn default() -> Self {
        medic_model::yaml::from_str("{}").expect("defaults parse")
    }
}

fn default_data_retention() -> Dur {
    Dur::from_secs(120 * 3600)
}
fn default_history_retention() -> Dur {
    Dur::from_secs(30 * 86_400)
}
fn default_flap_hold() -> Dur {
    Dur::from_secs(15 * 60)
}
fn default_ack_duration() -> Dur {
    Dur::from_secs(4 * 3600)
}

/// One escalation policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// A name for logs, history and the API.
    pub name: String,
    /// Alertmanager matchers (`severity="critical"`); a group escalates when one of its firing
    /// alerts matches all of them.
    pub matchers: Vec<String>,
    /// The steps, in order: after how long firing without an ack, which receiver (of the
    /// Alertmanager configuration) to notify.
    pub steps: Vec<EscalationStepConfig>,
}

/// One step of an escalation policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStepConfig {
    pub after: Dur,
    pub receiver: String,
}

impl AlertingConfig {
    /// The escalation policies with their matchers parsed.
    pub fn escalation_policies(&self) -> Result<Vec<medic_alert::EscalationPolicy>, String> {
        self.escalations
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut matchers = Vec::new();
                for m in &e.matchers {
                    matchers.extend(
                        medic_alert::matchers::parse_matchers(m)
                            .map_err(|err| format!("alerting.escalations[{i}].matchers: {err}"))?,
                    );
                }
                if e.steps.is_empty() {
                    return Err(format!("alerting.escalations[{i}] ({}): no steps", e.name));
                }
                Ok(medic_alert::EscalationPolicy {
                    name: e.name.clone(),
                    matchers,
                    steps: e
                        .steps
                        .iter()
                        .map(|s| (s.after.as_millis(), s.receiver.clone()))
                        .collect(),
                })
            })
            .collect()
    }
}

/// `rules:` — settings Prometheus takes as `--rules.*` flags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// After a restart, pending alerts resume their `for` timer if medic was down at most this
    /// long (default 1h); after a longer outage they start over.
    #[serde(default = "default_outage_tolerance")]
    pub for_outage_tolerance: Dur,
    /// After a restart, an alert whose `for` is at least this long waits at least this long
    /// before firing again (default 10m), so a restart does not page at once.
    #[serde(default = "default_for_grace_period")]
    pub for_grace_period: Dur,
    /// Firing alerts are re-sent to the alert manager at most this often (default 1m).
    #[serde(default = "default_resend_delay")]
    pub resend_delay: Dur,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            for_outage_tolerance: default_outage_tolerance(),
            for_grace_period: default_for_grace_period(),
            resend_delay: default_resend_delay(),
        }
    }
}

fn default_outage_tolerance() -> Dur {
    Dur::from_secs(3600)
}
fn default_for_grace_period() -> Dur {
    Dur::from_secs(600)
}
fn default_resend_delay() -> Dur {
    Dur::from_secs(60)
}

/// `global:` — defaults for scrape jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How often to scrape targets by default (default 15s).
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval: Dur,
    /// How long a scrape may take by default (default 10s, or `scrape_interval` when that is
    /// shorter, as in Prometheus). Set explicitly, it must not exceed `scrape_interval`.
    #[serde(default)]
    pub scrape_timeout: Option<Dur>,
    /// How often rule groups are evaluated unless a group sets its own `interval` (default 1m,
    /// as in Prometheus).
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: Dur,
    /// Labels added to alerts medic's rules send out (where the alert lacks them) and available
    /// to rule templates as `$externalLabels`; not added to stored series, as in Prometheus.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: default_scrape_interval(),
            scrape_timeout: None,
            evaluation_interval: default_evaluation_interval(),
            external_labels: BTreeMap::new(),
        }
    }
}

impl GlobalConfig {
    /// The default scrape timeout in force: as set, or 10s capped at `scrape_interval`.
    pub fn scrape_timeout(&self) -> Dur {
        self.scrape_timeout
            .unwrap_or_else(|| default_scrape_timeout().min(self.scrape_interval))
    }
}

fn default_evaluation_interval() -> Dur {
    Dur::from_secs(60)
}

fn default_scrape_interval() -> Dur {
    Dur::from_secs(15)
}

fn default_scrape_timeout() -> Dur {
    Dur::from_secs(10)
}

/// `server:` — the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:9099`: local only, since the APIs have no
    /// authentication yet; use `0.0.0.0:9099` to serve other hosts). `--listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// URL under which medic is reached from outside, for links in notifications (default
    /// `http://<listen>`).
    #[serde(default)]
    pub external_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            external_url: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9099".into()
}

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

fn default_fsync_interval() -> Dur {
    Dur::from_secs(1)
}
fn default_segment_size() -> ByteSize {
    ByteSize(128 << 20)
}
fn default_checkpoint_size() -> ByteSize {
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

fn default_max_series() -> usize {
    2_000_000
}
fn default_max_labels() -> usize {
    64
}
fn default_max_name() -> usize {
    1024
}
fn default_max_value() -> usize {
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
        }
    }
}

fn default_path() -> PathBuf {
    PathBuf::from("./data")
}
fn default_retention() -> Dur {
    Dur::from_secs(15 * 86_400)
}
fn default_block_range() -> Dur {
    Dur::from_secs(2 * 3600)
}
fn default_zero() -> Dur {
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
            ..medic_tsdb::Options::default()
        }
    }
}

/// `remote_write:` — the receiver for Prometheus remote write 1.0.
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
}

fn default_max_inflight() -> ByteSize {
    ByteSize(1 << 30)
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_body_size: default_max_body(),
            max_decoded_size: default_max_decoded(),
            max_inflight_bytes: default_max_inflight(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_max_body() -> ByteSize {
    ByteSize(32 << 20)
}
fn default_max_decoded() -> ByteSize {
    ByteSize(256 << 20)
}

/// One entry of `scrape_configs:`, in Prometheus's syntax.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Name of the job; becomes the `job` label.
    pub job_name: String,
    /// How often to scrape (default: `global.scrape_interval`).
    pub scrape_interval: Option<Dur>,
    /// Scrape timeout (default: `global.scrape_timeout`, capped at the interval).
    pub scrape_timeout: Option<Dur>,
    /// HTTP path (default `/metrics`).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header credentials.
    pub authorization: Option<Authorization>,
    /// Bearer token (legacy form of `authorization`).
    pub bearer_token: Option<String>,
    /// File holding a bearer token (legacy form of `authorization.credentials_file`).
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https` targets.
    pub tls_config: Option<TlsConfig>,
    /// Keep the scraped value of labels that clash with target labels (default false: the
    /// scraped ones are renamed `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target exposes (default true).
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Fail a scrape that yields more samples than this after metric relabelling (0 = none).
    #[serde(default)]
    pub sample_limit: usize,
    /// Largest uncompressed response body (default 64MiB); larger scrapes fail.
    #[serde(default = "default_body_limit")]
    pub body_size_limit: ByteSize,
    /// Fixed lists of targets.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from JSON or YAML files, re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets from an HTTP endpoint answering target groups in JSON (Prometheus's http_sd).
    #[serde(default)]
    pub http_sd_configs: Vec<crate::scrape::sd::HttpSdConfig>,
    /// Targets from DNS names (Prometheus's dns_sd: `A` and `AAAA` records with a port).
    #[serde(default)]
    pub dns_sd_configs: Vec<crate::scrape::sd::DnsSdConfig>,
    /// Parsed so a `prometheus.yml` loads, but not run: medic cannot reach Consul here and
    /// does not discover from it yet (a warning at start says so).
    #[serde(default)]
    pub consul_sd_configs: Vec<serde_norway::Value>,
    /// Parsed so a `prometheus.yml` loads, but not run (see `consul_sd_configs`).
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<serde_norway::Value>,
    /// Accepted for compatibility; medic negotiates the text formats it reads.
    #[serde(default)]
    pub scrape_protocols: Option<serde_norway::Value>,
    /// Accepted for compatibility; medic always asks for gzip.
    #[serde(default)]
    pub enable_compression: Option<bool>,
    /// Accepted for compatibility; redirects are followed.
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub enable_http2: Option<bool>,
    /// Relabelling of targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of scraped samples before storing.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_scheme() -> String {
    "http".into()
}
fn default_body_limit() -> ByteSize {
    ByteSize(64 << 20)
}

/// `basic_auth:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `authorization:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Scheme (default `Bearer`).
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    /// Credentials.
    pub credentials: Option<String>,
    /// File holding the credentials.
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".into()
}

/// `tls_config:`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with CA certificates to trust in addition to the system's.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (insecure; for tests only).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `static_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of this group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File paths or globs (`targets/*.json`); JSON or YAML lists of `{targets, labels}`.
    pub files: Vec<String>,
    /// How often to re-read the files (default 5m); changes are also noticed at that pace.
    #[serde(default = "default_refresh")]
    pub refresh_interval: Dur,
}

fn default_refresh() -> Dur {
    Dur::from_secs(300)
}

impl Config {
    /// Reads and validates a config file. Errors name the file, the line and column, the
    /// field, and what was expected.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` is used in error messages and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let err = |message: String| Error::Config {
            file: path.to_path_buf(),
            message,
        };
        let mut cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            medic_model::yaml::from_str(text).map_err(err)?
        };
        cfg.validate().map_err(err)?;
        // As in Prometheus, file_sd paths are relative to the configuration file.
        if let Some(base) = path.parent().filter(|b| !b.as_os_str().is_empty()) {
            for sc in cfg.scrape_configs.iter_mut().flatten() {
                for sd in &mut sc.file_sd_configs {
                    for f in &mut sd.files {
                        if Path::new(f.as_str()).is_relative() {
                            *f = base.join(&*f).to_string_lossy().into_owned();
                        }
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// Checks what serde cannot: relations between fields, valid names and regexes.
    fn validate(&self) -> Result<(), String> {
        if self.remote_read.as_ref().is_some_and(|v| {
            !matches!(v, serde_norway::Value::Null) && v.as_sequence().is_none_or(|s| !s.is_empty())
        }) {
            return Err("remote_read: medic answers queries from its own store and does not read from remote stores; remove remote_read".into());
        }
        self.alerting.escalation_policies()?;
        self.alerting.prometheus().validate()?;
        self.heal.options("")?;
        if let Some(t) = self.global.scrape_timeout {
            if t > self.global.scrape_interval {
                return Err(format!(
                    "global.scrape_timeout ({t}) is longer than global.scrape_interval ({})",
                    self.global.scrape_interval
                ));
            }
        }
        self.storage
            .tsdb_options()
            .validate()
            .map_err(|e| format!("storage: {e}"))?;
        if self.global.evaluation_interval.is_zero() {
            return Err("global.evaluation_interval must be greater than 0".into());
        }
        for (i, p) in self.rule_files.iter().enumerate() {
            glob::Pattern::new(p).map_err(|e| format!("rule_files[{i}]: {p:?}: {e}"))?;
        }
        for name in self.global.external_labels.keys() {
            if !medic_model::is_valid_label_name(name) {
                return Err(format!(
                    "global.external_labels: {name:?} is not a valid label name"
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, sc) in self.scrape_configs.iter().flatten().enumerate() {
            let at = format!("scrape_configs[{i}] (job {:?})", sc.job_name);
            if sc.job_name.is_empty() {
                return Err(format!("scrape_configs[{i}]: job_name must not be empty"));
            }
            if !names.insert(&sc.job_name) {
                return Err(format!("{at}: job_name is used by an earlier job too"));
            }
            if sc.scheme != "http" && sc.scheme != "https" {
                return Err(format!(
                    "{at}.scheme: expected http or https, got {:?}",
                    sc.scheme
                ));
            }
            if !sc.metrics_path.starts_with('/') {
                return Err(format!(
                    "{at}.metrics_path: must start with '/', got {:?}",
                    sc.metrics_path
                ));
            }
            let interval = sc.scrape_interval.unwrap_or(self.global.scrape_interval);
            if interval.is_zero() {
                return Err(format!("{at}.scrape_interval: must be greater than 0"));
            }
            if let Some(t) = sc.scrape_timeout {
                if t > interval {
                    return Err(format!(
                        "{at}.scrape_timeout ({t}) is longer than its scrape_interval ({interval})"
                    ));
                }
            }
            let auths = [
                sc.basic_auth.is_some(),
                sc.authorization.is_some(),
                sc.bearer_token.is_some() || sc.bearer_token_file.is_some(),
            ];
            if auths.iter().filter(|x| **x).count() > 1 {
                return Err(format!(
                    "{at}: at most one of basic_auth, authorization and bearer_token may be set"
                ));
            }
            for (j, sg) in sc.static_configs.iter().enumerate() {
                // Any string is a target here: the address is checked after relabelling, as
                // Prometheus does, so URLs can be probe targets (`__param_target`).
                if sg.targets.iter().any(|t| t.is_empty()) {
                    return Err(format!("{at}.static_configs[{j}].targets: an empty target"));
                }
                for k in sg.labels.keys() {
                    if !medic_model::is_valid_label_name(k) {
                        return Err(format!(
                            "{at}.static_configs[{j}].labels: invalid label name {k:?}"
                        ));
                    }
                }
            }
            for (j, h) in sc.http_sd_configs.iter().enumerate() {
                h.validate()
                    .map_err(|e| format!("{at}.http_sd_configs[{j}].{e}"))?;
            }
            for (j, d) in sc.dns_sd_configs.iter().enumerate() {
                d.validate()
                    .map_err(|e| format!("{at}.dns_sd_configs[{j}]: {e}"))?;
            }
            for (j, r) in sc.relabel_configs.iter().enumerate() {
                r.validate()
                    .map_err(|e| format!("{at}.relabel_configs[{j}]: {e}"))?;
            }
            for (j, r) in sc.metric_relabel_configs.iter().enumerate() {
                r.validate()
                    .map_err(|e| format!("{at}.metric_relabel_configs[{j}]: {e}"))?;
            }
        }
        Ok(())
    }

    /// The scrape jobs to run: the configured ones, or medic scraping itself at `self_target`
    /// when the file has no `scrape_configs`.
    pub fn effective_scrape_configs(&self, self_target: &str) -> Vec<ScrapeConfig> {
        match &self.scrape_configs {
            Some(list) => list.clone(),
            None => {
                let mut own: ScrapeConfig =
                    medic_model::yaml::from_str("job_name: medic\n").expect("a valid job");
                own.static_configs = vec![StaticConfig {
                    targets: vec![self_target.to_string()],
                    labels: BTreeMap::new(),
                }];
                vec![own]
            }
        }
    }
}

/// A list or map that may be written as `null` (`rule_files:` with nothing under it).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `remote_write:` is medic's receiver settings (a map); a Prometheus list of stores to send to
/// is refused with what to do instead.
fn remote_write_field<'de, D>(d: D) -> Result<RemoteWriteConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    let v = serde_norway::Value::deserialize(d)?;
    match v {
        serde_norway::Value::Null => Ok(RemoteWriteConfig::default()),
        serde_norway::Value::Sequence(s) if s.is_empty() => Ok(RemoteWriteConfig::default()),
        serde_norway::Value::Sequence(_) => Err(D::Error::custom(
            "a list of stores to send samples to (Prometheus's remote_write) is not supported: medic keeps samples in its own store and receives remote write at /api/v1/write; remove the list, or keep a Prometheus (or its agent) in front to send elsewhere",
        )),
        other => RemoteWriteConfig::deserialize(other).map_err(D::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, Path::new("medic.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9099");
        assert_eq!(
            c.global.scrape_interval.duration(),
            std::time::Duration::from_secs(15)
        );
        let jobs = c.effective_scrape_configs("127.0.0.1:9099");
        assert_eq!(jobs[0].job_name, "medic");
    }

    #[test]
    fn file_sd_paths_are_relative_to_the_config_file() {
        let text = "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: ['targets/*.json', '/abs/t.json']}]\n";
        let cfg = Config::parse(text, Path::new("/etc/medic/medic.yml")).unwrap();
        let sc = &cfg.scrape_configs.as_ref().unwrap()[0];
        assert_eq!(
            sc.file_sd_configs[0].files,
            ["/etc/medic/targets/*.json", "/abs/t.json"]
        );
        // A bare file name (the current directory) leaves them as written.
        let cfg = Config::parse(text, Path::new("medic.yml")).unwrap();
        assert_eq!(
            cfg.scrape_configs.as_ref().unwrap()[0].file_sd_configs[0].files[0],
            "targets/*.json"
        );
    }

    #[test]
    fn errors_name_file_field_and_line() {
        let e = parse("global:\n  scrape_interval: five\n").unwrap_err();
        assert!(e.contains("medic.yml"), "{e}");
        assert!(e.contains("scrape_interval"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("expected a duration"), "{e}");

        let e = parse("storage:\n  retension: 5d\n").unwrap_err();
        assert!(e.contains("unknown field `retension`"), "{e}");

        let e = parse("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n    static_configs: [{targets: [x:1]}]\n").unwrap_err();
        assert!(
            e.contains("scrape_configs[0]") && e.contains("longer"),
            "{e}"
        );

        let e = parse("storage:\n  retention_size: 10XB\n").unwrap_err();
        assert!(e.contains("unknown size unit"), "{e}");

        let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: replace\n        regex: '('\n").unwrap_err();
        assert!(
            e.contains("relabel_configs[0]") && e.contains("regex"),
            "{e}"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("128MiB").unwrap().0, 128 << 20);
        assert_eq!(ByteSize::parse("10GB").unwrap().0, 10_000_000_000);
        assert_eq!(ByteSize::parse("4096").unwrap().0, 4096);
        assert!(ByteSize::parse("x").is_err());
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../../examples/medic.yml");
        let c = parse(text).unwrap();
        // The Alertmanager file it names, with its escalation receivers.
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let loaded = crate::reload::load_alerting(&c, &examples).unwrap();
        assert_eq!(
            loaded.receivers(),
            ["team-ops", "team-db", "pager", "team-lead"],
            "in the configuration's order, as Alertmanager lists them"
        );
        assert!(!c.scrape_configs.unwrap().is_empty());
    }
}
