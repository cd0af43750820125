//! Telling people: incident notifications through the alert manager's receivers, and
//! medic's own metrics about incidents.

use std::collections::BTreeMap;

use medic_alert::incident::{Effect, Incident, Status};
use medic_alert::{Alert, AlertManager};
use medic_model::Labels;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What an incident notification reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Opened,
    Escalated(&'static str),
    LevelRaised,
    Mitigated,
    Resolved,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Opened => "opened",
            Event::Escalated(_) => "escalated",
            Event::LevelRaised => "level_raised",
            Event::Mitigated => "mitigated",
            Event::Resolved => "resolved",
        }
    }
}

/// The notification an effect calls for, if any.
pub fn event_of(fx: &Effect) -> Option<(u64, Event)> {
    match fx {
        Effect::Opened { id, .. } => Some((*id, Event::Opened)),
        Effect::Escalated { id, why } => Some((*id, Event::Escalated(why))),
        Effect::LevelRaised { id, .. } => Some((*id, Event::LevelRaised)),
        Effect::StatusChanged { id, to, .. } => match to {
            Status::Mitigated => Some((*id, Event::Mitigated)),
            Status::Resolved => Some((*id, Event::Resolved)),
            _ => None,
        },
        Effect::Joined { .. } => None,
    }
}

/// The message as an alert (`alertname="MedicIncident"`), so every receiver type and its
/// templates carry it unchanged.
fn message(inc: &Incident, event: Event, now: i64) -> Alert {
    let mut labels: BTreeMap<String, String> = inc.key.iter().cloned().collect();
    labels.insert("alertname".into(), "MedicIncident".into());
    labels.insert("incident".into(), inc.id.to_string());
    labels.insert("level".into(), inc.level.to_string());
    labels.insert("medic_event".into(), event.as_str().into());
    let summary = match event {
        Event::Opened => format!("Incident #{} ({}) opened: {}", inc.id, inc.level, inc.title),
        Event::Escalated("ack_overdue") => format!(
            "Incident #{} ({}) not acknowledged within {} s: {}",
            inc.id,
            inc.level,
            inc.respond_within_ms / 1000,
            inc.title
        ),
        Event::Escalated(_) => format!(
            "Incident #{} ({}) not mitigated within {} s: {}",
            inc.id,
            inc.level,
            inc.escalate_after_ms / 1000,
            inc.title
        ),
        Event::LevelRaised => format!(
            "Incident #{} raised to {}: {}",
            inc.id, inc.level, inc.title
        ),
        Event::Mitigated if inc.auto_mitigated => format!(
            "Incident #{} ({}) mitigated by medic's repair: {}",
            inc.id, inc.level, inc.title
        ),
        Event::Mitigated => format!(
            "Incident #{} ({}) mitigated: {}",
            inc.id, inc.level, inc.title
        ),
        Event::Resolved => format!(
            "Incident #{} ({}) resolved: {}",
            inc.id, inc.level, inc.title
        ),
    };
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), summary);
    annotations.insert("status".to_string(), inc.status.to_string());
    if let Some(a) = &inc.assignee {
        annotations.insert("assignee".to_string(), a.clone());
    }
    let done = matches!(event, Event::Resolved | Event::Mitigated);
    Alert {
        labels: Labels::from_pairs(labels),
        annotations,
        starts_at: inc.opened_at,
        ends_at: if done { now } else { 0 },
        generator_url: String::new(),
        updated_at: now,
        timeout: false,
        value: None,
        source: Default::default(),
    }
}

/// Sends `event` about `inc` to each receiver; the timeline lines that say what happened.
pub async fn send(
    am: &AlertManager,
    receivers: &[String],
    inc: &Incident,
    event: Event,
) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let alert = message(inc, event, am.now());
    for r in receivers {
        match am.send_direct(r, vec![alert.clone()]).await {
            Ok(()) => lines.push(("notified", format!("{} sent to {r}", event.as_str()))),
            Err(e) => lines.push((
                "notification_failed",
                format!("{} to {r} failed: {e}", event.as_str()),
            )),
        }
    }
    lines
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLevel {
    status: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LevelLabel {
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// `medic_incidents*` metrics.
#[derive(Clone, Default)]
pub struct IncidentMetrics {
    current: Family<StatusLevel, Gauge>,
    opened: Family<LevelLabel, Counter>,
    escalations: Family<Reason, Counter>,
    auto_mitigated: Counter,
    pub(super) notification_failures: Counter,
    pub(super) store_errors: Counter,
}

impl IncidentMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "medic_incidents",
            "Incidents by status and level",
            self.current.clone(),
        );
        r.register(
            "medic_incidents_opened",
            "Incidents opened, by level",
            self.opened.clone(),
        );
        r.register(
            "medic_incident_escalations",
            "Escalations of incidents (ack_overdue, unresolved)",
            self.escalations.clone(),
        );
        r.register(
            "medic_incidents_auto_mitigated",
            "Incidents mitigated by a verified repair before anyone acknowledged them",
            self.auto_mitigated.clone(),
        );
        r.register(
            "medic_incident_notifications_failed",
            "Incident notifications a receiver did not take",
            self.notification_failures.clone(),
        );
        r.register(
            "medic_incident_store_errors",
            "Failed writes of the incident store",
            self.store_errors.clone(),
        );
    }

    pub(super) fn count(&self, fx: &Effect) {
        match fx {
            Effect::Opened { level, .. } => {
                self.opened
                    .get_or_create(&LevelLabel {
                        level: level.to_string(),
                    })
                    .inc();
            }
            Effect::Escalated { why, .. } => {
                self.escalations
                    .get_or_create(&Reason {
                        reason: why.to_string(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    /// Sets the gauges from the whole book (cheap: a count per status and level).
    pub(super) fn set_gauges<'a>(&self, all: impl Iterator<Item = &'a Incident>) {
        let mut counts: BTreeMap<(Status, String), i64> = BTreeMap::new();
        let mut auto = 0;
        for i in all {
            *counts.entry((i.status, i.level.to_string())).or_default() += 1;
            auto += i64::from(i.auto_mitigated);
        }
        self.current.clear();
        for ((s, l), n) in counts {
            self.current
                .get_or_create(&StatusLevel {
                    status: s.to_string(),
                    level: l,
                })
                .set(n);
        }
        let seen = self.auto_mitigated.get() as i64;
        if auto > seen {
            self.auto_mitigated.inc_by((auto - seen) as u64);
        }
    }
}
