//! The execution journal: every execution is a record whose steps are written before they
//! start and after they end, so a restarted medic knows exactly where each one stood. The
//! [`HealStore`] trait is what durable backends implement (`medic-state` for SQLite);
//! [`MemStore`] keeps it in memory for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::kinds::{GuardName, StepKind, TriggerKind};

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Collecting, diagnosing or acting.
    Running,
    /// Waiting for a person to approve the proposed action.
    AwaitingApproval,
    /// Checking whether the action fixed the problem.
    Verifying,
    /// Fixed and verified.
    Succeeded,
    /// Not fixed; escalated to people.
    Failed,
    /// A guard refused to start it.
    Vetoed,
    /// A person refused the proposed action.
    Rejected,
    /// The trigger resolved before medic acted; nothing was done.
    Resolved,
    /// Dry run: everything decided and recorded, nothing done.
    DryRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::AwaitingApproval => "awaiting_approval",
            Status::Verifying => "verifying",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Vetoed => "vetoed",
            Status::Rejected => "rejected",
            Status::Resolved => "resolved",
            Status::DryRun => "dry_run",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        serde_json::from_value(Json::String(s.to_string())).ok()
    }

    /// Whether the execution is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Running | Status::AwaitingApproval | Status::Verifying
        )
    }
}

/// What started an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerInfo {
    pub kind: TriggerKind,
    /// The alert's fingerprint (hex), for alert triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started (ms).
    #[serde(default)]
    pub starts_at: i64,
    /// When medic received it (ms): the start of the reaction-time clock.
    #[serde(default)]
    pub received_at: i64,
    /// Who asked, for manual triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The state machine's position, saved so a restart resumes at the right step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Phase {
    Collect,
    Diagnose,
    /// Pick candidate `attempt` (skipping disabled ones) and ask for approval if needed.
    Choose,
    AwaitApproval {
        action: String,
        since: i64,
    },
    Act {
        action: String,
        approved: bool,
    },
    Verify {
        action: String,
        since: i64,
        /// The action's outcome is unknown (medic stopped while it ran).
        #[serde(default)]
        unknown: bool,
    },
    Rollback {
        action: String,
    },
    Escalate {
        reason: String,
    },
    Done,
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Started,
    Succeeded,
    Failed,
    Skipped,
    /// Started before a crash; nobody saw it end.
    Unknown,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Unknown => "unknown",
        }
    }
}

/// One line of an execution's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    pub name: String,
    pub state: StepState,
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Json::is_null")]
    pub detail: Json,
}

/// The conclusion of the diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub cause: String,
    #[serde(default)]
    pub description: String,
    /// The rule's condition.
    pub when: String,
    /// The evidence the condition read.
    pub support: BTreeMap<String, Json>,
    /// Rules tried before it and why they did not match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<(String, String)>,
}

/// A guard's refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Veto {
    pub guard: GuardName,
    pub reason: String,
}

/// A person's decision on a proposed action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub approved: bool,
    pub by: String,
    #[serde(default)]
    pub comment: String,
    pub at: i64,
}

/// One execution of a playbook for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub playbook: String,
    pub target: String,
    pub group: String,
    pub trigger: TriggerInfo,
    pub params: BTreeMap<String, String>,
    pub status: Status,
    pub phase: Phase,
    pub dry_run: bool,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub veto: Option<Veto>,
    #[serde(default)]
    pub evidence: BTreeMap<String, Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// Candidate actions, best first.
    #[serde(default)]
    pub candidates: Vec<String>,
    /// Index of the candidate being tried.
    #[serde(default)]
    pub attempt: usize,
    /// Actions run (in order), for the summary and the trust record.
    #[serde(default)]
    pub actions_run: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// When the first action started (ms): the end of the reaction-time clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_started_at: Option<i64>,
    #[serde(default)]
    pub summary: String,
    pub steps: Vec<Step>,
}

impl Execution {
    /// Appends a started step and returns its index.
    pub fn begin(&mut self, kind: StepKind, name: &str, now: i64) -> usize {
        self.steps.push(Step {
            kind,
            name: name.into(),
            state: StepState::Started,
            started_at: now,
            ended_at: None,
            message: String::new(),
            detail: Json::Null,
        });
        self.updated_at = now;
        self.steps.len() - 1
    }

    /// Ends step `i`.
    pub fn end(&mut self, i: usize, state: StepState, message: String, detail: Json, now: i64) {
        if let Some(s) = self.steps.get_mut(i) {
            s.state = state;
            s.ended_at = Some(now);
            s.message = message;
            s.detail = detail;
        }
        self.updated_at = now;
    }

    /// A step that starts and ends at once.
    pub fn note(
        &mut self,
        kind: StepKind,
        name: &str,
        state: StepState,
        message: String,
        now: i64,
    ) {
        let i = self.begin(kind, name, now);
        self.end(i, state, message, Json::Null, now);
    }

    /// Puts the execution in a final state.
    pub fn finish(&mut self, status: Status, summary: String, now: i64) {
        self.status = status;
        self.phase = Phase::Done;
        self.summary = summary;
        self.finished_at = Some(now);
        self.updated_at = now;
    }

