//! The heal engine: matches alerts and conditions to playbooks, puts each candidate execution
//! through the guards, and drives admitted executions through collect → diagnose → choose →
//! (approve) → act → verify → rollback / next / escalate, writing the journal before and after
//! every step so a restart resumes each one where it stood.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medic_model::{Clock, InstantQuery, QuerySeries};
use serde::Serialize;
use serde_json::{json, Value as Json};
use tracing::{info, warn};

use crate::action;
use crate::guard::{self, Candidate, GuardConfig, Guards, MaintenanceWindow};
use crate::journal::*;
use crate::metrics::*;
use crate::playbook::*;
use crate::trust::{Level, Trust, TrustConfig};
use crate::Error;

/// Engine settings (`heal:` in medic.yml).
#[derive(Debug, Clone)]
pub struct Options {
    pub enabled: bool,
    /// Engine-wide dry run: everything decided and recorded, nothing done.
    pub dry_run: bool,
    pub rate_limit: Option<RateLimit>,
    pub maintenance: Vec<MaintenanceWindow>,
    pub trust: TrustConfig,
    /// How often condition triggers are evaluated (ms).
    pub condition_interval: i64,
    /// How long an approval is awaited before escalating (ms), unless the playbook says.
    pub approval_timeout: i64,
    /// How long finished executions are kept (ms).
    pub retention: i64,
    /// medic's URL, for links in notifications.
    pub external_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            enabled: true,
            dry_run: false,
            rate_limit: None,
            maintenance: Vec::new(),
            trust: TrustConfig::default(),
            condition_interval: 15_000,
            approval_timeout: 30 * 60_000,
            retention: 30 * 24 * 3_600_000,
            external_url: String::new(),
        }
    }
}

/// An alert as the engine sees it (from any source the alert manager accepts).
#[derive(Debug, Clone)]
pub struct AlertInput {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: i64,
    /// 0 while firing with no end known.
    pub ends_at: i64,
}

/// A message for people about an execution.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub receivers: Vec<String>,
    /// `started`, `success`, `failure`, `approval`, `vetoed`, `dry_run`, `action`,
    /// `circuit_breaker`, `trust`.
    pub event: String,
    pub playbook: String,
    pub target: String,
    pub execution: String,
    pub title: String,
    pub text: String,
    /// The trigger's labels.
    pub labels: BTreeMap<String, String>,
}

/// A boxed future, for the object-safe hooks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the engine needs from the rest of medic (the alert manager, in `medic run`).
pub trait Hooks: Send + Sync {
    /// Whether the alert with these labels has resolved; `None` when it is unknown.
    fn alert_resolved(&self, labels: &BTreeMap<String, String>) -> Option<bool>;
    /// Marks the alert with these labels as under repair (a note), or not (`None`).
    fn repairing(&self, labels: &BTreeMap<String, String>, note: Option<String>);
    /// Sends a message to receivers.
    fn notify(&self, n: Notification) -> BoxFuture<Result<(), String>>;
}

/// Hooks that know no alerts and send nothing (tests, offline tools).
pub struct NoHooks;

impl Hooks for NoHooks {
    fn alert_resolved(&self, _: &BTreeMap<String, String>) -> Option<bool> {
        None
    }
    fn repairing(&self, _: &BTreeMap<String, String>, _: Option<String>) {}
    fn notify(&self, _: Notification) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

struct CondState {
    since: i64,
    labels: BTreeMap<String, String>,
    triggered: bool,
}

struct Inner {
    playbooks: BTreeMap<String, Arc<Playbook>>,
    opts: Options,
    guards: Guards,
    trust: Trust,
    /// (playbook, alert fingerprint) → (alert start, when handled): an alert instance starts a
    /// playbook at most once, however often it is re-sent.
    handled: HashMap<(String, String), (i64, i64)>,
    conditions: HashMap<(String, String), CondState>,
    /// Executions waiting for a decision.
    waiters: HashMap<String, Arc<tokio::sync::Notify>>,
    decisions: HashMap<String, Decision>,
}

/// The running engine.
pub struct Engine {
    inner: Mutex<Inner>,
    store: Arc<dyn HealStore>,
    query: Arc<dyn InstantQuery>,
    hooks: Arc<dyn Hooks>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    pub metrics: Arc<HealMetrics>,
}

/// A playbook, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybookView {
    pub name: String,
    pub description: String,
    pub file: String,
    pub enabled: bool,
    pub dry_run: bool,
    pub trigger: String,
    pub paused: Option<Pause>,
    pub actions: Vec<String>,
    pub causes: Vec<String>,
}

fn store_err(e: StoreError) -> Error {
    Error::State(e.0)
}

