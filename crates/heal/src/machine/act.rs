//! Act and roll back: actions, sequences of steps and their rollbacks, each journaled before
//! it runs.

use serde_json::Value as Json;

use super::{state_of, Count, Effect, Machine};
use crate::journal::{Phase, Status, StepState};
use crate::kinds::StepKind;
use crate::playbook::{Action, ActionKind};

impl Machine<'_, '_, '_> {
    /// Journals the action as started, then runs it (or the first step of its sequence).
    pub(super) fn start_action(&mut self, action: String) {
        let def = self.pb.actions[&action].clone();
        self.e.begin(StepKind::Action, &action, self.now);
        self.e.status = Status::Running;
        if self.e.action_started_at.is_none() {
            self.e.action_started_at = Some(self.now);
            let ms = (self.now - self.e.trigger.received_at).max(0);
            self.emit(Effect::Count(Count::Reaction { ms }));
        }
        match &def.kind {
            ActionKind::Steps(steps) => match steps.first() {
                Some(first) => self.start_sequence_step(&action, first),
                None => self.action_ended(&action, true, "0 steps succeeded".into(), Json::Null),
            },
            _ => {
                // Journal first: a crash from here on leaves an action of unknown outcome.
                self.journal();
                self.emit(Effect::Run {
                    name: action,
                    action: def,
                });
            }
        }
    }

    fn start_sequence_step(&mut self, action: &str, step: &Action) {
        let name = format!("{action}/{}", step.name);
        self.e.begin(StepKind::Action, &name, self.now);
        self.journal();
        self.emit(Effect::Run {
            name,
            action: step.clone(),
        });
    }

    pub(super) fn on_ran(&mut self, ok: bool, message: String, detail: Json) -> bool {
        match self.e.phase.clone() {
            Phase::Act { action, .. } => self.on_action_ran(&action, ok, message, detail),
            Phase::Rollback { action } => self.on_rollback_ran(&action, ok, message, detail),
            _ => true,
        }
    }

    fn on_action_ran(&mut self, action: &str, ok: bool, message: String, detail: Json) -> bool {
        let Some(i) = self.open_step() else {
            return true;
        };
        let pb = self.pb;
        let step_name = self.e.steps[i].name.clone();
        let (ActionKind::Steps(steps), Some(sub)) = (
            &pb.actions[action].kind,
            step_name.strip_prefix(&format!("{action}/")),
        ) else {
            self.e
                .end(i, state_of(ok), message.clone(), detail, self.now);
            self.action_ended(action, ok, message, Json::Null);
            return true;
        };
        // A step of a sequence: record it, then run the next or end the whole action.
        self.e
            .end(i, state_of(ok), message.clone(), detail, self.now);
        self.journal();
        let n = steps.iter().position(|s| s.name == sub).unwrap_or(0);
        if !ok {
            let msg = format!(
                "step {} of {} ({sub}) failed: {message}",
                n + 1,
                steps.len()
            );
            self.action_ended(action, false, msg, Json::Null);
            return true;
        }
        match steps.get(n + 1) {
            Some(next) => {
                self.start_sequence_step(action, next);
                false
            }
            None => {
                let msg = format!("{} steps succeeded", steps.len());
                self.action_ended(action, true, msg, Json::Null);
                true
            }
        }
    }

    /// Ends the action's own step (when it is still open) and moves to verify or roll back.
    fn action_ended(&mut self, action: &str, ok: bool, message: String, detail: Json) {
        if let Some(i) = self.open_step() {
            if self.e.steps[i].name == action {
                self.e.end(i, state_of(ok), message, detail, self.now);
            }
        }
        self.e.actions_run.push(action.to_string());
        self.emit(Effect::Count(Count::Action {
            action: action.to_string(),
            result: if ok { "ok" } else { "failed" },
        }));
        if ok {
            self.e.status = Status::Verifying;
            self.e.phase = Phase::Verify {
                action: action.to_string(),
                since: self.now,
                unknown: false,
            };
        } else {
            self.outcome(action, false);
            self.e.phase = Phase::Rollback {
                action: action.to_string(),
            };
        }
        self.journal();
    }

    /// Starts the next rollback, or moves on to the next candidate when there is none left.
    /// True while a rollback runs.
    pub(super) fn roll_back_next(&mut self, action: &str) -> bool {
        let next = match self.pb.actions.get(action) {
            Some(
                def @ Action {
                    kind: ActionKind::Steps(_),
                    ..
                },
            ) => {
                let next = self.pending_undo(def);
                if next.is_none() {
                    self.next_candidate(true);
                }
                next
            }
            Some(def) => match &def.rollback {
                Some(rb) => Some((action.to_string(), (**rb).clone())),
                None => {
                    self.next_candidate(false);
                    None
                }
            },
            None => {
                self.next_candidate(false);
                None
            }
        };
        let Some((name, rb)) = next else {
            return false;
        };
        self.e.begin(StepKind::Rollback, &name, self.now);
        self.journal();
        self.emit(Effect::Run { name, action: rb });
        true
    }

    fn next_candidate(&mut self, journal: bool) {
        self.e.attempt += 1;
        self.e.phase = Phase::Choose;
        if journal {
            self.journal();
        }
    }

    /// What of a sequence is still to undo: the steps that succeeded, in reverse order, each
    /// by its own rollback, then the action's rollback; less what was already rolled back.
    fn pending_undo(&self, def: &Action) -> Option<(String, Action)> {
        let start = self
            .e
            .steps
            .iter()
            .rposition(|s| s.kind == StepKind::Action && s.name == def.name)
            .unwrap_or(0);
        let since = &self.e.steps[start..];
        let prefix = format!("{}/", def.name);
        let done: Vec<&str> = since
            .iter()
            .filter(|s| {
                s.kind == StepKind::Action
                    && s.state == StepState::Succeeded
                    && s.name.starts_with(&prefix)
            })
            .map(|s| s.name.as_str())
            .collect();
        let rolled: Vec<&str> = since
            .iter()
            .filter(|s| s.kind == StepKind::Rollback && s.state == StepState::Succeeded)
            .map(|s| s.name.as_str())
            .collect();
        let mut undo: Vec<(String, Action)> = done
            .iter()
            .rev()
            .filter_map(|n| Some((n.to_string(), *def.step(n)?.rollback.clone()?)))
            .collect();
        if let Some(rb) = &def.rollback {
            undo.push((def.name.clone(), (**rb).clone()));
        }
        undo.into_iter()
            .find(|(n, _)| !rolled.contains(&n.as_str()))
    }

    fn on_rollback_ran(&mut self, action: &str, ok: bool, message: String, detail: Json) -> bool {
        let Some(i) = self.open_step() else {
            return true;
        };
        let name = self.e.steps[i].name.clone();
        self.e
            .end(i, state_of(ok), message.clone(), detail, self.now);
        self.journal();
        if !ok {
            self.e.phase = Phase::Escalate {
                reason: format!("rollback of {name} failed: {message}"),
            };
            self.journal();
            return true;
        }
        let sequence = matches!(
            self.pb.actions.get(action).map(|a| &a.kind),
            Some(ActionKind::Steps(_))
        );
        if !sequence {
            self.next_candidate(true);
        }
        true
    }
}
