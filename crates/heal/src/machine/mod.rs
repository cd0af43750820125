//! The execution state machine: a deterministic core in the raft-rs "ready/advance" shape.
//!
//! [`step`] takes an execution, an [`Event`] and the time, moves the execution to its next
//! state and returns the [`Effect`]s the engine must perform — run a collector, an action or a
//! check, write the journal, set a timer, notify people. The engine (`crate::engine`) only
//! performs effects and feeds their results back as events; every decision lives here, so a
//! whole execution runs on simulated time in `crates/heal/testdata/`.
//!
//! How an execution moves: it is admitted ([`admit`]) or vetoed; admitted, it collects evidence
//! one collector at a time, diagnoses (pure), ranks candidates by trust and chooses one. Before
//! acting it asks whether the trigger has resolved; it may wait for approval (a decision or the
//! timeout). The action is journaled before it runs, so a crash leaves it `unknown` and
//! [`resume`] verifies it instead of running it again. Verification checks after `after`,
//! every `interval`, until `within`; a fix ends the execution, a failure counts against the
//! circuit breaker, rolls back and tries the next candidate, or escalates.

mod act;
pub mod admit;
mod flow;
pub mod resume;
mod verify;

use serde_json::Value as Json;

use crate::guard::Guards;
use crate::hooks::Notification;
use crate::journal::{Decision, Execution, Outcome, Pause, StepState, TrustChange};
use crate::kinds::{GuardName, NotifyEvent, StepKind};
use crate::playbook::{Action, Playbook, Scope};
use crate::report::{report, title};
use crate::trust::{Trust, TrustConfig};

pub use admit::{admit, Admission};
pub use resume::resume;

/// What happened to an execution.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Make progress from where the execution stands (a start or a resume).
    Advance,
    /// The answer to [`Effect::AskResolved`]: whether the trigger resolved (`None`: unknown).
    Resolved(Option<bool>),
    /// The collector of [`Effect::Collect`] finished.
    Collected {
        ok: bool,
        message: String,
        value: Json,
    },
    /// The action, step or rollback of [`Effect::Run`] finished.
    Ran {
        ok: bool,
        message: String,
        detail: Json,
    },
    /// The check of [`Effect::Check`] finished: whether the problem is fixed.
    Checked { ok: bool, message: String },
    /// A person decided on the action awaiting approval.
    Decided(Decision),
    /// The time of [`Effect::WakeAt`] or [`Effect::AwaitDecision`] came.
    Timer,
}

/// A metric the engine counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Count {
    Veto {
        guard: GuardName,
    },
    Action {
        action: String,
        result: &'static str,
    },
    Verification {
        success: bool,
    },
    /// From the trigger reaching medic to the first action (ms).
    Reaction {
        ms: i64,
    },
    TrustChange {
        level: String,
    },
}

/// What the engine must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Write the execution as it stands to the journal.
    Journal,
    /// Tell the alert manager what is happening to the trigger's alert.
    Mark,
    /// Find out whether the trigger resolved; answer with [`Event::Resolved`].
    AskResolved,
    /// Run the collector of this name; answer with [`Event::Collected`].
    Collect(String),
    /// Run an action, a step of a sequence or a rollback; answer with [`Event::Ran`].
    Run {
        name: String,
        action: Action,
    },
    /// Run the verification check once; answer with [`Event::Checked`].
    Check,
    /// Answer with [`Event::Timer`] at this time.
    WakeAt(i64),
    /// Wait for a person's decision ([`Event::Decided`]) or the time ([`Event::Timer`]).
    AwaitDecision {
        until: i64,
    },
    /// Send a message to people.
    Notify(Box<Notification>),
    /// Store a verified outcome (for trust).
    Outcome(Outcome),
    /// Store a move on the trust ladder.
    TrustChanged(TrustChange),
    /// Store a pause (the circuit breaker opened).
    Pause(Pause),
    Count(Count),
    /// Start driving the admitted execution: answer with [`Event::Advance`].
    Start,
    /// Consider the trigger again at this time if its alert still fires (a cooldown held it
    /// back).
    RetryAt(i64),
    /// The admitted execution ended: free what it held.
    Finished,
    /// The execution ended without starting (vetoed, or it could not be expanded).
    NotStarted,
}

/// The engine state the machine reads and changes (under the engine's lock).
pub struct World<'a> {
    pub guards: &'a mut Guards,
    pub trust: &'a mut Trust,
    pub trust_config: TrustConfig,
    /// Approval timeout unless the playbook says (ms).
    pub approval_timeout: i64,
    /// medic's URL, for links in reports.
    pub external_url: &'a str,
}

