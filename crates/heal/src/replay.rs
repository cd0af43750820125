//! The heal engine on a simulated clock, for `medic replay`: alerts from a replayed history
//! become executions through the same admission (`machine::admit`, the guards, the recurrence
//! check, cooldown retries) and the same state machine (`machine::step`), in dry run. Queries
//! (collectors, blast radius) are answered from the history at the simulated time; commands and
//! HTTP collectors are not run. Deterministic: time is an argument, nothing reads a clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use medic_model::InstantQuery;
use serde::Serialize;
use serde_json::json;

use crate::engine::perform::{logs_result, query_result};
use crate::engine::Options;
use crate::guard::{GuardConfig, Guards};
use crate::hooks::AlertInput;
use crate::journal::{Execution, TriggerInfo};
use crate::kinds::TriggerKind;
use crate::machine::admit::{self, blast_limit, group_size, Admission, GroupSize};
use crate::machine::{self, scope_of, Effect, Event, World};
use crate::playbook::{CollectKind, Playbook};
use crate::trust::Trust;

/// What replay decided for one trigger: admitted (and what the dry run planned), vetoed by a
/// guard, or ended otherwise.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    /// When (ms).
    pub at: i64,
    pub playbook: String,
    pub target: String,
    /// The trigger's labels.
    pub labels: BTreeMap<String, String>,
    /// The execution's final status (`dry_run`, `vetoed`, `resolved`, `failed`, …).
    pub status: String,
    /// The guard that vetoed it, if one did.
    pub guard: Option<String>,
    /// Why: the veto's reason, or the execution's summary (the plan of a dry run).
    pub reason: String,
    /// Whether this was the retry of an alert a cooldown had held back.
    pub deferred: bool,
}

/// Whether an alert (by labels) is resolved at the simulated time (`None`: unknown).
pub type ResolvedFn<'a> = &'a dyn Fn(&BTreeMap<String, String>) -> Option<bool>;

/// The engine's admission and dry runs on simulated time.
pub struct Replayer {
    playbooks: Vec<Arc<Playbook>>,
    opts: Options,
    guards: Guards,
    trust: Trust,
    query: Arc<dyn InstantQuery>,
    handled: HashMap<(String, String), i64>,
    retries: Vec<(i64, Arc<Playbook>, TriggerInfo)>,
    seq: u64,
    /// Every decision so far, in time order.
    pub decisions: Vec<Decision>,
}

impl Replayer {
    /// A replayer of `playbooks` under the engine options `opts` (dry run is forced), asking
    /// `query` about the history.
    pub fn new(
        playbooks: Vec<Playbook>,
        mut opts: Options,
        query: Arc<dyn InstantQuery>,
    ) -> Replayer {
        opts.dry_run = true;
        Replayer {
            playbooks: playbooks.into_iter().map(Arc::new).collect(),
            opts,
            guards: Guards::new(),
            trust: Trust::default(),
            query,
            handled: HashMap::new(),
            retries: Vec::new(),
            seq: 0,
            decisions: Vec::new(),
        }
    }

    /// Alerts the alert manager took in at `now`: firing ones that match a playbook and have
    /// not started it before are considered, as `Engine::on_alerts` does.
    pub fn on_alerts(&mut self, alerts: &[AlertInput], now: i64, resolved: ResolvedFn<'_>) {
        self.run_until(now, resolved);
        for a in alerts {
            if a.ends_at != 0 && a.ends_at <= now {
                continue;
            }
            let labels = medic_model::Labels::from_pairs(
                a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let matching: Vec<Arc<Playbook>> = self
                .playbooks
                .iter()
                .filter(|p| p.matches_alert(&labels) && p.admits(&a.origin).is_ok())
                .cloned()
                .collect();
            for pb in matching {
                let key = (pb.name.clone(), a.fingerprint.clone());
                if self.handled.get(&key) == Some(&a.starts_at) {
                    continue;
                }
                self.handled.insert(key, a.starts_at);
                let trigger = TriggerInfo {
                    kind: TriggerKind::Alert,
                    fingerprint: Some(a.fingerprint.clone()),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    received_at: now,
                    by: None,
                };
                self.consider(pb, trigger, false, now, resolved);
            }
        }
    }

    /// Runs the cooldown retries due by `now` (each at its own time).
    pub fn run_until(&mut self, now: i64, resolved: ResolvedFn<'_>) {
        loop {
            self.retries.sort_by_key(|r| r.0);
            let Some(i) = self.retries.iter().position(|r| r.0 <= now) else {
                return;
            };
            let (at, pb, trigger) = self.retries.remove(i);
            if resolved(&trigger.labels) == Some(false) {
                self.consider(pb, trigger, true, at, resolved);
            }
        }
    }

    fn consider(
        &mut self,
        pb: Arc<Playbook>,
        trigger: TriggerInfo,
        deferred: bool,
        now: i64,
        resolved: ResolvedFn<'_>,
    ) {
        self.seq += 1;
        let id = format!("replay-{:06}", self.seq);
        let mut e = admit::new_execution(&pb, trigger, id, true, now);
        let scope = match admit::expand(&pb, &mut e, now) {
            Ok(scope) => scope,
            Err(_) => return self.record(&e, deferred, now),
        };
        let blast_max = match group_size(&pb, &scope) {
            GroupSize::Known(max) => Ok(max),
            GroupSize::Invalid(err) => Err(err),
            GroupSize::Query { query, percent } => {
                let answer = self
                    .query
                    .instant(&query, now)
                    .map_err(|e| e.to_string())
                    .map(|r| r.first().and_then(|s| s.samples.last()).map(|&(_, v)| v));
                blast_limit(&query, percent, answer)
            }
        };
        let facts = Admission {
            blast_max,
            resolved: resolved(&e.trigger.labels) == Some(true),
            deferred,
        };
        let cfg = GuardConfig {
            disabled: !self.opts.enabled,
            rate_limit: self.opts.rate_limit,
            maintenance: self.opts.maintenance.clone(),
        };
        let effects = {
            let mut world = self.world();
            admit::admit(&mut world, &cfg, &pb, &mut e, &facts, now)
        };
        for effect in effects {
            match effect {
                Effect::Start => self.drive(&pb, &mut e, now, resolved),
                Effect::RetryAt(at) => self.retries.push((at + 50, pb.clone(), e.trigger.clone())),
                _ => {}
            }
        }
        self.record(&e, deferred, now);
    }

    fn world(&mut self) -> World<'_> {
        World {
            guards: &mut self.guards,
            trust: &mut self.trust,
            trust_config: self.opts.trust,
            approval_timeout: self.opts.approval_timeout,
            external_url: &self.opts.external_url,
        }
    }

