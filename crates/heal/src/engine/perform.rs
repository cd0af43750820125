//! The effects performed: an admitted execution is driven by feeding the state machine's
//! events and doing what it returns. Collectors, actions and checks run here; every wait reads
//! the injected clock.

use std::sync::Arc;
use std::time::Duration;

use medic_model::QuerySeries;
use serde_json::{json, Value as Json};
use tracing::{info, warn};

use super::Engine;
use crate::action;
use crate::evidence::{labels_map, query_evidence};
use crate::hooks::Notification;
use crate::journal::Execution;
use crate::kinds::{NotifyEvent, TriggerKind};
use crate::machine::{self, scope_of, Count, Effect, Event};
use crate::metrics::*;
use crate::playbook::*;

/// The longest single sleep while waiting for the clock to reach a time: a clock that jumps
/// (a test's, or a corrected wall clock) is noticed within this.
const POLL_MS: i64 = 250;

impl Engine {
    /// Drives an admitted execution to its end.
    pub(super) async fn drive(self: Arc<Self>, pb: Arc<Playbook>, mut e: Execution) {
        let mut event = Event::Advance;
        loop {
            let effects = {
                let mut g = self.lock();
                let now = self.now();
                let mut world = g.world();
                machine::step(&mut world, &pb, &mut e, event, now)
            };
            match self.perform(&pb, &mut e, effects).await {
                Some(next) => event = next,
                None => break,
            }
        }
    }

    /// Performs one step's effects; the event that answers the one that asks something, or
    /// `None` when the execution ended.
    async fn perform(
        &self,
        pb: &Playbook,
        e: &mut Execution,
        effects: Vec<Effect>,
    ) -> Option<Event> {
        let mut answer = None;
        for effect in effects {
            answer = match effect {
                Effect::AskResolved => Some(Event::Resolved(self.trigger_resolved(pb, e).await)),
                Effect::Collect(name) => Some(self.collect(pb, e, &name).await),
                Effect::Run { name, action } => {
                    let (ok, message, detail) = self.run_action(e, &action).await;
                    let result = if ok { "ok" } else { "failed" };
                    self.audit(e, "heal.action", &name, &format!("{result}: {message}"));
                    Some(Event::Ran {
                        ok,
                        message,
                        detail,
                    })
                }
                Effect::Check => {
                    let (ok, message) = self.check(pb, e).await;
                    Some(Event::Checked { ok, message })
                }
                Effect::WakeAt(at) => {
                    self.sleep_until(at).await;
                    Some(Event::Timer)
                }
                Effect::AwaitDecision { until } => Some(self.await_decision(e, until).await),
                Effect::Finished => {
                    self.finished(e);
                    return None;
                }
                other => {
                    self.perform_local(e, other);
                    continue;
                }
            };
        }
        if answer.is_none() {
            warn!(execution = %e.id, "the state machine stopped without asking anything");
        }
        answer
    }

    /// Performs an effect that needs no answer.
    pub(super) fn perform_local(&self, e: &Execution, effect: Effect) {
        match effect {
            Effect::Journal => self.save(e),
            Effect::Mark => self.mark(e),
            Effect::Notify(n) => self.send(*n),
            Effect::Outcome(o) => {
                if let Err(err) = self.store.put_outcome(&o) {
                    warn!(error = %err, "cannot record an outcome");
                }
            }
            Effect::TrustChanged(c) => {
                if let Err(err) = self.store.put_trust_change(&c) {
                    warn!(error = %err, "cannot record a trust change");
                }
                info!(playbook = %c.playbook, cause = %c.cause, action = %c.action, from = %c.from, to = %c.to, "trust changed");
            }
            Effect::Pause(p) => {
                if let Err(err) = self.store.put_pause(&p) {
                    warn!(error = %err, "cannot save pause");
                }
            }
            Effect::Count(c) => self.count(&e.playbook, c),
            Effect::NotStarted => {
                self.audit(e, "heal.not_started", "", &e.summary);
                self.ended(e);
            }
            Effect::Finished => self.finished(e),
            other => warn!(execution = %e.id, effect = ?other, "effect out of place"),
        }
    }