/// Moves `e` by `event` at `now`; returns what the engine must do, in order.
pub fn step(
    world: &mut World,
    pb: &Playbook,
    e: &mut Execution,
    event: Event,
    now: i64,
) -> Vec<Effect> {
    // An ended execution has nothing left to do, whatever arrives late.
    if e.phase == crate::journal::Phase::Done {
        return Vec::new();
    }
    let mut m = Machine {
        world,
        pb,
        e,
        now,
        out: Vec::new(),
    };
    let phase = m.e.phase.clone();
    let go_on = m.on(event);
    if m.e.phase != phase {
        m.emit(Effect::Mark);
    }
    if go_on {
        m.advance();
    }
    m.out
}

/// One step in progress.
pub(crate) struct Machine<'w, 'a, 'p> {
    pub(crate) world: &'w mut World<'a>,
    pub(crate) pb: &'p Playbook,
    pub(crate) e: &'p mut Execution,
    pub(crate) now: i64,
    pub(crate) out: Vec<Effect>,
}

impl Machine<'_, '_, '_> {
    pub(crate) fn emit(&mut self, effect: Effect) {
        // Two journal writes (or marks) in a row would write the same thing.
        let same = matches!(
            (&effect, self.out.last()),
            (Effect::Journal, Some(Effect::Journal)) | (Effect::Mark, Some(Effect::Mark))
        );
        if same {
            return;
        }
        self.out.push(effect);
    }

    pub(crate) fn journal(&mut self) {
        self.emit(Effect::Journal);
    }

    pub(crate) fn note(&mut self, kind: StepKind, name: &str, state: StepState, msg: String) {
        self.e.note(kind, name, state, msg, self.now);
    }

    pub(crate) fn scope(&self) -> Scope {
        scope_of(self.e)
    }

    /// Handles the event; true when the execution should then advance on its own.
    fn on(&mut self, event: Event) -> bool {
        match event {
            Event::Advance | Event::Timer => true,
            Event::Resolved(r) => self.on_resolved(r),
            Event::Collected { ok, message, value } => self.on_collected(ok, message, value),
            Event::Ran {
                ok,
                message,
                detail,
            } => self.on_ran(ok, message, detail),
            Event::Checked { ok, message } => self.on_checked(ok, message),
            Event::Decided(d) => self.on_decided(d),
        }
    }

    /// Moves through the phases that need nothing from outside, until one waits or the
    /// execution is done.
    fn advance(&mut self) {
        use crate::journal::Phase;
        loop {
            let before = self.e.phase.clone();
            let waiting = match before.clone() {
                Phase::Collect => self.collect_next(),
                Phase::Diagnose => self.diagnose(),
                Phase::Choose => self.choose(),
                Phase::AwaitApproval { since, .. } => self.await_approval(since),
                Phase::Act { .. } => {
                    self.emit(Effect::AskResolved);
                    true
                }
                Phase::Verify { since, .. } => self.verify_next(since),
                Phase::Rollback { action } => self.roll_back_next(&action),
                Phase::Escalate { reason } => {
                    self.escalate(reason);
                    false
                }
                Phase::Done => {
                    self.world.guards.release(
                        &self.e.playbook,
                        &self.e.target,
                        &self.e.group,
                        &self.e.id,
                    );
                    self.emit(Effect::Mark);
                    self.emit(Effect::Finished);
                    return;
                }
            };
            if self.e.phase != before {
                self.emit(Effect::Mark);
            }
            if waiting {
                return;
            }
        }
    }

    /// A report of the execution as it stands, to people.
    pub(crate) fn announce(&mut self, event: NotifyEvent, receivers: &[String]) {
        if receivers.is_empty() {
            return;
        }
        let n = Notification {
            receivers: receivers.to_vec(),
            event,
            playbook: self.pb.name.clone(),
            target: self.e.target.clone(),
            execution: self.e.id.clone(),
            title: title(self.e, event),
            text: report(self.e, self.world.external_url),
            labels: self.e.trigger.labels.clone(),
        };
        self.emit(Effect::Notify(Box::new(n)));
    }

    /// The receivers of escalations.
    pub(crate) fn escalation_receivers(&self) -> Vec<String> {
        if self.pb.notify.escalate.is_empty() {
            self.pb.notify.receivers.clone()
        } else {
            self.pb.notify.escalate.clone()
        }
    }

    /// Index of the innermost step that started and has not ended.
    pub(crate) fn open_step(&self) -> Option<usize> {
        self.e
            .steps
            .iter()
            .rposition(|s| s.state == StepState::Started && s.ended_at.is_none())
    }
}

/// The templating scope of an admitted execution.
pub fn scope_of(e: &Execution) -> Scope {
    Scope {
        labels: e.trigger.labels.clone(),
        annotations: e.trigger.annotations.clone(),
        params: e.params.clone(),
        target: e.target.clone(),
        execution: e.id.clone(),
    }
}

/// `Succeeded` or `Failed`.
pub(crate) fn state_of(ok: bool) -> StepState {
    if ok {
        StepState::Succeeded
    } else {
        StepState::Failed
    }
}