    /// Drives an admitted dry run to its end, answering its effects from the history.
    fn drive(&mut self, pb: &Playbook, e: &mut Execution, now: i64, resolved: ResolvedFn<'_>) {
        let mut event = Event::Advance;
        // A dry run ends before acting; the bound only guards against a loop.
        for _ in 0..1000 {
            let effects = {
                let mut world = self.world();
                machine::step(&mut world, pb, e, event, now)
            };
            let mut next = None;
            for effect in effects {
                next = match effect {
                    Effect::Collect(name) => Some(self.collect(pb, e, &name, now)),
                    Effect::AskResolved => Some(Event::Resolved(resolved(&e.trigger.labels))),
                    Effect::Run { .. } => Some(Event::Ran {
                        ok: true,
                        message: "not run in replay".into(),
                        detail: json!(null),
                    }),
                    Effect::Check => Some(Event::Checked {
                        ok: true,
                        message: "not checked in replay".into(),
                    }),
                    Effect::WakeAt(_) | Effect::AwaitDecision { .. } => Some(Event::Timer),
                    // The machine released the execution's guard slots itself.
                    Effect::Finished => return,
                    _ => next,
                };
            }
            match next {
                Some(ev) => event = ev,
                None => return,
            }
        }
    }

    fn collect(&self, pb: &Playbook, e: &Execution, name: &str, now: i64) -> Event {
        let Some(c) = pb.collect.iter().find(|c| c.name == name) else {
            let message = format!("no collector named {name}");
            return Event::Collected {
                ok: false,
                value: json!({"error": message}),
                message,
            };
        };
        let scope = scope_of(e);
        let err = |m: String| (false, m.clone(), json!({"error": m}));
        let (ok, message, value) = match &c.kind {
            CollectKind::Query(t) => match t.expand(&scope) {
                Ok(q) => query_result(
                    &q,
                    self.query.instant(&q, now).map_err(|e| e.to_string()),
                    false,
                ),
                Err(m) => err(m),
            },
            CollectKind::Range { query, range, step } => match query.expand(&scope) {
                Ok(q) => query_result(
                    &q,
                    self.query
                        .range(&q, now - range, now, *step)
                        .map_err(|e| e.to_string()),
                    true,
                ),
                Err(m) => err(m),
            },
            CollectKind::Logs {
                query,
                range,
                limit,
            } => match query.expand(&scope) {
                Ok(q) => logs_result(
                    &q,
                    self.query
                        .logs(&q, now - range, now, *limit)
                        .map_err(|e| e.to_string()),
                    *limit,
                ),
                Err(m) => err(m),
            },
            CollectKind::Exec(_) | CollectKind::Http(_) => {
                err("commands and HTTP collectors are not run in replay".into())
            }
        };
        Event::Collected { ok, message, value }
    }

    fn record(&mut self, e: &Execution, deferred: bool, now: i64) {
        self.decisions.push(Decision {
            at: now,
            playbook: e.playbook.clone(),
            target: e.target.clone(),
            labels: e.trigger.labels.clone(),
            status: e.status.as_str().to_string(),
            guard: e.veto.as_ref().map(|v| v.guard.as_str().to_string()),
            reason: e
                .veto
                .as_ref()
                .map(|v| v.reason.clone())
                .unwrap_or_else(|| e.summary.clone()),
            deferred,
        });
    }
}
