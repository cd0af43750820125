//! Forwarding the alerts of medic's rules to external Alertmanagers — `alerting.alertmanagers` of
//! a `prometheus.yml`, read unchanged — as Prometheus's notifier does: every batch the rules
//! hand over is posted to each Alertmanager's API v2 (`POST <scheme>://<address><path_prefix>
//! /api/v2/alerts`), with the external labels added and `alert_relabel_configs` applied. Sending
//! runs on its own task behind a bounded queue; a full queue drops the oldest batch and counts it,
//! so a slow Alertmanager never holds up rule evaluation.

use std::sync::Arc;

use medic_model::{Labels, LabelsBuilder};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::{Authorization, BasicAuth, Dur, StaticConfig, TlsConfig};
use crate::scrape::relabel::{self, RelabelConfig};

/// The Prometheus part of `alerting:` (`alertmanagers`, `alert_relabel_configs`).
#[derive(Debug, Clone, Default)]
pub struct PrometheusAlerting {
    /// Alertmanagers to send the rules' alerts to.
    pub alertmanagers: Vec<AlertmanagerTarget>,
    /// Relabelling applied to every alert before it is sent.
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

/// One `alerting.alertmanagers[]` entry (Prometheus's `alertmanager_config`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerTarget {
    /// The Alertmanagers, as `host:port`.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// `http` (default) or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Prefix of the API path (`/alertmanager` behind a proxy).
    #[serde(default)]
    pub path_prefix: String,
    /// Per-request timeout (default 10s).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Only `v2` (Alertmanager removed v1 in 0.27).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Relabelling of the Alertmanagers' own labels (`__address__`, `__scheme__`,
    /// `__alerts_path__`); a dropped one is not sent to.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Credentials.
    pub basic_auth: Option<BasicAuth>,
    /// Credentials.
    pub authorization: Option<Authorization>,
    /// TLS settings.
    pub tls_config: Option<TlsConfig>,
    /// Accepted for compatibility: redirects are followed.
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub enable_http2: Option<bool>,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_timeout() -> Dur {
    Dur::from_secs(10)
}
fn default_api_version() -> String {
    "v2".into()
}

impl PrometheusAlerting {
    /// Checks what serde cannot; errors name the entry.
    pub fn validate(&self) -> Result<(), String> {
        for (i, am) in self.alertmanagers.iter().enumerate() {
            let at = format!("alerting.alertmanagers[{i}]");
            if am.api_version != "v2" {
                return Err(format!(
                    "{at}.api_version: only v2 is supported (Alertmanager 0.27 removed v1), got {:?}",
                    am.api_version
                ));
            }
            if am.scheme != "http" && am.scheme != "https" {
                return Err(format!(
                    "{at}.scheme: expected http or https, got {:?}",
                    am.scheme
                ));
            }
            if am.static_configs.is_empty() {
                return Err(format!(
                    "{at}: give the Alertmanagers in static_configs (the only discovery medic runs for Alertmanagers)"
                ));
            }
            for (j, r) in am.relabel_configs.iter().enumerate() {
                r.validate()
                    .map_err(|e| format!("{at}.relabel_configs[{j}]: {e}"))?;
            }
        }
        for (j, r) in self.alert_relabel_configs.iter().enumerate() {
            r.validate()
                .map_err(|e| format!("alerting.alert_relabel_configs[{j}]: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AmLabels {
    alertmanager: String,
}

/// Metrics of forwarding, named after Prometheus's `prometheus_notifications_*`.
#[derive(Debug, Clone, Default)]
pub struct ForwardMetrics {
    sent: Family<AmLabels, Counter>,
    errors: Family<AmLabels, Counter>,
    dropped: Counter,
}

impl ForwardMetrics {
    /// Registers `medic_notifications_{sent,errors,dropped}_total`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_notifications_sent",
            "Alerts sent to external Alertmanagers",
            self.sent.clone(),
        );
        r.register(
            "medic_notifications_errors",
            "Alerts that could not be sent to an external Alertmanager",
            self.errors.clone(),
        );
        r.register(
            "medic_notifications_dropped",
            "Alerts dropped because the queue to external Alertmanagers was full",
            self.dropped.clone(),
        );
    }
}

/// Where one Alertmanager receives alerts, and how to reach it.
struct Endpoint {
    url: String,
    client: reqwest::Client,
    cfg: AlertmanagerTarget,
}

/// Sends the rules' alerts to external Alertmanagers.
pub struct Forwarder {
    queue: mpsc::Sender<Vec<Value>>,
    relabel: Vec<RelabelConfig>,
    external: Labels,
    metrics: ForwardMetrics,
}

/// Batches waiting to be sent before the oldest is dropped.
const QUEUE: usize = 64;

impl Forwarder {
    /// Starts the sending task; `None` when no Alertmanager is configured.
    pub fn start(
        cfg: &PrometheusAlerting,
        external: Labels,
        metrics: ForwardMetrics,
    ) -> Result<Option<Arc<Forwarder>>, crate::Error> {
        let endpoints = endpoints(cfg)?;
        if endpoints.is_empty() {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_loop(rx, endpoints, metrics.clone()));
        Ok(Some(Arc::new(Forwarder {
            queue: tx,
            relabel: cfg.alert_relabel_configs.clone(),
            external,
            metrics,
        })))
    }

    /// Queues alerts (labels, annotations, start, end, generator URL) to be sent.
    pub fn send(&self, alerts: &[medic_alert::Alert]) {
        let batch: Vec<Value> = alerts
            .iter()
            .filter_map(|a| {
                let mut b: LabelsBuilder = a.labels.to_builder();
                for l in self.external.iter() {
                    if a.labels.get(&l.name).is_none() {
                        b.set(l.name.clone(), l.value.clone());
                    }
                }
                let labels = relabel::relabel(&b.build(), &self.relabel)?;
                let mut v = json!({
                    "labels": labels,
                    "annotations": a.annotations,
                    "startsAt": medic_model::format_rfc3339(a.starts_at),
                });
                if a.ends_at != 0 {
                    v["endsAt"] = json!(medic_model::format_rfc3339(a.ends_at));
                }
                if !a.generator_url.is_empty() {
                    v["generatorURL"] = json!(a.generator_url);
                }
                Some(v)
            })
            .collect();
        if batch.is_empty() {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(b)) = self.queue.try_send(batch) {
            self.metrics.dropped.inc_by(b.len() as u64);
            tracing::warn!(
                alerts = b.len(),
                "queue to external Alertmanagers is full; alerts dropped"
            );
        }
    }
}

fn endpoints(cfg: &PrometheusAlerting) -> Result<Vec<Endpoint>, crate::Error> {
    let mut out = Vec::new();
    for am in &cfg.alertmanagers {
        let client = client(am)?;
        for sc in &am.static_configs {
            for addr in &sc.targets {
                let mut b = LabelsBuilder::new();
                for (k, v) in &sc.labels {
                    b.set(k.as_str(), v.as_str());
                }
                b.set("__address__", addr.as_str());
                b.set("__scheme__", am.scheme.as_str());
                b.set(
                    "__alerts_path__",
                    format!("{}/api/v2/alerts", am.path_prefix.trim_end_matches('/')),
                );
                let Some(l) = relabel::relabel(&b.build(), &am.relabel_configs) else {
                    continue;
                };
                let url = format!(
                    "{}://{}{}",
                    l.get("__scheme__").unwrap_or("http"),
                    l.get("__address__").unwrap_or(addr),
                    l.get("__alerts_path__").unwrap_or("/api/v2/alerts")
                );
                out.push(Endpoint {
                    url,
                    client: client.clone(),
                    cfg: am.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn client(am: &AlertmanagerTarget) -> Result<reqwest::Client, crate::Error> {
    let b = reqwest::Client::builder()
        .timeout(am.timeout.duration())
        .no_proxy();
    let b = crate::client_auth::with_tls(b, am.tls_config.as_ref(), "alerting.alertmanagers")?;
    b.build()
        .map_err(|e| crate::Error::Internal(format!("building HTTP client: {e}")))
}

async fn send_loop(
    mut rx: mpsc::Receiver<Vec<Value>>,
    endpoints: Vec<Endpoint>,
    metrics: ForwardMetrics,
) {
    while let Some(batch) = rx.recv().await {
        let body = Value::Array(batch);
        let n = body.as_array().map_or(0, Vec::len) as u64;
        for ep in &endpoints {
            let label = AmLabels {
                alertmanager: medic_alert::notify::redact_url(&ep.url),
            };
            let req = ep
                .client
                .post(&ep.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            let req = crate::client_auth::apply(
                req,
                ep.cfg.basic_auth.as_ref(),
                ep.cfg.authorization.as_ref(),
                None,
                None,
            );
            let result = match req {
                Ok(r) => match r.send().await {
                    Ok(resp) if resp.status().is_success() => Ok(()),
                    Ok(resp) => Err(format!("HTTP {}", resp.status())),
                    Err(e) => Err(medic_model::error_chain(&e.without_url())),
                },
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    metrics.sent.get_or_create(&label).inc_by(n);
                }
                Err(e) => {
                    metrics.errors.get_or_create(&label).inc_by(n);
                    tracing::warn!(alertmanager = %medic_alert::notify::redact_url(&ep.url), error = %e, "sending alerts to Alertmanager failed");
                }
            }
        }
    }
}
