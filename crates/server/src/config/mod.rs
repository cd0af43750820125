//! medic's configuration file (`medic.yml`). Every struct here is documented field by field;
//! `docs/configuration.md` is written from these comments. Scrape configuration uses
//! Prometheus's syntax unchanged, so `scrape_configs` can be copied from a `prometheus.yml`.

mod backup;
pub use backup::BackupConfig;
pub mod logs;
pub use logs::LogsConfig;
mod scrape;
pub use scrape::*;
mod services;
pub use services::*;
mod ha;
pub use ha::{host_name, HaConfig};
mod query_backend;
pub use query_backend::QueryBackendConfig;
mod remote_out;
pub use remote_out::{QueueConfig, RemoteWriteTarget};
mod state;
pub use state::{PostgresConfig, StateBackend, StateConfig};
mod storage;
pub use storage::*;

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
    /// The audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Users, tokens and their roles (`docs/security.md`); none: everyone is admin.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// Incidents: opened from alert groups by policy, or by hand (`docs/incidents.md`).
    #[serde(default)]
    pub incidents: IncidentsConfig,
    /// Scheduled reports (`docs/reports.md`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub reports: Vec<ReportConfig>,
    /// Logs: ingest, redaction, storage, LogQL (`docs/logs.md`).
    #[serde(default)]
    pub logs: LogsConfig,
    /// Scheduled backups (`docs/backup.md`).
    #[serde(default)]
    pub backup: BackupConfig,
    /// Where the durable state lives: SQLite (default) or PostgreSQL (`docs/ha.md`).
    #[serde(default)]
    pub state: StateConfig,
    /// Replicas with one leader (`docs/ha.md`).
    #[serde(default)]
    pub ha: HaConfig,
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
    /// Connections open at once (default 4096); one more is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that sends no complete request headers for this long is closed: idle
    /// keep-alive connections and half-sent requests alike (default 30s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    /// Time from a request's headers to the end of its body (default 1m); a body still
    /// arriving then fails the request.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: Dur,
    /// Largest JSON or form body an API accepts (default 4MiB; remote write has its own
    /// `remote_write.max_body_size`).
    #[serde(default = "default_max_request_body")]
    pub max_request_body: ByteSize,
    /// Requests per second each client may make: per identity, or per address without one;
    /// over it, 429 with Retry-After (default 0: no limit). Health checks are not limited.
    #[serde(default)]
    pub client_rate_limit: f64,
    /// Requests a client may make at once above its rate (default 100).
    #[serde(default = "default_client_rate_burst")]
    pub client_rate_burst: u32,
    /// Host names (with or without port) requests may name in `Host`, against DNS rebinding:
    /// a page on another site whose name is made to resolve to medic's address. Empty (the
    /// default): without authentication, loopback names, the listen address and
    /// `external_url`'s host; with authentication (which a rebinding page cannot present), any.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            external_url: None,
            max_connections: default_max_connections(),
            idle_timeout: default_idle_timeout(),
            read_timeout: default_read_timeout(),
            max_request_body: default_max_request_body(),
            client_rate_limit: 0.0,
            client_rate_burst: default_client_rate_burst(),
            allowed_hosts: Vec::new(),
        }
    }
}

fn default_client_rate_burst() -> u32 {
    100
}
fn default_max_connections() -> usize {
    4096
}
fn default_idle_timeout() -> Dur {
    Dur::from_secs(30)
}
fn default_read_timeout() -> Dur {
    Dur::from_secs(60)
}
fn default_max_request_body() -> ByteSize {
    ByteSize(4 << 20)
}

fn default_listen() -> String {
    "127.0.0.1:9099".into()
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
            return Err("remote_read: medic does not read raw samples from remote stores; to have a remote store answer medic's queries, set query.backend.url to its Prometheus HTTP API (docs/ha.md) and remove remote_read".into());
        }
        self.alerting.escalation_policies()?;
        self.alerting.prometheus().validate()?;
        self.auth.validate()?;
        self.state.validate()?;
        self.ha.validate(&self.state)?;
        remote_out::validate_all(&self.remote_write.send_to)?;
        if let Some(b) = &self.query.backend {
            b.validate()?;
        }
        self.incidents.policy()?;
        self.logs.validate()?;
        let mut report_names = std::collections::HashSet::new();
        for (i, r) in self.reports.iter().enumerate() {
            r.check(&format!("reports[{i}]"))?;
            if !report_names.insert(&r.name) {
                return Err(format!("reports[{i}].name: {:?} is used twice", r.name));
            }
        }
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
    pub fn effective_scrape_configs(&self, self_target: &str, tls: bool) -> Vec<ScrapeConfig> {
        let mut configs = self.scrape_configs_as_written(self_target, tls);
        for c in &mut configs {
            c.parse_limit = self.storage.limits.max_series;
        }
        configs
    }

    fn scrape_configs_as_written(&self, self_target: &str, tls: bool) -> Vec<ScrapeConfig> {
        match &self.scrape_configs {
            Some(list) => list.clone(),
            None => {
                // Over TLS medic scrapes its own loopback port without checking its own
                // certificate (issued for the names clients use, not 127.0.0.1).
                let own = if tls {
                    "job_name: medic\nscheme: https\ntls_config: {insecure_skip_verify: true}\n"
                } else {
                    "job_name: medic\n"
                };
                let mut own: ScrapeConfig = medic_model::yaml::from_str(own).expect("a valid job");
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
        // Prometheus's form: the stores to send samples to.
        seq @ serde_norway::Value::Sequence(_) => Ok(RemoteWriteConfig {
            send_to: Vec::<RemoteWriteTarget>::deserialize(seq).map_err(D::Error::custom)?,
            ..RemoteWriteConfig::default()
        }),
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
        let jobs = c.effective_scrape_configs("127.0.0.1:9099", false);
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
        let text = include_str!("../../../../examples/medic.yml");
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
