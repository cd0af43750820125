//! `query`, `heal`, `alerting` and `rules`: the engines' settings.

use super::*;

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
    /// The cache of range-query results for dashboards.
    #[serde(default)]
    pub result_cache: ResultCacheConfig,
    /// A Prometheus-compatible store that answers medic's queries instead of the embedded
    /// TSDB (none: the embedded TSDB answers).
    #[serde(default)]
    pub backend: Option<QueryBackendConfig>,
}

/// `query.result_cache:` — range-query results kept so that a refreshing dashboard computes
/// only its newest steps (as VictoriaMetrics's rollup result cache). Writes into the past and
/// retention invalidate what they touch; a request with `nocache=1` bypasses it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultCacheConfig {
    /// Whether range queries use the cache (default true).
    #[serde(default = "super::storage::default_true")]
    pub enabled: bool,
    /// Most memory the cached results may take, estimated (default 64MiB); the least recently
    /// used are dropped beyond it, and one result over a quarter of it is not kept.
    #[serde(default = "default_cache_bytes")]
    pub max_bytes: ByteSize,
    /// Steps newer than this before now are never kept: samples for them may still arrive
    /// (default 5m, VictoriaMetrics's `-search.cacheTimestampOffset`).
    #[serde(default = "default_hold_back")]
    pub hold_back: Dur,
}

fn default_cache_bytes() -> ByteSize {
    ByteSize(64 << 20)
}

fn default_hold_back() -> Dur {
    Dur::from_secs(300)
}

impl Default for ResultCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: default_cache_bytes(),
            hold_back: default_hold_back(),
        }
    }
}

pub(super) fn default_max_samples() -> usize {
    50_000_000
}

pub(super) fn default_query_timeout() -> Dur {
    Dur::from_secs(120)
}

pub(super) fn default_lookback() -> Dur {
    Dur::from_secs(300)
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_samples: default_max_samples(),
            timeout: default_query_timeout(),
            lookback_delta: default_lookback(),
            result_cache: ResultCacheConfig::default(),
            backend: None,
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

pub(super) fn default_condition_interval() -> Dur {
    Dur::from_secs(15)
}
pub(super) fn default_approval_timeout() -> Dur {
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
    /// Alerts held at once from outside (API, webhook, CloudWatch); a batch that would pass it
    /// is refused whole with 503 (default 50000; 0: none). medic's own rules are not limited.
    #[serde(default = "default_max_alerts")]
    pub max_alerts: usize,
    /// Active and pending silences at once, as Alertmanager's `--silences.max-silences`
    /// (default 10000; 0: none). Over it: 429.
    #[serde(default = "default_max_silences")]
    pub max_silences: usize,
    /// One silence's size (matchers, comment, creator), as Alertmanager's
    /// `--silences.max-silence-size-bytes` (default 64KiB; 0: none). Over it: 413.
    #[serde(default = "default_max_silence_size")]
    pub max_silence_size_bytes: super::ByteSize,
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

pub(super) fn default_data_retention() -> Dur {
    Dur::from_secs(120 * 3600)
}
pub(super) fn default_history_retention() -> Dur {
    Dur::from_secs(30 * 86_400)
}
fn default_max_alerts() -> usize {
    50_000
}

fn default_max_silences() -> usize {
    10_000
}

fn default_max_silence_size() -> super::ByteSize {
    super::ByteSize(64 << 10)
}

pub(super) fn default_flap_hold() -> Dur {
    Dur::from_secs(15 * 60)
}
pub(super) fn default_ack_duration() -> Dur {
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

pub(super) fn default_outage_tolerance() -> Dur {
    Dur::from_secs(3600)
}
pub(super) fn default_for_grace_period() -> Dur {
    Dur::from_secs(600)
}
pub(super) fn default_resend_delay() -> Dur {
    Dur::from_secs(60)
}

/// `audit:`: the hash-chained record of every state-changing request and every heal decision
/// and action (`docs/security.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where the log lives; default `audit.db` in the storage directory.
    pub file: Option<PathBuf>,
    /// How long entries are kept (default 1y); older ones are pruned hourly, the chain kept
    /// verifiable.
    #[serde(default = "default_audit_retention")]
    pub retention: Dur,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            file: None,
            retention: default_audit_retention(),
        }
    }
}

fn default_audit_retention() -> Dur {
    Dur::from_secs(365 * 86_400)
}

