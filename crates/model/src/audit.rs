//! The audit trail's record: who did what, from where, to what, with what result. Written by the
//! server for every state-changing request and by the heal engine for its decisions and actions;
//! kept by `medic-state` in a hash chain (see `docs/security.md`).

use serde::{Deserialize, Serialize};

/// Who acts when medic acts on its own.
pub const ACTOR_HEAL: &str = "heal";

/// One audited event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at: i64,
    /// The identity that asked: a user or token name, `anonymous` when the request carried
    /// none, `heal` for the heal engine.
    pub actor: String,
    /// Where from: the client's address, or `medic`.
    pub source: String,
    /// What: `POST /api/v2/silences`, `heal.vetoed`, `heal.action`, …
    pub action: String,
    /// On what: a path, a playbook and target, an execution.
    pub target: String,
    /// Parameters as JSON text, secrets already masked as `<secret>`.
    pub detail: String,
    /// The outcome: an HTTP status, `ok`, `failed`, `vetoed by cooldown`, …
    pub result: String,
}

/// Where audit entries go. Recording never fails the caller: a sink that cannot write counts
/// and logs the failure.
pub trait AuditSink: Send + Sync {
    fn record(&self, entry: AuditEntry);
}

/// A sink that keeps nothing (tests, offline tools).
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _: AuditEntry) {}
}
