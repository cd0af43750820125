//! Admission: a trigger becomes an execution, which the guards admit or veto. Pure functions;
//! the engine supplies what it had to find out (the group's size, whether the alert
//! resolved) and holds its lock around [`admit`].

use std::collections::BTreeMap;

use super::{Count, Effect, Machine, World};
use crate::guard::{self, Candidate, GuardConfig};
use crate::journal::{Execution, Phase, Status, StepState, TriggerInfo, Veto};
use crate::kinds::{GuardName, NotifyEvent, StepKind, TriggerKind};
use crate::playbook::{BlastRadius, Dur, NotifyOn, Playbook, Scope, ScopeError};

/// A new execution of `pb` for `trigger`, before the guards.
pub fn new_execution(
    pb: &Playbook,
    trigger: TriggerInfo,
    id: String,
    dry_run: bool,
    now: i64,
) -> Execution {
    Execution {
        id,
        playbook: pb.name.clone(),
        target: String::new(),
        group: String::new(),
        trigger,
        params: BTreeMap::new(),
        status: Status::Running,
        phase: Phase::Collect,
        dry_run: dry_run || pb.dry_run,
        created_at: now,
        updated_at: now,
        finished_at: None,
        veto: None,
        evidence: BTreeMap::new(),
        diagnosis: None,
        candidates: Vec::new(),
        attempt: 0,
        actions_run: Vec::new(),
        decision: None,
        action_started_at: None,
        summary: String::new(),
        steps: Vec::new(),
    }
}

/// Expands the playbook for the execution's trigger: target, parameters, group. `Err` holds
/// the effects of an execution that ended there (a parameter refused, a template failed).
pub fn expand(pb: &Playbook, e: &mut Execution, now: i64) -> Result<Scope, Vec<Effect>> {
    let t = &e.trigger;
    match pb.scope(&t.labels, &t.annotations, &e.id) {
        Ok(scope) => {
            e.target = scope.target.clone();
            e.params = scope.params.clone();
            e.group = pb.group_of(&scope).unwrap_or_else(|_| pb.name.clone());
            Ok(scope)
        }
        Err(ScopeError::Refused(reason)) => {
            // The trigger names something the playbook does not allow: a veto, recorded and
            // counted like the guards' (nothing ran).
            e.target = "?".into();
            let v = Veto {
                guard: GuardName::Params,
                reason,
            };
            Err(vetoed(e, v, now))
        }
        Err(ScopeError::Template(err)) => {
            e.target = "?".into();
            e.note(
                StepKind::Guard,
                GuardName::Template.as_str(),
                StepState::Failed,
                err.clone(),
                now,
            );
            e.finish(
                Status::Failed,
                format!("cannot expand the playbook: {err}"),
                now,
            );
            Err(vec![Effect::Journal, Effect::NotStarted])
        }
    }
}

fn vetoed(e: &mut Execution, v: Veto, now: i64) -> Vec<Effect> {
    e.note(
        StepKind::Guard,
        v.guard.as_str(),
        StepState::Failed,
        v.reason.clone(),
        now,
    );
    e.finish(
        Status::Vetoed,
        format!("vetoed by {}: {}", v.guard, v.reason),
        now,
    );
    let count = Effect::Count(Count::Veto { guard: v.guard });
    e.veto = Some(v);
    vec![count, Effect::Journal, Effect::NotStarted]
}

/// How the blast radius needs the group's size.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupSize {
    /// Known without asking: the limit (none without a blast radius).
    Known(Option<usize>),
    /// Ask this query; its first value is the size.
    Query { query: String, percent: f64 },
    /// The query cannot be expanded.
    Invalid(String),
}

/// What the blast radius of `pb` needs for `scope`.
pub fn group_size(pb: &Playbook, scope: &Scope) -> GroupSize {
    match &pb.guards.blast_radius {
        None => GroupSize::Known(None),
        Some(BlastRadius::Count(n)) => GroupSize::Known(Some(*n)),
        Some(BlastRadius::Percent {
            percent,
            group_size,
        }) => match group_size.expand(scope) {
            Ok(query) => GroupSize::Query {
                query,
                percent: *percent,
            },
            Err(err) => GroupSize::Invalid(format!("group_size: {err}")),
        },
    }
}

