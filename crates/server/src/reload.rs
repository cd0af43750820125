//! Reloading on SIGHUP and `POST /-/reload`: re-read the config file, then the rule files and
//! the Alertmanager configuration it names. What a reload applies: `rule_files`,
//! `global.evaluation_interval`, `global.external_labels`, `server.external_url`, `rules:`,
//! and `alerting.config_file` with `alerting.escalations`. Other sections (listen address,
//! storage, scrape jobs, alert state file and retention) take effect at the next start.
//!
//! A failed reload changes nothing: the previous rules and alert routing keep running, the
//! error is logged, and `medic_config_last_reload_successful` drops to 0 until a reload
//! succeeds.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use medic_model::Labels;
use medic_rules::{GroupOptions, Manager, UpdateSummary};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{error, info};

use crate::config::Config;

/// Reload metrics.
#[derive(Debug, Clone, Default)]
pub struct ReloadMetrics {
    successful: Gauge,
    success_time: Gauge<f64, AtomicU64>,
}

impl ReloadMetrics {
    /// Registers `medic_config_last_reload_successful` and
    /// `medic_config_last_reload_success_timestamp_seconds`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "medic_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or failed (0)",
            self.successful.clone(),
        );
        registry.register(
            "medic_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration reload",
            self.success_time.clone(),
        );
    }

    fn succeeded(&self) {
        self.successful.set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.success_time.set(now);
    }
}

/// The Alertmanager configuration used when `alerting.config_file` is not set: every alert
/// goes to a receiver with no integrations, so alerts are held and shown but sent nowhere.
pub const DEFAULT_ALERTMANAGER_CONFIG: &str =
    "route:\n  receiver: default\nreceivers:\n  - name: default\n";

/// Loads the Alertmanager configuration `config` names (or the default), with its escalation
/// policies. `base` is the directory relative paths start from.
pub fn load_alerting(config: &Config, base: &Path) -> Result<medic_alert::Loaded, String> {
    let policies = config.alerting.escalation_policies()?;
    match &config.alerting.config_file {
        Some(f) => {
            let path = base.join(f);
            medic_alert::Loaded::load(&path, &policies).map_err(|e| e.to_string())
        }
        None => medic_alert::Loaded::parse(
            DEFAULT_ALERTMANAGER_CONFIG,
            Path::new("<default alertmanager config>"),
            &policies,
        )
        .map_err(|e| e.to_string()),
    }
}

/// The rule groups' options from the config; `default_external_url` when the config names
/// none.
pub fn group_options(config: &Config, default_external_url: &str) -> GroupOptions {
    GroupOptions {
        default_interval: config.global.evaluation_interval.duration(),
        external_labels: Labels::from_pairs(
            config
                .global
                .external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        external_url: config
            .server
            .external_url
            .clone()
            .unwrap_or_else(|| default_external_url.to_string()),
        outage_tolerance: config.rules.for_outage_tolerance.duration(),
        for_grace_period: config.rules.for_grace_period.duration(),
        resend_delay: config.rules.resend_delay.duration(),
    }
}

/// Refuses playbooks whose PromQL does not parse or that notify receivers the Alertmanager
/// configuration does not have.
pub fn check_playbooks(
    playbooks: &[medic_heal::Playbook],
    alerting: &medic_alert::Loaded,
) -> Result<(), String> {
    let known = alerting.receivers();
    for pb in playbooks {
        for (field, q) in pb.queries() {
            if let Err(e) = medic_promql::Engine::parse(q) {
                return Err(format!("{}: {field}: {e}", pb.file.display()));
            }
        }
        for r in pb.receivers() {
            if !known.iter().any(|k| k == r) {
                return Err(format!(
                    "{}: notify: no receiver named {r:?} in the Alertmanager configuration (it has {})",
                    pb.file.display(),
                    known.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// Applies the rule and alerting parts of a config.
pub struct Reloader {
    config_file: Option<PathBuf>,
    default_external_url: String,
    rules: Arc<Manager>,
    alerts: Arc<medic_alert::AlertManager>,
    heal: Arc<medic_heal::Engine>,
    metrics: ReloadMetrics,
    serial: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// The configuration file, if medic was started with one.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        self.config_file.as_deref()
    }

    pub(crate) fn new(
        config_file: Option<PathBuf>,
        default_external_url: String,
        rules: Arc<Manager>,
        alerts: Arc<medic_alert::AlertManager>,
        heal: Arc<medic_heal::Engine>,
        metrics: ReloadMetrics,
    ) -> Reloader {
        Reloader {
            config_file,
            default_external_url,
            rules,
            alerts,
            heal,
            metrics,
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// The rule-group settings a config implies.
    pub fn group_options(&self, config: &Config) -> GroupOptions {
        group_options(config, &self.default_external_url)
    }

    /// Loads the rule files `config` names into the manager (at start, or after re-reading
    /// the config file).
    pub async fn apply(&self, config: &Config) -> Result<UpdateSummary, String> {
        let base = self.base_dir();
        // Load the alerting configuration first, so a broken one changes nothing.
        let alerting = {
            let (config, base) = (config.clone(), base.clone());
            tokio::task::spawn_blocking(move || load_alerting(&config, &base))
                .await
                .map_err(|e| format!("alerting config loading panicked: {e}"))??
        };
        let url = config
            .server
            .external_url
            .clone()
            .unwrap_or_else(|| self.default_external_url.clone());
        let heal_opts = config.heal.options(&url)?;
        let playbooks = {
            let (patterns, base) = (config.heal.playbooks.clone(), base.clone());
            tokio::task::spawn_blocking(move || medic_heal::playbook::load_all(&patterns, &base))
                .await
                .map_err(|e| format!("playbook loading panicked: {e}"))?
                .map_err(|e| e.to_string())?
        };
        check_playbooks(&playbooks, &alerting)?;
        let files = medic_rules::manager::expand_globs(&config.rule_files, &base)?;
        let log_files = medic_rules::manager::expand_globs(&config.logs.rule_files, &base)?;
        let opts = self.group_options(config);
        let rules = self.rules.clone();
        let summary =
            tokio::task::spawn_blocking(move || rules.update_with_logs(&files, &log_files, &opts))
                .await
                .map_err(|e| format!("rule loading panicked: {e}"))?
                .map_err(|errs| {
                    errs.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                })?;
        self.alerts.apply(alerting);
        info!(playbooks = playbooks.len(), "playbooks loaded");
        self.heal.apply(playbooks, heal_opts);
        Ok(summary)
    }

    /// The directory relative paths in the config start from.
    pub fn base_dir(&self) -> PathBuf {
        self.config_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Re-reads the config file and applies it; see the module docs.
    pub async fn reload(&self) -> Result<UpdateSummary, String> {
        let _serial = self.serial.lock().await;
        info!("reloading configuration");
        let result = match &self.config_file {
            Some(path) => match Config::load(path) {
                Ok(cfg) => self.apply(&cfg).await,
                Err(e) => Err(e.to_string()),
            },
            None => self.apply(&Config::default()).await,
        };
        match &result {
            Ok(s) => {
                self.metrics.succeeded();
                info!(
                    files = s.files,
                    groups = s.groups,
                    rules = s.rules,
                    "configuration reloaded"
                );
            }
            Err(e) => {
                self.metrics.successful.set(0);
                error!(error = %e, "reload failed; the previous rules keep running");
            }
        }
        result
    }

    /// Marks the start-up load as a successful reload.
    pub(crate) fn started(&self) {
        self.metrics.succeeded();
    }
}