    fn count(&self, playbook: &str, c: Count) {
        let m = &self.metrics;
        let playbook = playbook.to_string();
        match c {
            Count::Veto { guard } => {
                let guard = guard.as_str().into();
                m.vetoes
                    .get_or_create(&GuardLabels { playbook, guard })
                    .inc();
            }
            Count::Action { action, result } => {
                let result = result.into();
                m.actions
                    .get_or_create(&ActionLabels {
                        playbook,
                        action,
                        result,
                    })
                    .inc();
            }
            Count::Verification { success } => {
                let result = if success { "success" } else { "failure" }.into();
                m.verifications
                    .get_or_create(&ResultLabels { playbook, result })
                    .inc();
            }
            Count::Reaction { ms } => m.reaction.observe(ms as f64 / 1000.0),
            Count::TrustChange { level } => {
                m.trust_changes.get_or_create(&LevelLabel { level }).inc();
            }
        }
    }

    /// Records a heal decision or action in the audit log: medic (`heal`) acting on the
    /// execution's playbook and target.
    pub(super) fn audit(&self, e: &Execution, action: &str, what: &str, result: &str) {
        let detail = serde_json::json!({
            "execution": e.id,
            "trigger": e.trigger.kind,
            "step": what,
        });
        self.hooks.audit(medic_model::AuditEntry {
            at: self.now(),
            actor: medic_model::ACTOR_HEAL.into(),
            source: "medic".into(),
            action: action.into(),
            target: format!("{} {}", e.playbook, e.target),
            detail: detail.to_string(),
            result: result.into(),
        });
    }

    /// The execution ended: its waiters go, the gauges and counters move, the alert's note is
    /// cleared.
    fn finished(&self, e: &Execution) {
        self.audit(
            e,
            "heal.finished",
            "",
            &format!("{}: {}", e.status.as_str(), e.summary),
        );
        {
            let mut g = self.lock();
            g.waiters.remove(&e.id);
            g.decisions.remove(&e.id);
        }
        self.metrics.active.dec();
        self.mark(e);
        self.ended(e);
        info!(execution = %e.id, playbook = %e.playbook, target = %e.target, status = e.status.as_str(), "execution ended");
    }

    pub(super) fn save(&self, e: &Execution) {
        if let Err(err) = self.store.put_execution(e) {
            self.metrics.journal_errors.inc();
            warn!(execution = %e.id, error = %err, "cannot write the execution journal");
        }
        self.hooks.journaled(e);
    }

    /// Tells the alert manager what is happening to the trigger's alert.
    fn mark(&self, e: &Execution) {
        if e.trigger.kind == TriggerKind::Condition {
            return;
        }
        let note = if e.status.is_final() {
            None
        } else {
            Some(format!(
                "medic is repairing: {}, step {} (execution {})",
                e.playbook,
                e.current_step(),
                e.id
            ))
        };
        self.hooks.repairing(&e.trigger.labels, note);
    }

    fn ended(&self, e: &Execution) {
        self.metrics
            .executions
            .get_or_create(&StatusLabels {
                playbook: e.playbook.clone(),
                status: e.status.as_str().into(),
            })
            .inc();
    }

    fn send(&self, n: Notification) {
        if n.receivers.is_empty() {
            return;
        }
        let fut = self.hooks.notify(n);
        self.runtime.spawn(async move {
            if let Err(err) = fut.await {
                warn!(error = %err, "cannot send a heal notification");
            }
        });
    }

