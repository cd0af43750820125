//! The heal engine: the async shell around the execution state machine ([`crate::machine`]).
//! It takes alerts and condition results, admits executions through the guards
//! ([`crate::machine::admit`]) and drives each one by performing the machine's effects —
//! collectors, actions, checks, journal writes, timers, notifications — and feeding their
//! results back as events. Every wait reads the injected [`Clock`].
//!
//! - `admission`: alerts, manual triggers and resume in;
//! - `perform`: the effects performed, one execution at a time;
//! - `conditions`: condition triggers and pruning.

mod admission;
mod conditions;
pub(crate) mod perform;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use medic_model::{Clock, InstantQuery};
use serde::Serialize;
use tracing::info;

use crate::guard::{self, GuardConfig, Guards, MaintenanceWindow};
pub use crate::hooks::{
    AlertInput, AlertOrigin, BoxFuture, Hooks, NoHooks, Notification, NotifyError,
};
use crate::journal::*;
use crate::machine::World;
use crate::metrics::*;
use crate::playbook::*;
use crate::trust::{Trust, TrustConfig};
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
    /// (playbook, alert fingerprint) → alert start, for alerts whose sender may not start the
    /// playbook: the refusal is audited once per alert instance.
    refused: HashMap<(String, String), i64>,
    conditions: HashMap<(String, String), CondState>,
    /// Executions waiting for a decision.
    waiters: HashMap<String, Arc<tokio::sync::Notify>>,
    decisions: HashMap<String, Decision>,
}

impl Inner {
    /// What the state machine reads and changes.
    fn world(&mut self) -> World<'_> {
        World {
            guards: &mut self.guards,
            trust: &mut self.trust,
            trust_config: self.opts.trust,
            approval_timeout: self.opts.approval_timeout,
            external_url: &self.opts.external_url,
        }
    }

    fn guard_config(&self) -> GuardConfig {
        GuardConfig {
            disabled: !self.opts.enabled,
            rate_limit: self.opts.rate_limit,
            maintenance: self.opts.maintenance.clone(),
        }
    }
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
            refused: HashMap::new(),
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