/// `incidents:` — which alert groups open incidents, how they group, who hears of them
/// (docs/incidents.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentsConfig {
    /// Open incidents from alert groups (default true). Incidents opened by hand work either way.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which groups open an incident, at which level, with which targets; the first rule that
    /// matches decides. Default: `severity="critical"` → P1 (respond within 5m, escalate after
    /// 15m), `severity="warning"` → P2 (30m, 2h); anything else opens none.
    #[serde(default = "medic_alert::incident::policy::default_rules")]
    pub open_on: Vec<medic_alert::incident::policy::RuleSpec>,
    /// Groups agreeing on these labels join one incident (default `[service]`).
    #[serde(default = "medic_alert::incident::policy::default_correlate_by")]
    pub correlate_by: Vec<String>,
    /// ... when that incident saw activity within this (default 30m).
    #[serde(default = "medic_alert::incident::policy::default_window")]
    pub window: Dur,
    /// Receivers (of the alerting config) told when an incident opens, is escalated, rises
    /// in level, is mitigated by a repair, or resolves. None by default.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// Where incidents live; default `incidents.db` in the storage directory.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// How long closed incidents (and their reports) are kept after closing (default 1y).
    #[serde(default = "default_incident_retention")]
    pub retention: Dur,
}

fn default_incident_retention() -> Dur {
    Dur::from_secs(365 * 86_400)
}

fn yes() -> bool {
    true
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            enabled: true,
            open_on: medic_alert::incident::policy::default_rules(),
            correlate_by: medic_alert::incident::policy::default_correlate_by(),
            window: medic_alert::incident::policy::default_window(),
            receivers: Vec::new(),
            state_file: None,
            retention: default_incident_retention(),
        }
    }
}

impl IncidentsConfig {
    /// The policy, checked; errors name the field (`incidents.open_on[0].matchers[0]: …`).
    pub fn policy(&self) -> Result<medic_alert::incident::Policy, String> {
        let spec = medic_alert::incident::PolicySpec {
            open_on: if self.enabled {
                self.open_on.clone()
            } else {
                Vec::new()
            },
            correlate_by: self.correlate_by.clone(),
            window: self.window,
        };
        medic_alert::incident::Policy::new(&spec).map_err(|e| format!("incidents.{e}"))
    }
}

/// One scheduled report under `reports:` (docs/reports.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Names it in the API, the CLI and the store.
    pub name: String,
    /// When it runs: cron's five fields (`0 8 1 * *`) or `@daily`, `@weekly`, `@monthly`.
    pub schedule: String,
    /// The zone of the schedule and of the calendar periods (IANA name; default `UTC`).
    #[serde(default = "default_report_zone")]
    pub timezone: String,
    /// What each run covers: the whole `day`, `week` (ISO, Monday first) or `month` before it.
    pub period: medic_report::period::Kind,
    /// Receivers of the alerting config it is delivered to (e-mail with an HTML body, Slack,
    /// webhook); none: only stored.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// The title (default: `<name>: <period>`).
    #[serde(default)]
    pub title: Option<String>,
    /// Series shown with their mean, low and high and drawn as trends (latency, traffic).
    #[serde(default)]
    pub series: Vec<ReportSeries>,
}

/// A series a report summarises and draws.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSeries {
    pub name: String,
    /// PromQL; each series it returns is a line.
    pub query: String,
    /// Shown after the values (`s`, `%`, `req/s`).
    #[serde(default)]
    pub unit: String,
}

fn default_report_zone() -> String {
    "UTC".into()
}

impl ReportConfig {
    /// Checks the schedule, the zone and the queries; errors name the field.
    pub fn check(
        &self,
        at: &str,
    ) -> Result<(medic_report::cron::Cron, jiff::tz::TimeZone), String> {
        if self.name.trim().is_empty() {
            return Err(format!("{at}.name: must not be empty"));
        }
        let cron = medic_report::cron::Cron::parse(&self.schedule)
            .map_err(|e| format!("{at}.schedule: {e}"))?;
        let tz = jiff::tz::TimeZone::get(&self.timezone)
            .map_err(|e| format!("{at}.timezone: {:?}: {e}", self.timezone))?;
        for (i, s) in self.series.iter().enumerate() {
            promql_parser::parser::parse(&s.query)
                .map_err(|e| format!("{at}.series[{i}].query: {e}"))?;
        }
        Ok((cron, tz))
    }
}