    /// Waits until the clock reads `at`.
    pub(super) async fn sleep_until(&self, at: i64) {
        loop {
            let left = at - self.now();
            if left <= 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(left.min(POLL_MS) as u64)).await;
        }
    }

    /// Waits for a person's decision on `e`, or until `until`.
    async fn await_decision(&self, e: &Execution, until: i64) -> Event {
        let notify = self.lock().waiters.entry(e.id.clone()).or_default().clone();
        loop {
            if let Some(d) = self.lock().decisions.remove(&e.id) {
                return Event::Decided(d);
            }
            let now = self.now();
            if now >= until {
                return Event::Timer;
            }
            let wait = Duration::from_millis((until - now).clamp(1, 1_000) as u64);
            let _ = tokio::time::timeout(wait, notify.notified()).await;
        }
    }

    pub(super) async fn instant(&self, q: &str, t: i64) -> Result<Vec<QuerySeries>, String> {
        let query = self.query.clone();
        let q = q.to_string();
        tokio::task::spawn_blocking(move || query.instant(&q, t))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    async fn logs(
        &self,
        q: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<medic_model::LogLine>, String> {
        let query = self.query.clone();
        let q = q.to_string();
        tokio::task::spawn_blocking(move || query.logs(&q, start, end, limit))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    async fn range(
        &self,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<QuerySeries>, String> {
        let query = self.query.clone();
        let q = q.to_string();
        tokio::task::spawn_blocking(move || query.range(&q, start, end, step))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Whether the trigger has resolved (`None`: cannot tell).
    async fn trigger_resolved(&self, pb: &Playbook, e: &Execution) -> Option<bool> {
        if e.trigger.kind == TriggerKind::Condition {
            let Trigger::Condition { query, .. } = &pb.trigger else {
                return None;
            };
            let r = self.instant(query, self.now()).await.ok()?;
            return Some(!r.iter().any(|s| labels_map(&s.labels) == e.trigger.labels));
        }
        self.hooks.alert_resolved(&e.trigger.labels)
    }

    fn exec_env<'a>(&self, e: &'a Execution) -> [(&'static str, &'a str); 3] {
        [
            ("MEDIC_EXECUTION", e.id.as_str()),
            ("MEDIC_PLAYBOOK", e.playbook.as_str()),
            ("MEDIC_TARGET", e.target.as_str()),
        ]
    }

    /// Runs the collector `name`.
    async fn collect(&self, pb: &Playbook, e: &Execution, name: &str) -> Event {
        let Some(c) = pb.collect.iter().find(|c| c.name == name) else {
            let message = format!("no collector named {name}");
            return Event::Collected {
                ok: false,
                value: json!({"error": message}),
                message,
            };
        };
        let scope = scope_of(e);
        let now = self.now();
        let (ok, message, value) = match &c.kind {
            CollectKind::Query(t) => match t.expand(&scope) {
                Ok(q) => query_result(&q, self.instant(&q, now).await, false),
                Err(err) => (false, err.clone(), json!({"error": err})),
            },
            CollectKind::Range { query, range, step } => match query.expand(&scope) {
                Ok(q) => query_result(&q, self.range(&q, now - range, now, *step).await, true),
                Err(err) => (false, err.clone(), json!({"error": err})),
            },
            CollectKind::Exec(spec) => match action::command(spec, &scope) {
                Ok(cmd) => {
                    let r = action::run_command(&cmd, &self.exec_env(e)).await;
                    (
                        r.error.is_none() && !r.timed_out,
                        r.summary(),
                        action::exec_evidence(&r),
                    )
                }
                Err(err) => (false, err.clone(), json!({"error": err, "ok": false})),
            },
            CollectKind::Http(spec) => match action::request(spec, &scope) {
                Ok(req) => {
                    let r = action::run_request(&self.http, &req).await;
                    (r.error.is_none(), r.summary(), action::http_evidence(&r))
                }
                Err(err) => (false, err.clone(), json!({"error": err, "ok": false})),
            },
            CollectKind::Logs {
                query,
                range,
                limit,
            } => match query.expand(&scope) {
                Ok(q) => logs_result(&q, self.logs(&q, now - range, now, *limit).await, *limit),
                Err(err) => (false, err.clone(), json!({"error": err})),
            },
        };
        Event::Collected { ok, message, value }
    }

    /// Runs an action, a step or a rollback; `(ok, message, detail)`.
    async fn run_action(&self, e: &Execution, a: &Action) -> (bool, String, Json) {
        if let Err(why) = self.hooks.fence().await {
            return (false, format!("not run: {why}"), Json::Null);
        }
        let scope = scope_of(e);
        match &a.kind {
            ActionKind::Exec(spec) => match action::command(spec, &scope) {
                Ok(cmd) => {
                    let r = action::run_command(&cmd, &self.exec_env(e)).await;
                    (r.ok, r.summary(), json!({"command": cmd, "result": r}))
                }
                Err(err) => (false, err, Json::Null),
            },
            ActionKind::Http(spec) => match action::request(spec, &scope) {
                Ok(req) => {
                    let r = action::run_request(&self.http, &req).await;
                    (r.ok, r.summary(), json!({"request": req, "result": r}))
                }
                Err(err) => (false, err, Json::Null),
            },
            ActionKind::Wait(ms) => {
                self.sleep_until(self.now() + ms).await;
                (true, format!("waited {}", Dur(*ms)), Json::Null)
            }
            ActionKind::Steps(_) => (
                false,
                "a sequence of steps runs as a whole action, not as a step".into(),
                Json::Null,
            ),
            ActionKind::Notify { receivers, message } => match message.expand(&scope) {
                Ok(text) => {
                    let n = Notification {
                        receivers: receivers.clone(),
                        event: NotifyEvent::Action,
                        playbook: e.playbook.clone(),
                        target: e.target.clone(),
                        execution: e.id.clone(),
                        title: format!("medic: {} for {}", e.playbook, e.target),
                        text,
                        labels: e.trigger.labels.clone(),
                    };
                    match self.hooks.notify(n).await {
                        Ok(()) => (
                            true,
                            format!("sent to {}", receivers.join(", ")),
                            Json::Null,
                        ),
                        Err(err) => (false, err.to_string(), Json::Null),
                    }
                }
                Err(err) => (false, err, Json::Null),
            },
        }
    }

    /// One verification check: `(fixed, what was seen)`.
    async fn check(&self, pb: &Playbook, e: &Execution) -> (bool, String) {
        if let Err(why) = self.hooks.fence().await {
            return (false, format!("not checked: {why}"));
        }
        let scope = scope_of(e);
        match &pb.verify.check {
            VerifyCheck::Query(t) => match t.expand(&scope) {
                Ok(q) => match self.instant(&q, self.now()).await {
                    Ok(r) if !r.is_empty() => (true, format!("{q} holds")),
                    Ok(_) => (false, format!("{q} returned nothing")),
                    Err(err) => (false, format!("{q}: {err}")),
                },
                Err(err) => (false, err),
            },
            VerifyCheck::AlertResolved => match self.trigger_resolved(pb, e).await {
                Some(true) => (true, "the trigger resolved".into()),
                Some(false) => (false, "the trigger is still firing".into()),
                None => (false, "the trigger's state is unknown".into()),
            },
            VerifyCheck::Exec(spec) => match action::command(spec, &scope) {
                Ok(cmd) => {
                    let r = action::run_command(&cmd, &self.exec_env(e)).await;
                    (r.ok, format!("{}: {}", cmd.argv.join(" "), r.summary()))
                }
                Err(err) => (false, err),
            },
            VerifyCheck::Http(spec) => match action::request(spec, &scope) {
                Ok(req) => {
                    let r = action::run_request(&self.http, &req).await;
                    (r.ok, format!("{} {}: {}", req.method, req.url, r.summary()))
                }
                Err(err) => (false, err),
            },
        }
    }
}

/// A collector's query result as `(ok, message, evidence)`.
/// Evidence of a `logs:` collector: `count`, `lines` (newest first: `ts` in RFC 3339,
/// `labels`, `line`), and `truncated` when the limit cut the answer short.
pub(crate) fn logs_result(
    q: &str,
    r: Result<Vec<medic_model::LogLine>, String>,
    limit: usize,
) -> (bool, String, Json) {
    match r {
        Ok(lines) => {
            let items: Vec<Json> = lines
                .iter()
                .map(|l| {
                    json!({
                        "ts": medic_model::format_rfc3339_millis(l.ts_ns.div_euclid(1_000_000)),
                        "labels": l.labels,
                        "line": l.line,
                    })
                })
                .collect();
            (
                true,
                format!("{q}: {} lines", lines.len()),
                json!({"query": q, "count": lines.len(), "truncated": lines.len() >= limit, "lines": items}),
            )
        }
        Err(err) => (
            false,
            format!("{q}: {err}"),
            json!({"query": q, "error": err, "count": 0, "lines": []}),
        ),
    }
}

pub(crate) fn query_result(
    q: &str,
    r: Result<Vec<QuerySeries>, String>,
    range: bool,
) -> (bool, String, Json) {
    match r {
        Ok(r) => (
            true,
            format!("{q}: {} series", r.len()),
            query_evidence(&r, range),
        ),
        Err(err) => (
            false,
            format!("{q}: {err}"),
            json!({"error": err, "empty": true, "value": null, "series": []}),
        ),
    }
}