/// The limit from the group-size query's answer (its first value, or the error).
pub fn blast_limit(
    query: &str,
    percent: f64,
    answer: Result<Option<f64>, String>,
) -> Result<Option<usize>, String> {
    match answer {
        Ok(Some(v)) if v.is_finite() => Ok(Some(guard::percent_limit(percent, v))),
        Ok(_) => Err(format!("group_size query {query:?} returned no value")),
        Err(err) => Err(format!("group_size query {query:?}: {err}")),
    }
}

/// What the engine found out before admission.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The most targets of the group under repair at once, or why it is unknown.
    pub blast_max: Result<Option<usize>, String>,
    /// The trigger's alert has resolved.
    pub resolved: bool,
    /// This is the retry of an alert a cooldown held back (its recurrence was counted).
    pub deferred: bool,
}

/// Puts an expanded execution through the recurrence check and the guards: admitted, it is
/// started ([`Effect::Start`]); vetoed, it ends.
pub fn admit(
    world: &mut World,
    cfg: &GuardConfig,
    pb: &Playbook,
    e: &mut Execution,
    facts: &Admission,
    now: i64,
) -> Vec<Effect> {
    let mut m = Machine {
        world,
        pb,
        e,
        now,
        out: Vec::new(),
    };
    m.recurrence(facts);
    let verdict = match &facts.blast_max {
        // Fail safe: without the group's size, do not act.
        Err(err) => Err(Veto {
            guard: GuardName::BlastRadius,
            reason: format!("cannot tell the group's size: {err}"),
        }),
        Ok(max) => m.world.guards.check(
            cfg,
            &Candidate {
                playbook: &pb.name,
                playbook_enabled: pb.enabled,
                target: &m.e.target,
                group: &m.e.group,
                labels: &m.e.trigger.labels,
                cooldown: pb.guards.cooldown,
                rate_limit: pb.guards.rate_limit,
                blast_max: *max,
                trigger_resolved: facts.resolved,
                now,
            },
        ),
    };
    match verdict {
        Err(v) => m.vetoed(v),
        Ok(()) => m.admitted(),
    }
    m.out
}

impl Machine<'_, '_, '_> {
    /// A fault that comes back soon after a verified repair means the fix did not hold: it
    /// counts against the circuit breaker like a failed verification.
    fn recurrence(&mut self, facts: &Admission) {
        let pb = self.pb;
        let Some(b) = pb.guards.circuit_breaker else {
            return;
        };
        let fixed = b.recurrence.and_then(|w| {
            self.world
                .guards
                .fixed_within(&pb.name, &self.e.target, w.0, self.now)
        });
        let Some(at) = fixed else {
            return;
        };
        if facts.deferred || facts.resolved {
            return;
        }
        let msg = format!(
            "{} repaired {} {} ago and the fault is back: counted as a failed repair",
            pb.name,
            self.e.target,
            Dur(self.now - at)
        );
        self.note(
            StepKind::Guard,
            GuardName::Recurrence.as_str(),
            StepState::Failed,
            msg,
        );
        if self
            .world
            .guards
            .record_failure(&pb.name, Some(b), self.now)
        {
            self.open_breaker("repairs that did not hold");
        }
    }

    fn vetoed(&mut self, v: Veto) {
        let pb = self.pb;
        let retry_at = (v.guard == GuardName::Cooldown
            && self.e.trigger.kind == TriggerKind::Alert)
            .then(|| {
                self.world.guards.cooldown_ends(
                    &pb.name,
                    &self.e.target,
                    pb.guards.cooldown,
                    self.now,
                )
            })
            .flatten();
        let effects = vetoed(self.e, v, self.now);
        self.out.extend(effects);
        if pb.notify.on.contains(&NotifyOn::Vetoed) {
            self.announce(NotifyEvent::Vetoed, &pb.notify.receivers);
        }
        // A cooldown delays a repair, it does not cancel it: if the alert still fires when
        // the cooldown ends, the playbook is considered again.
        if let Some(at) = retry_at {
            self.emit(Effect::RetryAt(at));
        }
    }

    fn admitted(&mut self) {
        let pb = self.pb;
        let e = &mut *self.e;
        self.world
            .guards
            .admit(&pb.name, &e.target, &e.group, &e.id, self.now);
        self.note(
            StepKind::Guard,
            GuardName::All.as_str(),
            StepState::Succeeded,
            "every guard passed".into(),
        );
        self.journal();
        if pb.notify.on.contains(&NotifyOn::Started) {
            self.announce(NotifyEvent::Started, &pb.notify.receivers);
        }
        self.emit(Effect::Mark);
        self.emit(Effect::Start);
    }
}
