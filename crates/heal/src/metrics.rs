//! The heal engine's own metrics, under `medic_heal_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub playbook: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    pub playbook: String,
    pub guard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub playbook: String,
    pub action: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub playbook: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabel {
    pub level: String,
}

/// Counters and gauges of the heal engine.
pub struct HealMetrics {
    pub executions: Family<StatusLabels, Counter>,
    pub vetoes: Family<GuardLabels, Counter>,
    pub actions: Family<ActionLabels, Counter>,
    pub verifications: Family<ResultLabels, Counter>,
    pub active: Gauge,
    pub playbooks: Gauge,
    pub reaction: Histogram,
    pub trust_changes: Family<LevelLabel, Counter>,
    pub journal_errors: Counter,
    /// Alerts whose sender may not start the playbook they match, by playbook.
    pub refused_triggers: Family<Vec<(&'static str, String)>, Counter>,
}

impl Default for HealMetrics {
    fn default() -> Self {
        HealMetrics {
            executions: Family::default(),
            vetoes: Family::default(),
            actions: Family::default(),
            verifications: Family::default(),
            active: Gauge::default(),
            playbooks: Gauge::default(),
            reaction: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            trust_changes: Family::default(),
            journal_errors: Counter::default(),
            refused_triggers: Family::default(),
        }
    }
}

impl HealMetrics {
    /// Registers every metric under `medic_heal_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("medic_heal");
        r.register(
            "refused_triggers",
            "Alerts that matched a playbook but whose sender may not start it (trigger.sources, permissions), by playbook",
            self.refused_triggers.clone(),
        );
        r.register(
            "executions",
            "Executions that ended, by playbook and final status",
            self.executions.clone(),
        );
        r.register(
            "vetoes",
            "Executions a guard refused, by playbook and guard",
            self.vetoes.clone(),
        );
        r.register(
            "actions",
            "Actions run, by playbook, action and result (ok, failed, unknown)",
            self.actions.clone(),
        );
        r.register(
            "verifications",
            "Verifications, by playbook and result (success, failure)",
            self.verifications.clone(),
        );
        r.register(
            "executions_active",
            "Executions in progress (running, awaiting approval, verifying)",
            self.active.clone(),
        );
        r.register("playbooks", "Playbooks loaded", self.playbooks.clone());
        r.register(
            "reaction_seconds",
            "Time from an alert reaching medic to its first action starting",
            self.reaction.clone(),
        );
        r.register(
            "trust_changes",
            "Moves on the trust ladder, by the level reached",
            self.trust_changes.clone(),
        );
        r.register(
            "journal_errors",
            "Failures writing the execution journal",
            self.journal_errors.clone(),
        );
    }
}
