//! Triggers in: alerts, manual triggers and the executions a restart resumes. Each becomes an
//! execution the state machine admits or vetoes; the engine finds out what admission needs
//! (the group's size, whether the alert resolved) and performs the effects.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::info;

use super::{store_err, Engine};
use crate::hooks::AlertInput;
use crate::journal::{Execution, TriggerInfo};
use crate::kinds::{StepKind, TriggerKind};
use crate::machine::admit::{self, blast_limit, group_size, Admission, GroupSize};
use crate::machine::{self, Effect};
use crate::playbook::Playbook;
use crate::Error;

impl Engine {
    /// Takes alerts (new, re-sent or resolved) from the alert manager. Firing alerts that match
    /// a playbook, and have not started it before, are considered on their own tasks.
    pub fn on_alerts(self: &Arc<Self>, alerts: &[AlertInput]) {
        let now = self.now();
        let mut todo = Vec::new();
        let mut refusals = Vec::new();
        {
            let mut g = self.lock();
            if g.playbooks.is_empty() {
                return;
            }
            for a in alerts {
                if a.ends_at != 0 && a.ends_at <= now {
                    continue;
                }
                let labels = medic_model::Labels::from_pairs(
                    a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                let matching: Vec<Arc<Playbook>> = g
                    .playbooks
                    .values()
                    .filter(|p| p.matches_alert(&labels))
                    .cloned()
                    .collect();
                for pb in matching {
                    let key = (pb.name.clone(), a.fingerprint.clone());
                    if g.handled.get(&key).is_some_and(|(s, _)| *s == a.starts_at) {
                        continue;
                    }
                    if let Err(why) = pb.admits(&a.origin) {
                        // Not handled: the same alert from a sender that may start it will.
                        if g.refused.insert(key, a.starts_at) != Some(a.starts_at) {
                            refusals.push((pb.name.clone(), a.clone(), why));
                        }
                        if g.refused.len() > 100_000 {
                            g.refused.clear();
                        }
                        continue;
                    }
                    g.handled.insert(key, (a.starts_at, now));
                    todo.push((
                        pb,
                        TriggerInfo {
                            kind: TriggerKind::Alert,
                            fingerprint: Some(a.fingerprint.clone()),
                            labels: a.labels.clone(),
                            annotations: a.annotations.clone(),
                            starts_at: a.starts_at,
                            received_at: now,
                            by: None,
                        },
                    ));
                }
            }
        }
        for (playbook, a, why) in refusals {
            self.refused_alert(&playbook, &a, &why);
        }
        for (pb, t) in todo {
            let this = self.clone();
            self.runtime.spawn(async move {
                this.consider(pb, t, false).await;
            });
        }
    }

    /// Records that an alert's sender may not start a playbook: logged, counted, audited under
    /// the sender's name. The alert is routed and notified as usual.
    fn refused_alert(&self, playbook: &str, a: &AlertInput, why: &str) {
        info!(playbook, alert = %a.fingerprint, sender = a.origin.as_str(), why, "alert may not start the playbook");
        self.metrics
            .refused_triggers
            .get_or_create(&vec![("playbook", playbook.to_string())])
            .inc();
        self.hooks.audit(medic_model::AuditEntry {
            at: self.now(),
            actor: a.origin.as_str().to_string(),
            source: "alert".into(),
            action: "heal.trigger_refused".into(),
            target: format!("{playbook} {}", a.fingerprint),
            detail: serde_json::json!({ "labels": a.labels }).to_string(),
            result: format!("refused: {why}"),
        });
    }

    /// Starts a playbook by hand (the manual's "manual trigger"). Guards apply.
    pub async fn trigger(
        self: &Arc<Self>,
        playbook: &str,
        labels: BTreeMap<String, String>,
        by: &str,
    ) -> Result<Execution, Error> {
        let pb = self
            .playbook(playbook)
            .ok_or_else(|| Error::NotFound(format!("no playbook named {playbook:?}")))?;
        let now = self.now();
        let trigger = TriggerInfo {
            kind: TriggerKind::Manual,
            fingerprint: None,
            labels,
            annotations: BTreeMap::new(),
            starts_at: now,
            received_at: now,
            by: Some(by.to_string()),
        };
        Ok(self.consider(pb, trigger, false).await)
    }

    /// The retry of an alert a cooldown held back, boxed (it is spawned from
    /// [`Engine::consider`] itself).
    fn consider_deferred(
        self: Arc<Self>,
        pb: Arc<Playbook>,
        trigger: TriggerInfo,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Execution> + Send>> {
        Box::pin(async move { self.consider(pb, trigger, true).await })
    }

    /// Puts a candidate through the guards; starts it or records the veto. `deferred` when
    /// this is the retry of an alert a cooldown held back (its recurrence was counted the
    /// first time).
    pub(super) async fn consider(
        self: &Arc<Self>,
        pb: Arc<Playbook>,
        trigger: TriggerInfo,
        deferred: bool,
    ) -> Execution {
        let now = self.now();
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let dry_run = self.lock().opts.dry_run;
        let mut e = admit::new_execution(&pb, trigger, id, dry_run, now);
        let scope = match admit::expand(&pb, &mut e, now) {
            Ok(scope) => scope,
            Err(effects) => {
                self.perform_admission(&pb, &e, effects);
                return e;
            }
        };
        let blast_max = match group_size(&pb, &scope) {
            GroupSize::Known(max) => Ok(max),
            GroupSize::Invalid(err) => Err(err),
            GroupSize::Query { query, percent } => {
                let answer = self
                    .instant(&query, now)
                    .await
                    .map(|r| r.first().and_then(|s| s.samples.last()).map(|&(_, v)| v));
                blast_limit(&query, percent, answer)
            }
        };
        let resolved = e.trigger.kind == TriggerKind::Alert
            && self.hooks.alert_resolved(&e.trigger.labels) == Some(true);
        let facts = Admission {
            blast_max,
            resolved,
            deferred,
        };
        let effects = {
            let mut g = self.lock();
            let cfg = g.guard_config();
            let mut world = g.world();
            admit::admit(&mut world, &cfg, &pb, &mut e, &facts, now)
        };
        self.perform_admission(&pb, &e, effects);
        e
    }

    /// Performs what admission decided: journal, notices, the start or the cooldown retry.
    fn perform_admission(
        self: &Arc<Self>,
        pb: &Arc<Playbook>,
        e: &Execution,
        effects: Vec<Effect>,
    ) {
        for effect in effects {
            match effect {
                Effect::Start => {
                    let resumed = e.steps.last().is_some_and(|s| s.kind == StepKind::Resume);
                    let how = if resumed {
                        "resumed after a restart"
                    } else {
                        "admitted: every guard passed"
                    };
                    self.audit(e, "heal.started", "", how);
                    self.metrics.active.inc();
                    let (this, pb, run) = (self.clone(), pb.clone(), e.clone());
                    self.runtime.spawn(async move { this.drive(pb, run).await });
                }
                Effect::RetryAt(at) => {
                    let (this, pb, trigger) = (self.clone(), pb.clone(), e.trigger.clone());
                    self.runtime.spawn(async move {
                        this.sleep_until(at + 50).await;
                        if this.hooks.alert_resolved(&trigger.labels) == Some(false) {
                            this.consider_deferred(pb, trigger).await;
                        }
                    });
                }
                other => self.perform_local(e, other),
            }
        }
    }

    /// Continues executions that were in flight when medic stopped. An action that had started
    /// but not ended is not run again blindly: its outcome is unknown, so it is verified first.
    pub fn resume(self: &Arc<Self>) -> Result<usize, Error> {
        let now = self.now();
        let mut n = 0;
        for mut e in self.store.unfinished().map_err(store_err)? {
            let pb = self.playbook(&e.playbook);
            let effects = {
                let mut g = self.lock();
                let mut world = g.world();
                machine::resume(&mut world, pb.as_deref(), &mut e, now)
            };
            let Some(pb) = pb else {
                for effect in effects {
                    self.perform_local(&e, effect);
                }
                continue;
            };
            if effects.iter().any(|x| matches!(x, Effect::Start)) {
                n += 1;
            }
            self.perform_admission(&pb, &e, effects);
        }
        if n > 0 {
            info!(executions = n, "resumed executions in flight");
        }
        Ok(n)
    }
}
