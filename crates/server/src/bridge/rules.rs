//! Alerts from medic's rules to the alert manager (and to external Alertmanagers).

use std::sync::Arc;

use medic_alert::{Alert, AlertManager, AlertSource};

use crate::forward::Forwarder;

/// Hands alerts from medic's rules to the alert manager, and to external Alertmanagers when
/// `alerting.alertmanagers` names some.
pub struct RulesNotifier(pub Arc<AlertManager>, pub Option<Arc<Forwarder>>);

impl medic_rules::Notifier for RulesNotifier {
    fn notify(&self, alerts: Vec<medic_rules::Notification>) {
        let batch: Vec<Alert> = alerts.into_iter().map(rule_alert).collect();
        if let Some(f) = &self.1 {
            f.send(&batch);
        }
        if let Err(e) = self.0.put(batch) {
            tracing::error!(error = %e, "alerts from rules were not stored");
        }
    }
}

/// An alert from a rule's notification, as the alert manager takes it.
pub fn rule_alert(n: medic_rules::Notification) -> Alert {
    Alert {
        labels: n.labels,
        annotations: n
            .annotations
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
        starts_at: n.starts_at,
        ends_at: n.ends_at,
        generator_url: n.generator_url,
        updated_at: 0,
        timeout: false,
        value: Some(n.value),
        source: if n.anomaly {
            AlertSource::Anomaly
        } else {
            AlertSource::Rules
        },
    }
}
