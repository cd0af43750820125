//! Verify, the outcome for trust, the circuit breaker and escalation.

use serde_json::{json, Value as Json};

use super::{state_of, Count, Effect, Machine};
use crate::guard;
use crate::hooks::Notification;
use crate::journal::{Outcome, Pause, Phase, Status, StepState};
use crate::kinds::{GuardName, NotifyEvent, StepKind};
use crate::playbook::{NotifyOn, UnknownOutcome};

impl Machine<'_, '_, '_> {
    /// Opens the verify step if needed; waits for `after`, then checks. True (it waits).
    pub(super) fn verify_next(&mut self, since: i64) -> bool {
        let Phase::Verify { action, .. } = self.e.phase.clone() else {
            return false;
        };
        let open = self
            .open_step()
            .is_some_and(|i| self.e.steps[i].kind == StepKind::Verify);
        if !open {
            let i = self.e.begin(StepKind::Verify, &action, self.now);
            self.e.steps[i].detail = json!({"checks": 0});
        }
        let first = since + self.pb.verify.after;
        if self.now < first {
            self.emit(Effect::WakeAt(first));
        } else {
            self.emit(Effect::Check);
        }
        true
    }

    pub(super) fn on_checked(&mut self, ok: bool, message: String) -> bool {
        let Phase::Verify { action, since, .. } = self.e.phase.clone() else {
            return true;
        };
        let Some(i) = self.open_step() else {
            return true;
        };
        let checks = self.e.steps[i].detail["checks"].as_u64().unwrap_or(0) + 1;
        self.e.steps[i].detail = json!({ "checks": checks });
        let v = &self.pb.verify;
        let deadline = since + v.after + v.within;
        if !ok && self.now + v.interval <= deadline {
            self.emit(Effect::WakeAt(self.now + v.interval));
            return false;
        }
        let msg = format!(
            "{} after {checks} check(s): {message}",
            if ok { "fixed" } else { "not fixed" }
        );
        self.e.end(i, state_of(ok), msg, Json::Null, self.now);
        self.emit(Effect::Count(Count::Verification { success: ok }));
        self.outcome(&action, ok);
        if ok {
            self.fixed();
        } else {
            self.not_fixed(&action);
        }
        true
    }

    fn fixed(&mut self) {
        let pb = self.pb;
        self.world
            .guards
            .record_fixed(&pb.name, &self.e.target, self.now);
        let took = self.now - self.e.trigger.received_at;
        let summary = format!(
            "{} fixed {} ({}); verified {} after the alert reached medic",
            self.e.actions_run.join(" then "),
            self.e.target,
            self.e
                .diagnosis
                .as_ref()
                .map(|d| d.cause.as_str())
                .unwrap_or("?"),
            medic_model::format_human_duration(took)
        );
        self.e.finish(Status::Succeeded, summary, self.now);
        self.journal();
        if pb.notify.on.contains(&NotifyOn::Success) {
            self.announce(NotifyEvent::Success, &pb.notify.receivers);
        }
    }

    /// A failed verification counts against the circuit breaker; then roll back, retry,
    /// escalate, as the playbook says.
    fn not_fixed(&mut self, action: &str) {
        let pb = self.pb;
        let breaker = pb.guards.circuit_breaker;
        let opened = self
            .world
            .guards
            .record_failure(&pb.name, breaker, self.now);
        if opened {
            let what = match breaker.and_then(|b| b.recurrence) {
                Some(_) => "failed verifications or repairs that did not hold",
                None => "failed verifications",
            };
            self.open_breaker(what);
        }
        let unknown = matches!(self.e.phase, Phase::Verify { unknown: true, .. });
        self.e.status = Status::Running;
        self.e.phase = match (unknown, pb.on_unknown_outcome) {
            (true, UnknownOutcome::Escalate) => Phase::Escalate {
                reason: format!("{action} had an unknown outcome and the problem is still there"),
            },
            (true, UnknownOutcome::Retry) => Phase::Act {
                action: action.to_string(),
                approved: true,
            },
            (false, _) if opened => Phase::Escalate {
                reason: "the circuit breaker opened".into(),
            },
            _ => Phase::Rollback {
                action: action.to_string(),
            },
        };
        self.journal();
    }

    /// Records a verified outcome for trust and moves the ladder.
    pub(super) fn outcome(&mut self, action: &str, success: bool) {
        let Some(cause) = self.e.diagnosis.as_ref().map(|d| d.cause.clone()) else {
            return;
        };
        let pb = self.pb;
        let o = Outcome {
            playbook: pb.name.clone(),
            cause,
            action: action.to_string(),
            success,
            at: self.now,
            execution: self.e.id.clone(),
        };
        self.emit(Effect::Outcome(o.clone()));
        let policy = pb
            .actions
            .get(action)
            .map(|a| a.approval)
            .unwrap_or_default();
        let cfg = self.world.trust_config;
        let Some(c) = self.world.trust.record(&cfg, &o, policy) else {
            return;
        };
        self.emit(Effect::TrustChanged(c.clone()));
        self.emit(Effect::Count(Count::TrustChange {
            level: c.to.clone(),
        }));
        self.note(
            StepKind::Trust,
            action,
            StepState::Succeeded,
            format!("{} → {}: {}", c.from, c.to, c.reason),
        );
        if pb.notify.receivers.is_empty() {
            return;
        }
        let n = Notification {
            receivers: pb.notify.receivers.clone(),
            event: NotifyEvent::Trust,
            playbook: pb.name.clone(),
            target: self.e.target.clone(),
            execution: self.e.id.clone(),
            title: format!("medic: trust in {}/{} is now {}", pb.name, action, c.to),
            text: format!(
                "{} for cause {}: {} → {} because {}",
                action, c.cause, c.from, c.to, c.reason
            ),
            labels: self.e.trigger.labels.clone(),
        };
        self.emit(Effect::Notify(Box::new(n)));
    }

    /// Opens the playbook's circuit breaker: pauses the playbook until a person resumes it,
    /// notes it and tells the escalation receivers.
    pub(crate) fn open_breaker(&mut self, what: &str) {
        let pb = self.pb;
        let Some(b) = pb.guards.circuit_breaker else {
            return;
        };
        let p = Pause {
            scope: guard::playbook_scope(&pb.name),
            reason: format!("{} {what} within {}", b.failures, b.within),
            by: guard::BREAKER.into(),
            at: self.now,
            until: None,
        };
        self.emit(Effect::Pause(p.clone()));
        self.world.guards.set_pause(p.clone());
        self.note(
            StepKind::Guard,
            GuardName::CircuitBreaker.as_str(),
            StepState::Failed,
            format!("opened: playbook {} paused ({})", pb.name, p.reason),
        );
        let receivers = self.escalation_receivers();
        self.announce(NotifyEvent::CircuitBreaker, &receivers);
    }

    /// Ends the execution as failed and tells people.
    pub(super) fn escalate(&mut self, reason: String) {
        let receivers = self.escalation_receivers();
        self.e
            .finish(Status::Failed, format!("escalated: {reason}"), self.now);
        self.note(StepKind::Escalate, "people", StepState::Succeeded, reason);
        self.journal();
        if self.pb.notify.on.contains(&NotifyOn::Failure) {
            self.announce(NotifyEvent::Failure, &receivers);
        }
    }
}
