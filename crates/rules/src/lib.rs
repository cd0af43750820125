//! medic's rules engine: Prometheus rule files ([`file`]), recording and alerting rules with
//! the alert state machine ([`rule`]), anomaly rules ([`anomaly`]), groups evaluated over a store ([`group`]), the manager
//! that schedules and reloads them ([`manager`]), and a promtool-compatible unit-test runner
//! ([`unittest`]). Alerts leave through a callback: this crate does not know the alert manager.

pub mod anomaly;
pub mod backend;
pub mod cache;
pub mod file;
pub mod group;
pub mod manager;
pub mod rule;
pub mod slo;
pub mod template;
pub mod unittest;

pub use anomaly::{AnomalyEvent, AnomalyRule, RuleSnapshot, SeriesDetector};
pub use backend::QueryBackend;
pub use file::{FileError, RuleFile};
pub use group::{
    AlertingStatus, Group, GroupOptions, GroupStatus, RuleHealth, RuleStatus, Storage,
};
pub use manager::{
    LogNotifier, Manager, Notification, Notifier, RuleMetrics, SeriesView, UpdateSummary,
};
pub use rule::{Alert, AlertState, AlertingRule, RecordingRule, Rule};

/// The functions a rule template may call (with `query` and the URL functions as stubs), for
/// checking templates when a file loads.
pub(crate) fn template_funcs_for_check() -> medic_template::Funcs {
    let mut f = medic_template::Funcs::prometheus();
    for name in ["query", "externalURL", "pathPrefix"] {
        f.insert(name, |_| Ok(medic_template::Value::Nil));
    }
    f
}