impl Engine {
    /// Starts from the store: pauses, trust and recent executions (for cooldowns and rate
    /// limits) are loaded. Call [`Engine::resume`] to continue unfinished executions. Must be
    /// called within a tokio runtime.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        playbooks: Vec<Playbook>,
        opts: Options,
        store: Arc<dyn HealStore>,
        query: Arc<dyn InstantQuery>,
        hooks: Arc<dyn Hooks>,
        clock: Arc<dyn Clock>,
        metrics: Arc<HealMetrics>,
    ) -> Result<Arc<Engine>, Error> {
        let now = clock.now_ms();
        let mut guards = Guards::new();
        for p in store.pauses().map_err(store_err)? {
            guards.set_pause(p);
        }
        let trust = Trust::from_history(
            &opts.trust,
            &store.outcomes().map_err(store_err)?,
            &store.trust_changes().map_err(store_err)?,
        );
        let horizon = now - 24 * 3_600_000;
        let mut recent = store
            .executions(&ExecutionQuery {
                since: Some(horizon),
                ..Default::default()
            })
            .map_err(store_err)?;
        recent.sort_by_key(|e| e.created_at);
        let mut handled = HashMap::new();
        for e in &recent {
            if let Some(fp) = &e.trigger.fingerprint {
                handled.insert(
                    (e.playbook.clone(), fp.clone()),
                    (e.trigger.starts_at, e.created_at),
                );
            }
            if e.status != Status::Vetoed && e.status.is_final() {
                guards.remember(&e.playbook, &e.target, e.created_at);
            }
            if e.status == Status::Succeeded {
                guards.record_fixed(
                    &e.playbook,
                    &e.target,
                    e.finished_at.unwrap_or(e.updated_at),
                );
            }
        }
        metrics.playbooks.set(playbooks.len() as i64);
        let inner = Inner {
            playbooks: playbooks
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
            opts,
            guards,
            trust,
            handled,
            conditions: HashMap::new(),
            waiters: HashMap::new(),
            decisions: HashMap::new(),
        };
        Ok(Arc::new(Engine {
            inner: Mutex::new(inner),
            store,
            query,
            hooks,
            clock,
            http: reqwest::Client::builder()
                .user_agent(concat!("medic/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?,
            runtime: tokio::runtime::Handle::current(),
            metrics,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Swaps in new playbooks and settings; running executions keep the playbook they started
    /// with.
    pub fn apply(&self, playbooks: Vec<Playbook>, opts: Options) {
        let mut g = self.lock();
        self.metrics.playbooks.set(playbooks.len() as i64);
        g.playbooks = playbooks
            .into_iter()
            .map(|p| (p.name.clone(), Arc::new(p)))
            .collect();
        g.opts = opts;
        let names: Vec<String> = g.playbooks.keys().cloned().collect();
        g.conditions.retain(|(pb, _), _| names.contains(pb));
    }

    /// The playbooks loaded.
    pub fn playbooks(&self) -> Vec<PlaybookView> {
        let now = self.now();
        let g = self.lock();
        g.playbooks
            .values()
            .map(|p| PlaybookView {
                name: p.name.clone(),
                description: p.description.clone(),
                file: p.file.display().to_string(),
                enabled: p.enabled,
                dry_run: p.dry_run || g.opts.dry_run,
                trigger: match &p.trigger {
                    Trigger::Alert(ms) => format!(
                        "alert {{{}}}",
                        ms.iter()
                            .map(|m| m.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Trigger::Condition { query, for_ } => {
                        format!("condition {query} for {}", Dur(*for_))
                    }
                },
                paused: g
                    .guards
                    .pause(&guard::playbook_scope(&p.name), now)
                    .cloned(),
                actions: p.actions.keys().cloned().collect(),
                causes: p.diagnose.iter().map(|c| c.name.clone()).collect(),
            })
            .collect()
    }

    /// One playbook.
    pub fn playbook(&self, name: &str) -> Option<Arc<Playbook>> {
        self.lock().playbooks.get(name).cloned()
    }

    /// Takes alerts (new, re-sent or resolved) from the alert manager. Firing alerts that match
    /// a playbook, and have not started it before, are considered on their own tasks.
    pub fn on_alerts(self: &Arc<Self>, alerts: &[AlertInput]) {
        let now = self.now();
        let mut todo = Vec::new();
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
                    g.handled.insert(key, (a.starts_at, now));
                    todo.push((
                        pb,
                        TriggerInfo {
                            kind: "alert".into(),
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
        for (pb, t) in todo {
            let this = self.clone();
            self.runtime.spawn(async move {
                this.consider(pb, t).await;
            });
        }
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
        Ok(self
            .consider(
                pb,
                TriggerInfo {
                    kind: "manual".into(),
                    fingerprint: None,
                    labels,
                    annotations: BTreeMap::new(),
                    starts_at: now,
                    received_at: now,
                    by: Some(by.to_string()),
                },
            )
            .await)
    }

    /// Puts a candidate through the guards; starts it or records the veto.
    async fn consider(self: &Arc<Self>, pb: Arc<Playbook>, trigger: TriggerInfo) -> Execution {
        self.consider_as(pb, trigger, false).await
    }

    /// The retry of an alert a cooldown held back, boxed (it is spawned from
    /// [`Engine::consider_as`] itself).
    fn consider_deferred(
        self: Arc<Self>,
        pb: Arc<Playbook>,
        trigger: TriggerInfo,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Execution> + Send>> {
        Box::pin(async move { self.consider_as(pb, trigger, true).await })
    }

    /// [`Engine::consider`]; `deferred` when this is the retry of an alert a cooldown held
    /// back (its recurrence was counted the first time).
    async fn consider_as(
        self: &Arc<Self>,
        pb: Arc<Playbook>,
        trigger: TriggerInfo,
        deferred: bool,
    ) -> Execution {
        let now = self.now();
        let id = ulid::Ulid::new().to_string().to_lowercase();
        let dry_run = pb.dry_run || self.lock().opts.dry_run;
        let mut e = Execution {
            id: id.clone(),
            playbook: pb.name.clone(),
            target: String::new(),
            group: String::new(),
            trigger: trigger.clone(),
            params: BTreeMap::new(),
            status: Status::Running,
            phase: Phase::Collect,
            dry_run,
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
        };
        let scope = match pb.scope(&trigger.labels, &trigger.annotations, &id) {
            Ok(s) => s,
            Err(ScopeError::Refused(reason)) => {
                // The trigger names something the playbook does not allow: a veto, recorded
                // and counted like the guards' (nothing ran).
                e.target = "?".into();
                self.metrics
                    .vetoes
                    .get_or_create(&GuardLabels {
                        playbook: pb.name.clone(),
                        guard: "params".into(),
                    })
                    .inc();
                e.note("guard", "params", StepState::Failed, reason.clone(), now);
                e.finish(Status::Vetoed, format!("vetoed by params: {reason}"), now);
                e.veto = Some(Veto {
                    guard: "params".into(),
                    reason,
                });
                self.save(&e);
                self.ended(&e);
                return e;
            }
            Err(ScopeError::Template(err)) => {
                e.target = "?".into();
                e.note("guard", "template", StepState::Failed, err.clone(), now);
                e.finish(
                    Status::Failed,
                    format!("cannot expand the playbook: {err}"),
                    now,
                );
                self.save(&e);
                self.ended(&e);
                return e;
            }
        };
        e.target = scope.target.clone();
        e.params = scope.params.clone();
        e.group = pb.group_of(&scope).unwrap_or_else(|_| pb.name.clone());
        let blast_max = match &pb.guards.blast_radius {
            None => Ok(None),
            Some(BlastRadius::Count(n)) => Ok(Some(*n)),
            Some(BlastRadius::Percent {
                percent,
                group_size,
            }) => match group_size.expand(&scope) {
                Ok(q) => match self.instant(&q, now).await {
                    Ok(r) => match r.first().and_then(|s| s.samples.last()) {
                        Some(&(_, v)) if v.is_finite() => {
                            Ok(Some(guard::percent_limit(*percent, v)))
                        }
                        _ => Err(format!("group_size query {q:?} returned no value")),
                    },
                    Err(err) => Err(format!("group_size query {q:?}: {err}")),
                },
                Err(err) => Err(format!("group_size: {err}")),
            },
        };
        let resolved =
            trigger.kind == "alert" && self.hooks.alert_resolved(&trigger.labels) == Some(true);
        // A fault that comes back soon after a verified repair means the fix did not hold:
        // it counts against the circuit breaker like a failed verification.
        if let Some(b) = pb.guards.circuit_breaker {
            let fixed = b.recurrence.and_then(|w| {
                self.lock()
                    .guards
                    .fixed_within(&pb.name, &e.target, w.0, now)
            });
            if let (Some(at), false, false) = (fixed, deferred, resolved) {
                e.note(
                    "guard",
                    "recurrence",
                    StepState::Failed,
                    format!(
                        "{} repaired {} {} ago and the fault is back: counted as a failed repair",
                        pb.name,
                        e.target,
                        Dur(now - at)
                    ),
                    now,
                );
                let opened = self.lock().guards.record_failure(&pb.name, Some(b), now);
                if opened {
                    self.open_breaker(&pb, &mut e, "repairs that did not hold", now);
                }
            }
        }
        let verdict = {
            let mut g = self.lock();
            let cfg = GuardConfig {
                disabled: !g.opts.enabled,
                rate_limit: g.opts.rate_limit,
                maintenance: g.opts.maintenance.clone(),
            };
            let verdict = match &blast_max {
                // Fail safe: without the group's size, do not act.
                Err(err) => Err(Veto {
                    guard: "blast_radius".into(),
                    reason: format!("cannot tell the group's size: {err}"),
                }),
                Ok(max) => g.guards.check(
                    &cfg,
                    &Candidate {
                        playbook: &pb.name,
                        playbook_enabled: pb.enabled,
                        target: &e.target,
                        group: &e.group,
                        labels: &trigger.labels,
                        cooldown: pb.guards.cooldown,
                        rate_limit: pb.guards.rate_limit,
                        blast_max: *max,
                        trigger_resolved: resolved,
                        now,
                    },
                ),
            };
            if verdict.is_ok() {
                g.guards.admit(&pb.name, &e.target, &e.group, &id, now);
            }
            verdict
        };
        match verdict {
            Err(v) => {
                self.metrics
                    .vetoes
                    .get_or_create(&GuardLabels {
                        playbook: pb.name.clone(),
                        guard: v.guard.clone(),
                    })
                    .inc();
                e.note("guard", &v.guard, StepState::Failed, v.reason.clone(), now);
                e.finish(
                    Status::Vetoed,
                    format!("vetoed by {}: {}", v.guard, v.reason),
                    now,
                );
                let retry_at = (v.guard == "cooldown" && trigger.kind == "alert")
                    .then(|| {
                        self.lock().guards.cooldown_ends(
                            &pb.name,
                            &e.target,
                            pb.guards.cooldown,
                            now,
                        )
                    })
                    .flatten();
                e.veto = Some(v);
                self.save(&e);
                self.ended(&e);
                if pb.notify.on.contains(&NotifyOn::Vetoed) {
                    self.announce(&pb, &e, "vetoed", &pb.notify.receivers);
                }
                // A cooldown delays a repair, it does not cancel it: if the alert still fires
                // when the cooldown ends, the playbook is considered again.
                if let Some(at) = retry_at {
                    let this = self.clone();
                    let (pb, trigger) = (pb.clone(), trigger.clone());
                    self.runtime.spawn(async move {
                        let wait = (at - this.now()).max(0) as u64 + 50;
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        if this.hooks.alert_resolved(&trigger.labels) == Some(false) {
                            this.consider_deferred(pb, trigger).await;
                        }
                    });
                }
                e
            }
            Ok(()) => {
                e.note(
                    "guard",
                    "all",
                    StepState::Succeeded,
                    "every guard passed".into(),
                    now,
                );
                self.metrics.active.inc();
                self.save(&e);
                if pb.notify.on.contains(&NotifyOn::Started) {
                    self.announce(&pb, &e, "started", &pb.notify.receivers);
                }
                self.mark(&e);
                let this = self.clone();
                let run = e.clone();
                self.runtime.spawn(async move { this.drive(pb, run).await });
                e
            }
        }
    }

    /// Continues executions that were in flight when medic stopped. An action that had started
    /// but not ended is not run again blindly: its outcome is unknown, so it is verified first.
    pub fn resume(self: &Arc<Self>) -> Result<usize, Error> {
        let now = self.now();
        let mut n = 0;
        for mut e in self.store.unfinished().map_err(store_err)? {
            let Some(pb) = self.playbook(&e.playbook) else {
                e.note(
                    "resume",
                    &e.playbook.clone(),
                    StepState::Failed,
                    "the playbook is no longer loaded".into(),
                    now,
                );
                e.phase = Phase::Escalate {
                    reason: format!("playbook {} is no longer loaded; cannot resume", e.playbook),
                };
                self.save(&e);
                // Escalate with what is known, without the playbook's receivers.
                e.finish(
                    Status::Failed,
                    "cannot resume: playbook no longer loaded".into(),
                    now,
                );
                self.save(&e);
                self.ended(&e);
                continue;
            };
            let interrupted = e
                .steps
                .iter()
                .rposition(|s| s.state == StepState::Started && s.ended_at.is_none());
            // A sequence's own step is still open around the interrupted one: unknown too.
            for (j, s) in e.steps.iter_mut().enumerate() {
                if Some(j) != interrupted && s.state == StepState::Started && s.ended_at.is_none() {
                    s.state = StepState::Unknown;
                    s.ended_at = Some(now);
                    s.message = "medic stopped while this step ran; outcome unknown".into();
                }
            }
            if let Some(i) = interrupted {
                let kind = e.steps[i].kind.clone();
                let name = e.steps[i].name.clone();
                e.steps[i].state = StepState::Unknown;
                e.steps[i].ended_at = Some(now);
                e.steps[i].message = "medic stopped while this step ran; outcome unknown".into();
                // A step of a sequence (`action/step`) stands for its action.
                let name = name.split('/').next().unwrap_or(&name).to_string();
                match kind.as_str() {
                    "action" => {
                        self.metrics
                            .actions
                            .get_or_create(&ActionLabels {
                                playbook: e.playbook.clone(),
                                action: name.clone(),
                                result: "unknown".into(),
                            })
                            .inc();
                        if !e.actions_run.contains(&name) {
                            e.actions_run.push(name.clone());
                        }
                        e.note(
                            "resume",
                            &name,
                            StepState::Succeeded,
                            format!(
                                "the outcome of {name} is unknown: verifying before anything else"
                            ),
                            now,
                        );
                        e.status = Status::Verifying;
                        e.phase = Phase::Verify {
                            action: name,
                            since: now,
                            unknown: true,
                        };
                    }
                    "rollback" => {
                        e.phase = Phase::Escalate {
                            reason: format!(
                                "medic stopped while rolling back {name}; its outcome is unknown"
                            ),
                        };
                    }
                    // Reads (collect, verify) are simply done again.
                    _ => {}
                }
            }
            e.note(
                "resume",
                "restart",
                StepState::Succeeded,
                format!("resumed at {}", e.current_step()),
                now,
            );
            self.save(&e);
            {
                let mut g = self.lock();
                g.guards
                    .admit(&e.playbook, &e.target, &e.group, &e.id, e.created_at);
            }
            self.metrics.active.inc();
            self.mark(&e);
            let this = self.clone();
            self.runtime.spawn(async move { this.drive(pb, e).await });
            n += 1;
        }
        if n > 0 {
            info!(executions = n, "resumed executions in flight");
        }
        Ok(n)
    }

    fn save(&self, e: &Execution) {
        if let Err(err) = self.store.put_execution(e) {
            self.metrics.journal_errors.inc();
            warn!(execution = %e.id, error = %err, "cannot write the execution journal");
        }
    }

    /// Tells the alert manager what is happening to the trigger's alert.
    fn mark(&self, e: &Execution) {
        if e.trigger.kind == "condition" {
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

    async fn instant(&self, q: &str, t: i64) -> Result<Vec<QuerySeries>, String> {
        let query = self.query.clone();
        let q = q.to_string();
        tokio::task::spawn_blocking(move || query.instant(&q, t))
            .await
            .map_err(|e| e.to_string())?
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
    }

    /// Whether the trigger has resolved (`None`: cannot tell).
    async fn trigger_resolved(&self, pb: &Playbook, e: &Execution) -> Option<bool> {
        match e.trigger.kind.as_str() {
            "condition" => {
                let Trigger::Condition { query, .. } = &pb.trigger else {
                    return None;
                };
                let r = self.instant(query, self.now()).await.ok()?;
                Some(!r.iter().any(|s| labels_map(&s.labels) == e.trigger.labels))
            }
            _ => self.hooks.alert_resolved(&e.trigger.labels),
        }
    }

    /// Drives an admitted execution to its end.
    async fn drive(self: Arc<Self>, pb: Arc<Playbook>, mut e: Execution) {
        let scope = Scope {
            labels: e.trigger.labels.clone(),
            annotations: e.trigger.annotations.clone(),
            params: e.params.clone(),
            target: e.target.clone(),
            execution: e.id.clone(),
        };
        loop {
            let now = self.now();
            match e.phase.clone() {
                Phase::Collect => {
                    e.evidence = self.collect(&pb, &scope, &mut e).await;
                    e.phase = Phase::Diagnose;
                    self.save(&e);
                }
                Phase::Diagnose => {
                    let i = e.begin("diagnose", "rules", now);
                    let vars = variables(&scope, &e.evidence);
                    match diagnose(&pb, &vars) {
                        Ok(d) => {
                            let g = self.lock();
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
                            e.candidates = g.trust.rank(&pb.name, &d.cause, &actions);
                            drop(g);
                            e.end(
                                i,
                                StepState::Succeeded,
                                format!(
                                    "cause: {} ({}); candidates: {}",
                                    d.cause,
                                    d.when,
                                    e.candidates.join(", ")
                                ),
                                serde_json::to_value(&d).unwrap_or(Json::Null),
                                now,
                            );
                            e.diagnosis = Some(d);
                            e.phase = Phase::Choose;
                        }
                        Err(rejected) => {
                            e.end(
                                i,
                                StepState::Failed,
                                "no diagnosis rule matched".into(),
                                json!(rejected),
                                now,
                            );
                            e.phase = Phase::Escalate {
                                reason: "no diagnosis rule matched the evidence".into(),
                            };
                        }
                    }
                    self.save(&e);
                }
                Phase::Choose => self.choose(&pb, &scope, &mut e).await,
                Phase::AwaitApproval { action, since } => {
                    self.await_approval(&pb, &mut e, &action, since).await
                }
                Phase::Act { action, .. } => self.act(&pb, &scope, &mut e, &action).await,
                Phase::Verify {
                    action,
                    since,
                    unknown,
                } => {
                    self.verify(&pb, &scope, &mut e, &action, since, unknown)
                        .await
                }
                Phase::Rollback { action }
                    if matches!(
                        pb.actions.get(&action).map(|a| &a.kind),
                        Some(ActionKind::Steps(_))
                    ) =>
                {
                    let def = pb.actions[&action].clone();
                    match self.roll_back_steps(&pb, &scope, &mut e, &def).await {
                        Ok(()) => {
                            e.attempt += 1;
                            e.phase = Phase::Choose;
                        }
                        Err(reason) => e.phase = Phase::Escalate { reason },
                    }
                    self.save(&e);
                }
                Phase::Rollback { action } => {
                    let Some(rb) = pb.actions.get(&action).and_then(|a| a.rollback.clone()) else {
                        e.attempt += 1;
                        e.phase = Phase::Choose;
                        continue;
                    };
                    let i = e.begin("rollback", &action, now);
                    self.save(&e);
                    let (ok, msg, detail) = self.run_action(&pb, &scope, &e, &rb).await;
                    let now = self.now();
                    e.end(
                        i,
                        if ok {
                            StepState::Succeeded
                        } else {
                            StepState::Failed
                        },
                        msg.clone(),
                        detail,
                        now,
                    );
                    if ok {
                        e.attempt += 1;
                        e.phase = Phase::Choose;
                    } else {
                        e.phase = Phase::Escalate {
                            reason: format!("rollback of {action} failed: {msg}"),
                        };
                    }
                    self.save(&e);
                }
                Phase::Escalate { reason } => {
                    let receivers = if pb.notify.escalate.is_empty() {
                        pb.notify.receivers.clone()
                    } else {
                        pb.notify.escalate.clone()
                    };
                    e.finish(Status::Failed, format!("escalated: {reason}"), now);
                    e.note("escalate", "people", StepState::Succeeded, reason, now);
                    self.save(&e);
                    if pb.notify.on.contains(&NotifyOn::Failure) {
                        self.announce(&pb, &e, "failure", &receivers);
                    }
                }
                Phase::Done => break,
            }
            self.mark(&e);
        }
        {
            let mut g = self.lock();
            g.guards.release(&e.playbook, &e.target, &e.group, &e.id);
            g.waiters.remove(&e.id);
            g.decisions.remove(&e.id);
        }
        self.metrics.active.dec();
        self.mark(&e);
        self.ended(&e);
        info!(execution = %e.id, playbook = %e.playbook, target = %e.target, status = e.status.as_str(), "execution ended");
    }

    async fn collect(
        &self,
        pb: &Playbook,
        scope: &Scope,
        e: &mut Execution,
    ) -> BTreeMap<String, Json> {
        let mut out = BTreeMap::new();
        for c in &pb.collect {
            let now = self.now();
            let i = e.begin("collect", &c.name, now);
            let (ok, msg, value) = match &c.kind {
                CollectKind::Query(t) => match t.expand(scope) {
                    Ok(q) => match self.instant(&q, now).await {
                        Ok(r) => (
                            true,
                            format!("{q}: {} series", r.len()),
                            query_evidence(&r, false),
                        ),
                        Err(err) => (
                            false,
                            format!("{q}: {err}"),
                            json!({"error": err, "empty": true, "value": null, "series": []}),
                        ),
                    },
                    Err(err) => (false, err.clone(), json!({"error": err})),
                },
                CollectKind::Range { query, range, step } => match query.expand(scope) {
                    Ok(q) => match self.range(&q, now - range, now, *step).await {
                        Ok(r) => (
                            true,
                            format!("{q}: {} series", r.len()),
                            query_evidence(&r, true),
                        ),
                        Err(err) => (
                            false,
                            format!("{q}: {err}"),
                            json!({"error": err, "empty": true, "value": null, "series": []}),
                        ),
                    },
                    Err(err) => (false, err.clone(), json!({"error": err})),
                },
                CollectKind::Exec(spec) => match action::command(spec, scope) {
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
                CollectKind::Http(spec) => match action::request(spec, scope) {
                    Ok(req) => {
                        let r = action::run_request(&self.http, &req).await;
                        (r.error.is_none(), r.summary(), action::http_evidence(&r))
                    }
                    Err(err) => (false, err.clone(), json!({"error": err, "ok": false})),
                },
            };
            let now = self.now();
            e.end(
                i,
                if ok {
                    StepState::Succeeded
                } else {
                    StepState::Failed
                },
                msg,
                Json::Null,
                now,
            );
            out.insert(c.name.clone(), value);
        }
        out
    }

    fn exec_env<'a>(&self, e: &'a Execution) -> [(&'static str, &'a str); 3] {
        [
            ("MEDIC_EXECUTION", e.id.as_str()),
            ("MEDIC_PLAYBOOK", e.playbook.as_str()),
            ("MEDIC_TARGET", e.target.as_str()),
        ]
    }

    async fn choose(&self, pb: &Playbook, scope: &Scope, e: &mut Execution) {
        let now = self.now();
        let Some(action) = e.candidates.get(e.attempt).cloned() else {
            let tried = if e.actions_run.is_empty() {
                "no action could be tried".to_string()
            } else {
                format!("tried {} without a verified fix", e.actions_run.join(", "))
            };
            e.phase = Phase::Escalate { reason: tried };
            return;
        };
        let cause = e
            .diagnosis
            .as_ref()
            .map(|d| d.cause.clone())
            .unwrap_or_default();
        let def = &pb.actions[&action];
        let level = self
            .lock()
            .trust
            .level(&pb.name, &cause, &action, def.approval);
        if level == Level::Disabled {
            e.note(
                "action",
                &action,
                StepState::Skipped,
                "disabled by the trust ladder".into(),
                now,
            );
            e.attempt += 1;
            self.save(e);
            return;
        }
        if self.stop_if_resolved(pb, e, &action).await {
            return;
        }
        if e.dry_run {
            let plan = action_plan(def, scope);
            e.note(
                "action",
                &action,
                StepState::Skipped,
                format!("dry run: would run {}", plan_text(&plan)),
                now,
            );
            if let Some(s) = e.steps.last_mut() {
                s.detail = plan;
            }
            e.finish(
                Status::DryRun,
                format!("dry run: would run {action} for {}", e.target),
                now,
            );
            self.save(e);
            if pb.notify.on.contains(&NotifyOn::DryRun) {
                self.announce(pb, e, "dry_run", &pb.notify.receivers);
            }
            return;
        }
        if level == Level::Approval {
            e.status = Status::AwaitingApproval;
            e.phase = Phase::AwaitApproval {
                action: action.clone(),
                since: now,
            };
            let reason = if def.approval == Approval::Always {
                "the action always needs approval".to_string()
            } else {
                let (s, n) = self.lock().trust.stats(&pb.name, &cause, &action);
                format!("the action is not trusted yet ({s} of {n} verified attempts succeeded)")
            };
            e.note("approval", &action, StepState::Started, reason, now);
            self.save(e);
            if pb.notify.on.contains(&NotifyOn::Approval) {
                self.announce(pb, e, "approval", &pb.notify.receivers);
            }
            return;
        }
        e.phase = Phase::Act {
            action,
            approved: false,
        };
        self.save(e);
    }

    async fn await_approval(&self, pb: &Playbook, e: &mut Execution, action: &str, since: i64) {
        let timeout = pb
            .guards
            .approval_timeout
            .unwrap_or(self.lock().opts.approval_timeout);
        let notify = {
            let mut g = self.lock();
            g.waiters.entry(e.id.clone()).or_default().clone()
        };
        loop {
            let decision = self.lock().decisions.remove(&e.id);
            let now = self.now();
            if let Some(d) = decision {
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
                e.note(
                    "approval",
                    action,
                    if d.approved {
                        StepState::Succeeded
                    } else {
                        StepState::Failed
                    },
                    msg.clone(),
                    now,
                );
                let approved = d.approved;
                e.decision = Some(d);
                if approved {
                    e.status = Status::Running;
                    e.phase = Phase::Act {
                        action: action.to_string(),
                        approved: true,
                    };
                } else {
                    e.finish(
                        Status::Rejected,
                        format!("{action} {msg}; nothing was done"),
                        now,
                    );
                }
                self.save(e);
                return;
            }
            if now >= since + timeout {
                e.note(
                    "approval",
                    action,
                    StepState::Failed,
                    format!("no decision within {}", Dur(timeout)),
                    now,
                );
                e.status = Status::Running;
                e.phase = Phase::Escalate {
                    reason: format!("{action} was not approved within {}", Dur(timeout)),
                };
                self.save(e);
                return;
            }
            let wait = Duration::from_millis((since + timeout - now).clamp(1, 1_000) as u64);
            let _ = tokio::time::timeout(wait, notify.notified()).await;
        }
    }

    /// Ends the execution, doing nothing, if its trigger has resolved (a repair never runs on
    /// an alert that is already over). Returns whether it did.
    async fn stop_if_resolved(&self, pb: &Playbook, e: &mut Execution, action: &str) -> bool {
        if self.trigger_resolved(pb, e).await != Some(true) {
            return false;
        }
        let now = self.now();
        e.note(
            "guard",
            "resolved",
            StepState::Failed,
            "the trigger resolved before medic acted".into(),
            now,
        );
        e.finish(
            Status::Resolved,
            format!("the trigger resolved before {action} ran; nothing was done"),
            now,
        );
        self.save(e);
        true
    }

    async fn act(&self, pb: &Playbook, scope: &Scope, e: &mut Execution, action: &str) {
        if self.stop_if_resolved(pb, e, action).await {
            return;
        }
        let def = pb.actions[action].clone();
        let now = self.now();
        let i = e.begin("action", action, now);
        e.status = Status::Running;
        if e.action_started_at.is_none() {
            e.action_started_at = Some(now);
            self.metrics
                .reaction
                .observe((now - e.trigger.received_at).max(0) as f64 / 1000.0);
        }
        // Journal first: a crash from here on leaves an action of unknown outcome.
        self.save(e);
        let (ok, msg, detail) = match &def.kind {
            ActionKind::Steps(steps) => self.run_steps(pb, scope, e, action, steps).await,
            _ => self.run_action(pb, scope, e, &def).await,
        };
        let now = self.now();
        e.end(
            i,
            if ok {
                StepState::Succeeded
            } else {
                StepState::Failed
            },
            msg.clone(),
            detail,
            now,
        );
        e.actions_run.push(action.to_string());
        self.metrics
            .actions
            .get_or_create(&ActionLabels {
                playbook: pb.name.clone(),
                action: action.to_string(),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
        if ok {
            e.status = Status::Verifying;
            e.phase = Phase::Verify {
                action: action.to_string(),
                since: now,
                unknown: false,
            };
        } else {
            self.outcome(pb, e, action, false);
            e.phase = Phase::Rollback {
                action: action.to_string(),
            };
        }
        self.save(e);
    }

    /// Runs the steps of a sequence in order, each journaled as `action/step` before it starts
    /// and after it ends; stops at the first that fails. `(ok, message, detail)` of the whole.
    async fn run_steps(
        &self,
        pb: &Playbook,
        scope: &Scope,
        e: &mut Execution,
        action: &str,
        steps: &[Action],
    ) -> (bool, String, Json) {
        for (n, step) in steps.iter().enumerate() {
            let name = format!("{action}/{}", step.name);
            let i = e.begin("action", &name, self.now());
            self.save(e);
            let (ok, msg, detail) = self.run_action(pb, scope, e, step).await;
            let state = if ok {
                StepState::Succeeded
            } else {
                StepState::Failed
            };
            e.end(i, state, msg.clone(), detail, self.now());
            self.save(e);
            if !ok {
                return (
                    false,
                    format!(
                        "step {} of {} ({}) failed: {msg}",
                        n + 1,
                        steps.len(),
                        step.name
                    ),
                    Json::Null,
                );
            }
        }
        (true, format!("{} steps succeeded", steps.len()), Json::Null)
    }

    /// Rolls back a sequence: the steps that succeeded, in reverse order, each by its own
    /// rollback; then the action's rollback. `Err` names what failed.
    async fn roll_back_steps(
        &self,
        pb: &Playbook,
        scope: &Scope,
        e: &mut Execution,
        def: &Action,
    ) -> Result<(), String> {
        let done: Vec<String> = e
            .steps
            .iter()
            .filter(|s| {
                s.kind == "action"
                    && s.state == StepState::Succeeded
                    && s.name.starts_with(&format!("{}/", def.name))
            })
            .map(|s| s.name.clone())
            .collect();
        let mut undo: Vec<(String, Action)> = done
            .iter()
            .rev()
            .filter_map(|n| {
                let rb = def.step(n)?.rollback.clone()?;
                Some((n.clone(), *rb))
            })
            .collect();
        if let Some(rb) = &def.rollback {
            undo.push((def.name.clone(), (**rb).clone()));
        }
        for (name, rb) in undo {
            let i = e.begin("rollback", &name, self.now());
            self.save(e);
            let (ok, msg, detail) = self.run_action(pb, scope, e, &rb).await;
            let state = if ok {
                StepState::Succeeded
            } else {
                StepState::Failed
            };
            e.end(i, state, msg.clone(), detail, self.now());
            self.save(e);
            if !ok {
                return Err(format!("rollback of {name} failed: {msg}"));
            }
        }
        Ok(())
    }

    /// Runs an action or rollback; `(ok, message, detail)`.
    async fn run_action(
        &self,
        _pb: &Playbook,
        scope: &Scope,
        e: &Execution,
        a: &Action,
    ) -> (bool, String, Json) {
        match &a.kind {
            ActionKind::Exec(spec) => match action::command(spec, scope) {
                Ok(cmd) => {
                    let r = action::run_command(&cmd, &self.exec_env(e)).await;
                    (r.ok, r.summary(), json!({"command": cmd, "result": r}))
                }
                Err(err) => (false, err, Json::Null),
            },
            ActionKind::Http(spec) => match action::request(spec, scope) {
                Ok(req) => {
                    let r = action::run_request(&self.http, &req).await;
                    (r.ok, r.summary(), json!({"request": req, "result": r}))
                }
                Err(err) => (false, err, Json::Null),
            },
            ActionKind::Wait(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms as u64)).await;
                (true, format!("waited {}", Dur(*ms)), Json::Null)
            }
            ActionKind::Steps(_) => (
                false,
                "a sequence of steps runs as a whole action, not as a step".into(),
                Json::Null,
            ),
            ActionKind::Notify { receivers, message } => match message.expand(scope) {
                Ok(text) => {
                    let n = Notification {
                        receivers: receivers.clone(),
                        event: "action".into(),
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
                        Err(err) => (false, err, Json::Null),
                    }
                }
                Err(err) => (false, err, Json::Null),
            },
        }
    }

    async fn verify(
        &self,
        pb: &Playbook,
        scope: &Scope,
        e: &mut Execution,
        action: &str,
        since: i64,
        unknown: bool,
    ) {
        let v = &pb.verify;
        let start = self.now();
        let i = e.begin("verify", action, start);
        let deadline = since + v.after + v.within;
        let first = since + v.after;
        if start < first {
            tokio::time::sleep(Duration::from_millis((first - start) as u64)).await;
        }
        let mut checks = 0;
        let (ok, last) = loop {
            checks += 1;
            let (ok, msg) = self.check(pb, scope, e).await;
            if ok {
                break (true, msg);
            }
            let now = self.now();
            if now + v.interval > deadline {
                break (false, msg);
            }
            tokio::time::sleep(Duration::from_millis(v.interval as u64)).await;
        };
        let now = self.now();
        e.end(
            i,
            if ok {
                StepState::Succeeded
            } else {
                StepState::Failed
            },
            format!(
                "{} after {checks} check(s): {last}",
                if ok { "fixed" } else { "not fixed" }
            ),
            Json::Null,
            now,
        );
        self.metrics
            .verifications
            .get_or_create(&ResultLabels {
                playbook: pb.name.clone(),
                result: if ok { "success" } else { "failure" }.into(),
            })
            .inc();
        self.outcome(pb, e, action, ok);
        if ok {
            self.lock().guards.record_fixed(&pb.name, &e.target, now);
            let took = now - e.trigger.received_at;
            e.finish(
                Status::Succeeded,
                format!(
                    "{} fixed {} ({}); verified {} after the alert reached medic",
                    e.actions_run.join(" then "),
                    e.target,
                    e.diagnosis
                        .as_ref()
                        .map(|d| d.cause.as_str())
                        .unwrap_or("?"),
                    medic_model::format_human_duration(took)
                ),
                now,
            );
            self.save(e);
            if pb.notify.on.contains(&NotifyOn::Success) {
                self.announce(pb, e, "success", &pb.notify.receivers);
            }
            return;
        }
        // A failed verification counts against the playbook's circuit breaker.
        let opened = self
            .lock()
            .guards
            .record_failure(&pb.name, pb.guards.circuit_breaker, now);
        if opened {
            let what = match pb.guards.circuit_breaker.and_then(|b| b.recurrence) {
                Some(_) => "failed verifications or repairs that did not hold",
                None => "failed verifications",
            };
            self.open_breaker(pb, e, what, now);
        }
        if unknown {
            match pb.on_unknown_outcome {
                UnknownOutcome::Escalate => {
                    e.phase = Phase::Escalate {
                        reason: format!(
                            "{action} had an unknown outcome and the problem is still there"
                        ),
                    };
                }
                UnknownOutcome::Retry => {
                    e.status = Status::Running;
                    e.phase = Phase::Act {
                        action: action.to_string(),
                        approved: true,
                    };
                }
                UnknownOutcome::Next => {
                    e.status = Status::Running;
                    e.phase = Phase::Rollback {
                        action: action.to_string(),
                    };
                }
            }
        } else {
            e.status = Status::Running;
            e.phase = if opened {
                Phase::Escalate {
                    reason: "the circuit breaker opened".into(),
                }
            } else {
                Phase::Rollback {
                    action: action.to_string(),
                }
            };
        }
        self.save(e);
    }

    /// Opens a playbook's circuit breaker: pauses the playbook (until a person resumes it),
    /// records it in `e` and tells the escalation receivers.
    fn open_breaker(&self, pb: &Playbook, e: &mut Execution, what: &str, now: i64) {
        let b = pb.guards.circuit_breaker.expect("breaker opened");
        let p = Pause {
            scope: guard::playbook_scope(&pb.name),
            reason: format!("{} {what} within {}", b.failures, b.within),
            by: guard::BREAKER.into(),
            at: now,
            until: None,
        };
        let _ = self
            .store
            .put_pause(&p)
            .map_err(|err| warn!(error = %err, "cannot save pause"));
        self.lock().guards.set_pause(p.clone());
        e.note(
            "guard",
            "circuit_breaker",
            StepState::Failed,
            format!("opened: playbook {} paused ({})", pb.name, p.reason),
            now,
        );
        let receivers = if pb.notify.escalate.is_empty() {
            pb.notify.receivers.clone()
        } else {
            pb.notify.escalate.clone()
        };
        self.announce(pb, e, "circuit_breaker", &receivers);
    }

    /// One verification check: `(fixed, what was seen)`.
    async fn check(&self, pb: &Playbook, scope: &Scope, e: &Execution) -> (bool, String) {
        match &pb.verify.check {
            VerifyCheck::Query(t) => match t.expand(scope) {
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
            VerifyCheck::Exec(spec) => match action::command(spec, scope) {
                Ok(cmd) => {
                    let r = action::run_command(&cmd, &self.exec_env(e)).await;
                    (r.ok, format!("{}: {}", cmd.argv.join(" "), r.summary()))
                }
                Err(err) => (false, err),
            },
            VerifyCheck::Http(spec) => match action::request(spec, scope) {
                Ok(req) => {
                    let r = action::run_request(&self.http, &req).await;
                    (r.ok, format!("{} {}: {}", req.method, req.url, r.summary()))
                }
                Err(err) => (false, err),
            },
        }
    }

    /// Records a verified outcome for trust and moves the ladder.
    fn outcome(&self, pb: &Playbook, e: &mut Execution, action: &str, success: bool) {
        let Some(cause) = e.diagnosis.as_ref().map(|d| d.cause.clone()) else {
            return;
        };
        let o = Outcome {
            playbook: pb.name.clone(),
            cause,
            action: action.to_string(),
            success,
            at: self.now(),
            execution: e.id.clone(),
        };
        if let Err(err) = self.store.put_outcome(&o) {
            warn!(error = %err, "cannot record an outcome");
        }
        let policy = pb
            .actions
            .get(action)
            .map(|a| a.approval)
            .unwrap_or_default();
        let change = {
            let mut g = self.lock();
            let cfg = g.opts.trust;
            g.trust.record(&cfg, &o, policy)
        };
        if let Some(c) = change {
            if let Err(err) = self.store.put_trust_change(&c) {
                warn!(error = %err, "cannot record a trust change");
            }
            self.metrics
                .trust_changes
                .get_or_create(&LevelLabel {
                    level: c.to.clone(),
                })
                .inc();
            e.note(
                "trust",
                action,
                StepState::Succeeded,
                format!("{} → {}: {}", c.from, c.to, c.reason),
                o.at,
            );
            info!(playbook = %c.playbook, cause = %c.cause, action = %c.action, from = %c.from, to = %c.to, "trust changed");
            let n = Notification {
                receivers: pb.notify.receivers.clone(),
                event: "trust".into(),
                playbook: pb.name.clone(),
                target: e.target.clone(),
                execution: e.id.clone(),
                title: format!("medic: trust in {}/{} is now {}", pb.name, action, c.to),
                text: format!(
                    "{} for cause {}: {} → {} because {}",
                    action, c.cause, c.from, c.to, c.reason
                ),
                labels: e.trigger.labels.clone(),
            };
            self.send(n);
        }
    }

    fn announce(&self, pb: &Playbook, e: &Execution, event: &str, receivers: &[String]) {
        if receivers.is_empty() {
            return;
        }
        let url = self.lock().opts.external_url.clone();
        let n = Notification {
            receivers: receivers.to_vec(),
            event: event.into(),
            playbook: pb.name.clone(),
            target: e.target.clone(),
            execution: e.id.clone(),
            title: title(e, event),
            text: report(e, &url),
            labels: e.trigger.labels.clone(),
        };
        self.send(n);
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

    /// Records a person's decision on an execution awaiting approval.
    pub fn decide(&self, id: &str, approved: bool, by: &str, comment: &str) -> Result<(), Error> {
        let e = self
            .store
            .execution(id)
            .map_err(store_err)?
            .ok_or_else(|| Error::NotFound(format!("no execution {id}")))?;
        if e.status != Status::AwaitingApproval {
            return Err(Error::Invalid(format!(
                "execution {id} is {}, not awaiting approval",
                e.status.as_str()
            )));
        }
        let mut g = self.lock();
        g.decisions.insert(
            id.to_string(),
            Decision {
                approved,
                by: by.to_string(),
                comment: comment.to_string(),
                at: self.clock.now_ms(),
            },
        );
        if let Some(n) = g.waiters.get(id) {
            n.notify_one();
        }
        Ok(())
    }

    /// Pauses automatic repair: `all`, `playbook:<name>` or `target:<target>`.
    pub fn pause(
        &self,
        scope: &str,
        reason: &str,
        by: &str,
        until: Option<i64>,
    ) -> Result<Pause, Error> {
        check_scope(scope)?;
        if let Some(name) = scope.strip_prefix("playbook:") {
            if self.playbook(name).is_none() {
                return Err(Error::NotFound(format!("no playbook named {name:?}")));
            }
        }
        let p = Pause {
            scope: scope.to_string(),
            reason: reason.to_string(),
            by: by.to_string(),
            at: self.now(),
            until,
        };
        self.store.put_pause(&p).map_err(store_err)?;
        self.lock().guards.set_pause(p.clone());
        info!(scope, by, reason, "automatic repair paused");
        Ok(p)
    }

    /// Lifts a pause (and, for a playbook, forgets the failures its breaker counted).
    pub fn resume_scope(&self, scope: &str) -> Result<Pause, Error> {
        check_scope(scope)?;
        self.store.delete_pause(scope).map_err(store_err)?;
        let mut g = self.lock();
        if let Some(name) = scope.strip_prefix("playbook:") {
            g.guards.reset_failures(name);
        }
        let p = g
            .guards
            .clear_pause(scope)
            .ok_or_else(|| Error::NotFound(format!("{scope} is not paused")))?;
        info!(scope, "automatic repair resumed");
        Ok(p)
    }

    /// Pauses in force.
    pub fn pauses(&self) -> Vec<Pause> {
        let now = self.now();
        self.lock().guards.pauses(now)
    }

    pub fn execution(&self, id: &str) -> Result<Option<Execution>, Error> {
        self.store.execution(id).map_err(store_err)
    }

    pub fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>, Error> {
        self.store.executions(q).map_err(store_err)
    }

    /// Trust records of every action that has one.
    pub fn trust(&self) -> Vec<crate::trust::Record> {
        let g = self.lock();
        let policies: HashMap<(String, String), Approval> = g
            .playbooks
            .values()
            .flat_map(|p| {
                p.actions
                    .values()
                    .map(move |a| ((p.name.clone(), a.name.clone()), a.approval))
            })
            .collect();
        g.trust.records(|k| {
            policies
                .get(&(k.0.clone(), k.2.clone()))
                .copied()
                .unwrap_or_default()
        })
    }

    /// Evaluates condition triggers, prunes old records; until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_prune = 0;
        loop {
            let interval = self.lock().opts.condition_interval.max(100);
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(Duration::from_millis(interval as u64)) => {}
            }
            self.evaluate_conditions().await;
            let now = self.now();
            if now - last_prune > 3_600_000 {
                last_prune = now;
                let retention = self.lock().opts.retention;
                match self.store.prune(now - retention) {
                    Ok(n) if n > 0 => info!(executions = n, "pruned old executions"),
                    Ok(_) => {}
                    Err(err) => warn!(error = %err, "cannot prune executions"),
                }
                let mut g = self.lock();
                g.guards.gc(now - 24 * 3_600_000);
                g.handled.retain(|_, (_, at)| *at >= now - 24 * 3_600_000);
            }
        }
    }

    /// One round of condition triggers.
    pub async fn evaluate_conditions(self: &Arc<Self>) {
        let conds: Vec<Arc<Playbook>> = self
            .lock()
            .playbooks
            .values()
            .filter(|p| matches!(p.trigger, Trigger::Condition { .. }))
            .cloned()
            .collect();
        for pb in conds {
            let Trigger::Condition { query, for_ } = &pb.trigger else {
                continue;
            };
            let now = self.now();
            let series = match self.instant(query, now).await {
                Ok(s) => s,
                Err(err) => {
                    warn!(playbook = %pb.name, error = %err, "condition query failed");
                    continue;
                }
            };
            let mut due = Vec::new();
            {
                let mut g = self.lock();
                let mut seen = Vec::new();
                for s in &series {
                    let labels = labels_map(&s.labels);
                    let key = (pb.name.clone(), s.labels.to_string());
                    seen.push(key.clone());
                    let st = g.conditions.entry(key).or_insert(CondState {
                        since: now,
                        labels: labels.clone(),
                        triggered: false,
                    });
                    if !st.triggered && now - st.since >= *for_ {
                        st.triggered = true;
                        due.push((st.labels.clone(), st.since));
                    }
                }
                g.conditions
                    .retain(|k, _| k.0 != pb.name || seen.contains(k));
            }
            for (labels, since) in due {
                let t = TriggerInfo {
                    kind: "condition".into(),
                    fingerprint: None,
                    labels,
                    annotations: BTreeMap::new(),
                    starts_at: since,
                    received_at: now,
                    by: None,
                };
                let this = self.clone();
                let pb = pb.clone();
                self.runtime.spawn(async move {
                    this.consider(pb, t).await;
                });
            }
        }
    }
}

fn check_scope(scope: &str) -> Result<(), Error> {
    if scope == "all"
        || scope
            .strip_prefix("playbook:")
            .is_some_and(|s| !s.is_empty())
        || scope.strip_prefix("target:").is_some_and(|s| !s.is_empty())
    {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "scope {scope:?}: expected all, playbook:<name> or target:<target>"
        )))
    }
}

/// Labels as a sorted map.
pub fn labels_map(l: &medic_model::Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// Evidence from a query result, as diagnosis expressions see it: `value` (the first
/// series' latest value, or null), `empty`, `series` (labels and value, or values for a
/// range) and, for ranges, `min`, `max`, `avg`, `first`, `last`, `delta` of the first series.
pub fn query_evidence(r: &[QuerySeries], range: bool) -> Json {
    let series: Vec<Json> = r
        .iter()
        .take(100)
        .map(|s| {
            let labels = labels_map(&s.labels);
            if range {
                json!({"labels": labels, "values": s.samples.iter().map(|&(_, v)| num(v)).collect::<Vec<_>>()})
            } else {
                json!({"labels": labels, "value": s.samples.last().map(|&(_, v)| num(v))})
            }
        })
        .collect();
    let first: Vec<f64> = r
        .first()
        .map(|s| {
            s.samples
                .iter()
                .map(|&(_, v)| v)
                .filter(|v| v.is_finite())
                .collect()
        })
        .unwrap_or_default();
    let mut out = json!({
        "value": first.last().map(|&v| num(v)),
        "empty": r.is_empty(),
        "series": series,
    });
    if range && !first.is_empty() {
        let min = first.iter().copied().fold(f64::INFINITY, f64::min);
        let max = first.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = first.iter().sum::<f64>() / first.len() as f64;
        out["min"] = num(min);
        out["max"] = num(max);
        out["avg"] = num(avg);
        out["first"] = num(first[0]);
        out["last"] = num(*first.last().expect("not empty"));
        out["delta"] = num(first.last().expect("not empty") - first[0]);
    }
    out
}

fn num(v: f64) -> Json {
    serde_json::Number::from_f64(v)
        .map(Json::Number)
        .unwrap_or(Json::Null)
}

/// The variables diagnosis expressions see.
pub fn variables(scope: &Scope, evidence: &BTreeMap<String, Json>) -> BTreeMap<String, Json> {
    let mut v = evidence.clone();
    v.insert("labels".into(), json!(scope.labels));
    v.insert("annotations".into(), json!(scope.annotations));
    v.insert("params".into(), json!(scope.params));
    v.insert("target".into(), json!(scope.target));
    v.insert("execution".into(), json!(scope.execution));
    v
}

/// The first cause whose condition holds, or why none did.
pub fn diagnose(
    pb: &Playbook,
    vars: &BTreeMap<String, Json>,
) -> Result<Diagnosis, Vec<(String, String)>> {
    let mut rejected = Vec::new();
    for c in &pb.diagnose {
        match c.when.eval_bool(vars) {
            Ok(true) => {
                return Ok(Diagnosis {
                    cause: c.name.clone(),
                    description: c.description.clone(),
                    when: c.when.source().to_string(),
                    support: c.when.support(vars),
                    rejected,
                })
            }
            Ok(false) => rejected.push((c.name.clone(), format!("{} is false", c.when.source()))),
            Err(e) => rejected.push((c.name.clone(), format!("{}: {e}", c.when.source()))),
        }
    }
    Err(rejected)
}

/// What an action would do, with its templates expanded.
pub fn action_plan(a: &Action, scope: &Scope) -> Json {
    let main = match &a.kind {
        ActionKind::Exec(s) => match action::command(s, scope) {
            Ok(c) => json!({"exec": c}),
            Err(e) => json!({"error": e}),
        },
        ActionKind::Http(s) => match action::request(s, scope) {
            Ok(r) => json!({"http": r}),
            Err(e) => json!({"error": e}),
        },
        ActionKind::Wait(ms) => json!({"wait": Dur(*ms).to_string()}),
        ActionKind::Steps(steps) => json!({
            "steps": steps
                .iter()
                .map(|s| json!({"name": s.name, "plan": action_plan(s, scope)}))
                .collect::<Vec<_>>()
        }),
        ActionKind::Notify { receivers, message } => {
            json!({"notify": {"receivers": receivers, "message": message.expand(scope).unwrap_or_else(|e| e)}})
        }
    };
    match &a.rollback {
        Some(rb) => {
            let mut m = main;
            m["rollback"] = action_plan(rb, scope);
            m
        }
        None => main,
    }
}

/// One line for an action plan.
pub fn plan_text(plan: &Json) -> String {
    if let Some(argv) = plan.pointer("/exec/argv").and_then(Json::as_array) {
        let args: Vec<String> = argv
            .iter()
            .map(|a| {
                let s = a.as_str().unwrap_or("");
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
                {
                    s.to_string()
                } else {
                    format!("'{}'", s.replace('\'', "'\\''"))
                }
            })
            .collect();
        return format!("exec {}", args.join(" "));
    }
    if let Some(h) = plan.get("http") {
        return format!(
            "{} {}",
            h["method"].as_str().unwrap_or(""),
            h["url"].as_str().unwrap_or("")
        );
    }
    if let Some(w) = plan.get("wait") {
        return format!("wait {}", w.as_str().unwrap_or(""));
    }
    if let Some(n) = plan.get("notify") {
        return format!("notify {}", n["receivers"]);
    }
    if let Some(steps) = plan.get("steps").and_then(Json::as_array) {
        let parts: Vec<String> = steps
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s["name"].as_str().unwrap_or(""),
                    plan_text(&s["plan"])
                )
            })
            .collect();
        return format!("steps {}", parts.join(", then "));
    }
    plan.get("error")
        .and_then(Json::as_str)
        .map(|e| format!("(cannot expand: {e})"))
        .unwrap_or_default()
}

fn title(e: &Execution, event: &str) -> String {
    match event {
        "success" => format!("medic repaired {}: {}", e.target, e.playbook),
        "failure" => format!(
            "medic could not repair {}: {} (escalated)",
            e.target, e.playbook
        ),
        "approval" => format!("medic asks approval to repair {}: {}", e.target, e.playbook),
        "vetoed" => format!("medic did not repair {}: {} (vetoed)", e.target, e.playbook),
        "dry_run" => format!("medic dry run for {}: {}", e.target, e.playbook),
        "circuit_breaker" => format!("medic paused {}: circuit breaker opened", e.playbook),
        "started" => format!("medic is repairing {}: {}", e.target, e.playbook),
        other => format!("medic {other}: {} for {}", e.playbook, e.target),
    }
}

/// What medic saw, concluded, did and verified, as text for people.
pub fn report(e: &Execution, url: &str) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}\n\n", e.summary));
    let labels: Vec<String> = e
        .trigger
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.push_str(&format!(
        "Saw: {} trigger {{{}}}\n",
        e.trigger.kind,
        labels.join(", ")
    ));
    for (k, v) in &e.evidence {
        let short = match v.get("value") {
            Some(val) if !val.is_null() => val.to_string(),
            _ => match v.get("stdout").and_then(Json::as_str) {
                Some(out) => out.trim().chars().take(120).collect(),
                None => match v.get("status") {
                    Some(st) => format!("HTTP {st}"),
                    None => v.to_string().chars().take(120).collect(),
                },
            },
        };
        s.push_str(&format!("  {k} = {short}\n"));
    }
    match &e.diagnosis {
        Some(d) => {
            let support: Vec<String> = d.support.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            s.push_str(&format!(
                "Concluded: {} because {} ({})\n",
                d.cause,
                d.when,
                support.join("; ")
            ));
        }
        None => s.push_str("Concluded: nothing\n"),
    }
    let did: Vec<String> = e
        .steps
        .iter()
        .filter(|st| {
            matches!(
                st.kind.as_str(),
                "action" | "rollback" | "approval" | "guard"
            )
        })
        .map(|st| format!("  {} {} {:?}: {}", st.kind, st.name, st.state, st.message))
        .collect();
    s.push_str(&format!("Did:\n{}\n", did.join("\n")));
    if let Some(v) = e.steps.iter().rev().find(|st| st.kind == "verify") {
        s.push_str(&format!("Verified: {}\n", v.message));
    }
    if !url.is_empty() {
        s.push_str(&format!(
            "\nExecution: {}/api/v1/medic/heal/executions/{}\n",
            url.trim_end_matches('/'),
            e.id
        ));
    } else {
        s.push_str(&format!("\nExecution: {}\n", e.id));
    }
    s
}
