//! Resume: an execution that was in flight when medic stopped. A step that started and never
//! ended has an unknown outcome: an action is verified before anything else (never run again
//! blindly), a rollback escalates, a read is simply done again.

use super::{Count, Effect, World};
use crate::journal::{Execution, Phase, Status, StepState};
use crate::kinds::StepKind;
use crate::playbook::Playbook;

const UNKNOWN: &str = "medic stopped while this step ran; outcome unknown";

/// Prepares `e` to continue under `pb` (`None`: the playbook is no longer loaded, and the
/// execution fails with what is known). Returns the effects, [`Effect::Start`] among them
/// when it continues.
pub fn resume(
    world: &mut World,
    pb: Option<&Playbook>,
    e: &mut Execution,
    now: i64,
) -> Vec<Effect> {
    let Some(_pb) = pb else {
        e.note(
            StepKind::Resume,
            &e.playbook.clone(),
            StepState::Failed,
            "the playbook is no longer loaded".into(),
            now,
        );
        e.finish(
            Status::Failed,
            "cannot resume: playbook no longer loaded".into(),
            now,
        );
        return vec![Effect::Journal, Effect::NotStarted];
    };
    let mut out = Vec::new();
    let interrupted = e
        .steps
        .iter()
        .rposition(|s| s.state == StepState::Started && s.ended_at.is_none());
    // Every open step is of unknown outcome (a sequence's own step stays open around the
    // interrupted one).
    for s in e.steps.iter_mut() {
        if s.state == StepState::Started && s.ended_at.is_none() {
            s.state = StepState::Unknown;
            s.ended_at = Some(now);
            s.message = UNKNOWN.into();
        }
    }
    if let Some(i) = interrupted {
        let kind = e.steps[i].kind;
        // A step of a sequence (`action/step`) stands for its action.
        let name = e.steps[i].name.split('/').next().unwrap_or("").to_string();
        if kind == StepKind::Action {
            out.push(Effect::Count(Count::Action {
                action: name.clone(),
                result: "unknown",
            }));
            if !e.actions_run.contains(&name) {
                e.actions_run.push(name.clone());
            }
            e.note(
                StepKind::Resume,
                &name,
                StepState::Succeeded,
                format!("the outcome of {name} is unknown: verifying before anything else"),
                now,
            );
            e.status = Status::Verifying;
            e.phase = Phase::Verify {
                action: name,
                since: now,
                unknown: true,
            };
        } else if kind == StepKind::Rollback {
            e.phase = Phase::Escalate {
                reason: format!("medic stopped while rolling back {name}; its outcome is unknown"),
            };
        }
    }
    e.note(
        StepKind::Resume,
        "restart",
        StepState::Succeeded,
        format!("resumed at {}", e.current_step()),
        now,
    );
    world
        .guards
        .admit(&e.playbook, &e.target, &e.group, &e.id, e.created_at);
    out.extend([Effect::Journal, Effect::Mark, Effect::Start]);
    out
}
