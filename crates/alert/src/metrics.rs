//! The alert manager's own metrics, under `medic_alert_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub receiver: String,
    pub integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub receiver: String,
    pub integration: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuietLabel {
    pub reason: String,
}

/// Counters and gauges of the alert manager.
pub struct AlertMetrics {
    pub alerts: Family<StateLabel, Gauge>,
    pub received: Family<StatusLabel, Counter>,
    pub invalid: Counter,
    /// Alerts refused because `max_alerts` would be passed (counted per alert).
    pub refused_over_limit: Counter,
    pub notifications: Family<IntegrationLabels, Counter>,
    pub notifications_failed: Family<FailureLabels, Counter>,
    pub requests: Family<KindLabel, Counter>,
    pub requests_failed: Family<KindLabel, Counter>,
    pub latency: Family<KindLabel, Histogram>,
    pub silences: Family<StateLabel, Gauge>,
    pub groups: Gauge,
    pub nflog_entries: Gauge,
    pub flushes_quiet: Family<QuietLabel, Counter>,
    pub state_errors: Counter,
}

impl Default for AlertMetrics {
    fn default() -> Self {
        AlertMetrics {
            alerts: Family::default(),
            received: Family::default(),
            invalid: Counter::default(),
            refused_over_limit: Counter::default(),
            notifications: Family::default(),
            notifications_failed: Family::default(),
            requests: Family::default(),
            requests_failed: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 9))
            }),
            silences: Family::default(),
            groups: Gauge::default(),
            nflog_entries: Gauge::default(),
            flushes_quiet: Family::default(),
            state_errors: Counter::default(),
        }
    }
}

impl AlertMetrics {
    /// Registers every metric under `medic_alert_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("medic_alert");
        r.register(
            "alerts",
            "Alerts held, by state (active, suppressed, resolved)",
            self.alerts.clone(),
        );
        r.register(
            "alerts_received",
            "Alerts received, by status",
            self.received.clone(),
        );
        r.register(
            "alerts_invalid",
            "Alerts refused as invalid",
            self.invalid.clone(),
        );
        r.register(
            "alerts_refused_over_limit",
            "New alerts refused because alerting.max_alerts would be passed",
            self.refused_over_limit.clone(),
        );
        r.register(
            "notifications",
            "Notifications delivered, by receiver and integration",
            self.notifications.clone(),
        );
        r.register(
            "notifications_failed",
            "Notifications given up on after retries, by receiver, integration and reason",
            self.notifications_failed.clone(),
        );
        r.register(
            "notification_requests",
            "Delivery attempts, by integration",
            self.requests.clone(),
        );
        r.register(
            "notification_requests_failed",
            "Failed delivery attempts, by integration",
            self.requests_failed.clone(),
        );
        r.register(
            "notification_latency_seconds",
            "Time one delivery attempt took, by integration",
            self.latency.clone(),
        );
        r.register("silences", "Silences, by state", self.silences.clone());
        r.register(
            "aggregation_groups",
            "Alert groups being dispatched",
            self.groups.clone(),
        );
        r.register(
            "nflog_entries",
            "Entries in the notification log",
            self.nflog_entries.clone(),
        );
        r.register(
            "flushes_quiet",
            "Group flushes that sent nothing, by reason (time_muted, all_muted, up_to_date)",
            self.flushes_quiet.clone(),
        );
        r.register(
            "state_errors",
            "Failures writing durable alert state",
            self.state_errors.clone(),
        );
    }
}
