//! What the engine needs from the rest of medic, and what it tells it: alerts in, marks and
//! notifications out.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::kinds::NotifyEvent;

/// An alert as the engine sees it (from any source the alert manager accepts).
#[derive(Debug, Clone)]
pub struct AlertInput {
    pub fingerprint: String,
    /// Who sent it in.
    pub origin: AlertOrigin,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    /// 0 while firing with no end known.
    pub ends_at: i64,
}

/// A message for people about an execution.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub receivers: Vec<String>,
    pub event: NotifyEvent,
    pub playbook: String,
    pub target: String,
    pub execution: String,
    pub title: String,
    pub text: String,
    /// The trigger's labels.
    pub labels: BTreeMap<String, String>,
}

/// A boxed future, for the object-safe hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the engine needs from the rest of medic (the alert manager, in `medic run`).
pub trait Hooks: Send + Sync {
    /// Whether the alert with these labels has resolved; `None` when it is unknown.
    fn alert_resolved(&self, labels: &BTreeMap<String, String>) -> Option<bool>;
    /// Marks the alert with these labels as under repair (a note), or not (`None`).
    fn repairing(&self, labels: &BTreeMap<String, String>, note: Option<String>);
    /// Sends a message to receivers.
    fn notify(&self, n: Notification) -> BoxFuture<Result<(), NotifyError>>;
    /// Records a decision or an action in the audit log.
    fn audit(&self, _entry: medic_model::AuditEntry) {}
    /// An execution's journal record was written (a step began or ended): incidents follow
    /// repairs through this.
    fn journaled(&self, _execution: &crate::journal::Execution) {}
    /// Asked right before every action and verification check runs: `Err` when this process
    /// may no longer act (a replica that lost the leader lease). Default: always allowed.
    fn fence(&self) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Hooks that know no alerts and send nothing (tests, offline tools).
pub struct NoHooks;

impl Hooks for NoHooks {
    fn alert_resolved(&self, _: &BTreeMap<String, String>) -> Option<bool> {
        None
    }
    fn repairing(&self, _: &BTreeMap<String, String>, _: Option<String>) {}
    fn notify(&self, _: Notification) -> BoxFuture<Result<(), NotifyError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Receivers a notification did not reach, each with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", failures.iter().map(|(r, e)| format!("{r}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct NotifyError {
    pub failures: Vec<(String, String)>,
}

/// Who sent an alert in, as `trigger.sources` names senders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AlertOrigin {
    /// Not known (loaded at start, before its sender sent it again).
    #[default]
    Unknown,
    /// medic's alerting rules.
    Rules,
    /// medic's anomaly rules.
    Anomaly,
    /// Posted through the API by `identity`; `may_trigger`: its role holds the trigger
    /// permission for the alert's labels.
    Api { identity: String, may_trigger: bool },
}

impl AlertOrigin {
    pub fn as_str(&self) -> &str {
        match self {
            AlertOrigin::Unknown => "unknown",
            AlertOrigin::Rules => "rules",
            AlertOrigin::Anomaly => "anomaly",
            AlertOrigin::Api { identity, .. } => identity,
        }
    }
}
