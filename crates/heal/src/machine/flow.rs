//! Collect, diagnose, choose and approval: the phases before an action runs.

use serde_json::{json, Value as Json};

use super::{state_of, Effect, Machine};
use crate::evidence::{action_plan, diagnose, plan_text, variables};
use crate::journal::{Decision, Phase, Status, StepState};
use crate::kinds::{GuardName, NotifyEvent, StepKind};
use crate::playbook::{Approval, Dur, NotifyOn};
use crate::trust::Level;

impl Machine<'_, '_, '_> {
    /// Starts the next collector that has no evidence yet, or moves on to the diagnosis.
    /// True while a collector runs.
    pub(super) fn collect_next(&mut self) -> bool {
        let pb = self.pb;
        match pb
            .collect
            .iter()
            .find(|c| !self.e.evidence.contains_key(&c.name))
        {
            Some(c) => {
                self.e.begin(StepKind::Collect, &c.name, self.now);
                self.emit(Effect::Collect(c.name.clone()));
                true
            }
            None => {
                self.e.phase = Phase::Diagnose;
                self.journal();
                false
            }
        }
    }

    pub(super) fn on_collected(&mut self, ok: bool, message: String, value: Json) -> bool {
        let Some(i) = self.open_step() else {
            return true;
        };
        let name = self.e.steps[i].name.clone();
        self.e.end(i, state_of(ok), message, Json::Null, self.now);
        self.e.evidence.insert(name, value);
        true
    }

    /// The first cause whose condition holds; candidates ranked by trust.
    pub(super) fn diagnose(&mut self) -> bool {
        let i = self.e.begin(StepKind::Diagnose, "rules", self.now);
        let vars = variables(&self.scope(), &self.e.evidence);
        let pb = self.pb;
        match diagnose(pb, &vars) {
            Ok(d) => {
                let actions: Vec<(String, Approval)> = pb
                    .diagnose
                    .iter()
                    .find(|c| c.name == d.cause)
                    .map(|c| {
                        c.actions
                            .iter()
                            .map(|a| (a.clone(), pb.actions[a].approval))
                            .collect()
                    })
                    .unwrap_or_default();
                self.e.candidates = self.world.trust.rank(&pb.name, &d.cause, &actions);
                let msg = format!(
                    "cause: {} ({}); candidates: {}",
                    d.cause,
                    d.when,
                    self.e.candidates.join(", ")
                );
                let detail = serde_json::to_value(&d).unwrap_or(Json::Null);
                self.e.end(i, StepState::Succeeded, msg, detail, self.now);
                self.e.diagnosis = Some(d);
                self.e.phase = Phase::Choose;
            }
            Err(rejected) => {
                self.e.end(
                    i,
                    StepState::Failed,
                    "no diagnosis rule matched".into(),
                    json!(rejected),
                    self.now,
                );
                self.e.phase = Phase::Escalate {
                    reason: "no diagnosis rule matched the evidence".into(),
                };
            }
        }
        self.journal();
        false
    }

    fn cause(&self) -> String {
        self.e
            .diagnosis
            .as_ref()
            .map(|d| d.cause.clone())
            .unwrap_or_default()
    }

    fn level(&self, action: &str) -> Level {
        let def = &self.pb.actions[action];
        self.world
            .trust
            .level(&self.pb.name, &self.cause(), action, def.approval)
    }

    /// Skips candidates the trust ladder disabled; escalates when none is left; otherwise
    /// asks whether the trigger resolved before going on. True while it waits.
    pub(super) fn choose(&mut self) -> bool {
        let Some(action) = self.e.candidates.get(self.e.attempt).cloned() else {
            let tried = if self.e.actions_run.is_empty() {
                "no action could be tried".to_string()
            } else {
                format!(
                    "tried {} without a verified fix",
                    self.e.actions_run.join(", ")
                )
            };
            self.e.phase = Phase::Escalate { reason: tried };
            return false;
        };
        if self.level(&action) == Level::Disabled {
            self.note(
                StepKind::Action,
                &action,
                StepState::Skipped,
                "disabled by the trust ladder".into(),
            );
            self.e.attempt += 1;
            self.journal();
            return false;
        }
        self.emit(Effect::AskResolved);
        true
    }

    pub(super) fn on_resolved(&mut self, resolved: Option<bool>) -> bool {
        let action = match &self.e.phase {
            Phase::Choose => self.e.candidates.get(self.e.attempt).cloned(),
            Phase::Act { action, .. } => Some(action.clone()),
            _ => None,
        };
        let Some(action) = action else {
            return true;
        };
        if resolved == Some(true) {
            self.stop_resolved(&action);
            return true;
        }
        match self.e.phase {
            Phase::Choose => {
                self.chosen(action);
                true
            }
            _ => {
                self.start_action(action);
                false
            }
        }
    }

    /// Ends the execution, doing nothing: the trigger resolved before medic acted.
    fn stop_resolved(&mut self, action: &str) {
        self.note(
            StepKind::Guard,
            GuardName::Resolved.as_str(),
            StepState::Failed,
            "the trigger resolved before medic acted".into(),
        );
        self.e.finish(
            Status::Resolved,
            format!("the trigger resolved before {action} ran; nothing was done"),
            self.now,
        );
        self.journal();
    }

    /// The candidate is not disabled and the trigger still fires: a dry run ends here, an
    /// untrusted action waits for approval, a trusted one runs.
    fn chosen(&mut self, action: String) {
        let pb = self.pb;
        let def = &pb.actions[&action];
        if self.e.dry_run {
            let plan = action_plan(def, &self.scope());
            self.note(
                StepKind::Action,
                &action,
                StepState::Skipped,
                format!("dry run: would run {}", plan_text(&plan)),
            );
            if let Some(s) = self.e.steps.last_mut() {
                s.detail = plan;
            }
            let summary = format!("dry run: would run {action} for {}", self.e.target);
            self.e.finish(Status::DryRun, summary, self.now);
            self.journal();
            if pb.notify.on.contains(&NotifyOn::DryRun) {
                self.announce(NotifyEvent::DryRun, &pb.notify.receivers);
            }
            return;
        }
        if self.level(&action) == Level::Approval {
            self.e.status = Status::AwaitingApproval;
            self.e.phase = Phase::AwaitApproval {
                action: action.clone(),
                since: self.now,
            };
            let reason = if def.approval == Approval::Always {
                "the action always needs approval".to_string()
            } else {
                let (s, n) = self.world.trust.stats(&pb.name, &self.cause(), &action);
                format!("the action is not trusted yet ({s} of {n} verified attempts succeeded)")
            };
            self.note(StepKind::Approval, &action, StepState::Started, reason);
            self.journal();
            if pb.notify.on.contains(&NotifyOn::Approval) {
                self.announce(NotifyEvent::Approval, &pb.notify.receivers);
            }
            return;
        }
        self.e.phase = Phase::Act {
            action,
            approved: false,
        };
        self.journal();
    }

    fn approval_timeout(&self) -> i64 {
        self.pb
            .guards
            .approval_timeout
            .unwrap_or(self.world.approval_timeout)
    }

    /// Waits for a decision until the timeout, then escalates. True while it waits.
    pub(super) fn await_approval(&mut self, since: i64) -> bool {
        let timeout = self.approval_timeout();
        if self.now < since + timeout {
            self.emit(Effect::AwaitDecision {
                until: since + timeout,
            });
            return true;
        }
        let Phase::AwaitApproval { action, .. } = self.e.phase.clone() else {
            return false;
        };
        self.note(
            StepKind::Approval,
            &action,
            StepState::Failed,
            format!("no decision within {}", Dur(timeout)),
        );
        self.e.status = Status::Running;
        self.e.phase = Phase::Escalate {
            reason: format!("{action} was not approved within {}", Dur(timeout)),
        };
        self.journal();
        false
    }

    pub(super) fn on_decided(&mut self, d: Decision) -> bool {
        let Phase::AwaitApproval { action, .. } = self.e.phase.clone() else {
            return true;
        };
        let msg = format!(
            "{} by {}{}",
            if d.approved { "approved" } else { "rejected" },
            d.by,
            if d.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", d.comment)
            }
        );
        self.note(
            StepKind::Approval,
            &action,
            state_of(d.approved),
            msg.clone(),
        );
        let approved = d.approved;
        self.e.decision = Some(d);
        if approved {
            self.e.status = Status::Running;
            self.e.phase = Phase::Act {
                action,
                approved: true,
            };
        } else {
            self.e.finish(
                Status::Rejected,
                format!("{action} {msg}; nothing was done"),
                self.now,
            );
        }
        self.journal();
        true
    }
}