    /// The step a person would call "current", for notes on the alert.
    pub fn current_step(&self) -> String {
        match &self.phase {
            Phase::Collect => "collecting evidence".into(),
            Phase::Diagnose => "diagnosing".into(),
            Phase::Choose => "choosing an action".into(),
            Phase::AwaitApproval { action, .. } => format!("awaiting approval of {action}"),
            Phase::Act { action, .. } => format!("running {action}"),
            Phase::Verify { action, .. } => format!("verifying {action}"),
            Phase::Rollback { action } => format!("rolling back {action}"),
            Phase::Escalate { .. } => "escalating".into(),
            Phase::Done => self.status.as_str().into(),
        }
    }
}

/// Filters for listing executions.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    pub playbook: Option<String>,
    pub target: Option<String>,
    pub status: Option<Status>,
    /// Created at or after (ms).
    pub since: Option<i64>,
    /// Created at or before (ms).
    pub until: Option<i64>,
    /// Newest first, at most this many (0: no limit).
    pub limit: usize,
}

impl ExecutionQuery {
    pub fn matches(&self, e: &Execution) -> bool {
        self.playbook.as_ref().is_none_or(|p| *p == e.playbook)
            && self.target.as_ref().is_none_or(|t| *t == e.target)
            && self.status.is_none_or(|s| s == e.status)
            && self.since.is_none_or(|t| e.created_at >= t)
            && self.until.is_none_or(|t| e.created_at <= t)
    }
}

/// A pause of automatic repair: of everything, of one playbook, or of one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// `all`, `playbook:<name>` or `target:<target>`.
    pub scope: String,
    pub reason: String,
    pub by: String,
    pub at: i64,
    /// When it lifts by itself (ms); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// A verified outcome of an action, for trust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub playbook: String,
    pub cause: String,
    pub action: String,
    pub success: bool,
    pub at: i64,
    pub execution: String,
}

/// A change on the trust ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustChange {
    pub playbook: String,
    pub cause: String,
    pub action: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub at: i64,
}

/// A durable-store error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where executions, pauses and trust live.
pub trait HealStore: Send + Sync {
    /// Writes the whole record (insert or replace); durable when it returns.
    fn put_execution(&self, e: &Execution) -> Result<(), StoreError>;
    fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError>;
    /// Matching executions, newest first.
    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>, StoreError>;
    /// Executions not in a final state.
    fn unfinished(&self) -> Result<Vec<Execution>, StoreError>;
    fn put_pause(&self, p: &Pause) -> Result<(), StoreError>;
    fn delete_pause(&self, scope: &str) -> Result<(), StoreError>;
    fn pauses(&self) -> Result<Vec<Pause>, StoreError>;
    fn put_outcome(&self, o: &Outcome) -> Result<(), StoreError>;
    /// Outcomes, oldest first.
    fn outcomes(&self) -> Result<Vec<Outcome>, StoreError>;
    fn put_trust_change(&self, c: &TrustChange) -> Result<(), StoreError>;
    /// Changes, oldest first.
    fn trust_changes(&self) -> Result<Vec<TrustChange>, StoreError>;
    /// Deletes final executions created before `before` (ms) and outcomes older than it.
    fn prune(&self, before: i64) -> Result<usize, StoreError>;
}

/// A [`HealStore`] in memory.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

#[derive(Default)]
struct MemInner {
    executions: HashMap<String, Execution>,
    pauses: BTreeMap<String, Pause>,
    outcomes: Vec<Outcome>,
    changes: Vec<TrustChange>,
    /// Writes made, for tests that count journal writes.
    writes: usize,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many execution writes were made.
    pub fn writes(&self) -> usize {
        self.lock().writes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HealStore for MemStore {
    fn put_execution(&self, e: &Execution) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.writes += 1;
        g.executions.insert(e.id.clone(), e.clone());
        Ok(())
    }
    fn execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        Ok(self.lock().executions.get(id).cloned())
    }
    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>, StoreError> {
        let g = self.lock();
        let mut v: Vec<Execution> = g
            .executions
            .values()
            .filter(|e| q.matches(e))
            .cloned()
            .collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        if q.limit > 0 {
            v.truncate(q.limit);
        }
        Ok(v)
    }
    fn unfinished(&self) -> Result<Vec<Execution>, StoreError> {
        let mut v: Vec<Execution> = self
            .lock()
            .executions
            .values()
            .filter(|e| !e.status.is_final())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    fn put_pause(&self, p: &Pause) -> Result<(), StoreError> {
        self.lock().pauses.insert(p.scope.clone(), p.clone());
        Ok(())
    }
    fn delete_pause(&self, scope: &str) -> Result<(), StoreError> {
        self.lock().pauses.remove(scope);
        Ok(())
    }
    fn pauses(&self) -> Result<Vec<Pause>, StoreError> {
        Ok(self.lock().pauses.values().cloned().collect())
    }
    fn put_outcome(&self, o: &Outcome) -> Result<(), StoreError> {
        self.lock().outcomes.push(o.clone());
        Ok(())
    }
    fn outcomes(&self) -> Result<Vec<Outcome>, StoreError> {
        Ok(self.lock().outcomes.clone())
    }
    fn put_trust_change(&self, c: &TrustChange) -> Result<(), StoreError> {
        self.lock().changes.push(c.clone());
        Ok(())
    }
    fn trust_changes(&self) -> Result<Vec<TrustChange>, StoreError> {
        Ok(self.lock().changes.clone())
    }
    fn prune(&self, before: i64) -> Result<usize, StoreError> {
        let mut g = self.lock();
        let n = g.executions.len();
        g.executions
            .retain(|_, e| !e.status.is_final() || e.created_at >= before);
        g.outcomes.retain(|o| o.at >= before);
        Ok(n - g.executions.len())
    }
}
