//! The incident book in `medic run`: the shell around the deterministic core
//! (`medic_alert::incident`). Once a second it reads the alert manager's groups and the repairs
//! the heal engine journaled since the last look, feeds them to the book with the time, saves
//! what changed and sends the notifications the effects call for. People's actions come
//! through [`Incidents::act`] and are saved before they are answered.

mod notify;
pub mod report;
pub mod report_doc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medic_alert::incident::{
    Action, Book, Effect, Feed, GroupSnapshot, Incident, IncidentError, Level, RepairRef,
};
use medic_alert::AlertManager;
use medic_heal::journal::{Execution, StepState};
use medic_heal::kinds::StepKind;
use medic_model::{Clock, Labels};
use medic_state::IncidentStore;
use tracing::warn;

pub use notify::IncidentMetrics;

/// How often the alert groups and repairs are looked at.
pub const TICK: Duration = Duration::from_secs(1);

/// How far back an incident is dated to when its alerts began: the look's lag, not the
/// alert's whole past (an alert that fired an hour before medic heard of it opens an incident
/// now, with its targets counted from now).
const MAX_BACKDATE_MS: i64 = 5_000;

/// What the book and its feed hold.
struct Inner {
    book: Book,
    feed: Feed,
    /// Per execution, how many of its steps are already on timelines.
    reported: HashMap<String, usize>,
}

/// Why a request about incidents failed.
#[derive(Debug, thiserror::Error)]
pub enum IncidentsError {
    #[error(transparent)]
    Incident(#[from] IncidentError),
    /// The change was made in memory but could not be saved: it is undone by a restart.
    #[error("{0}")]
    Store(String),
}

/// Incidents, their store, and the alert manager they watch.
pub struct Incidents {
    inner: Mutex<Inner>,
    store: Box<dyn IncidentStore>,
    alerts: Arc<AlertManager>,
    /// Executions journaled since the last tick (the newest record of each).
    journaled: Mutex<HashMap<String, Execution>>,
    receivers: Vec<String>,
    /// Closed incidents older than this (ms) are forgotten.
    retention_ms: i64,
    clock: Arc<dyn Clock>,
    metrics: IncidentMetrics,
}

impl Incidents {
    /// Loads the incidents from `store` under `config`'s policy.
    pub fn open(
        config: &crate::config::IncidentsConfig,
        store: Box<dyn IncidentStore>,
        alerts: Arc<AlertManager>,
        clock: Arc<dyn Clock>,
        metrics: IncidentMetrics,
    ) -> Result<Arc<Incidents>, String> {
        let policy = config.policy()?;
        let known = alerts.loaded().receivers();
        for (i, r) in config.receivers.iter().enumerate() {
            if !known.contains(r) {
                return Err(format!(
                    "incidents.receivers[{i}]: no receiver named {r:?} in the alerting config"
                ));
            }
        }
        let loaded = store.load_all().map_err(|e| e.to_string())?;
        let book = Book::with_incidents(policy, loaded);
        let feed = Feed::from_book(&book);
        let me = Incidents {
            inner: Mutex::new(Inner {
                book,
                feed,
                reported: HashMap::new(),
            }),
            store,
            alerts,
            journaled: Mutex::new(HashMap::new()),
            receivers: config.receivers.clone(),
            retention_ms: config.retention.as_millis(),
            clock,
            metrics,
        };
        me.metrics.set_gauges(me.lock().book.all());
        Ok(Arc::new(me))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Every incident, newest first, filtered.
    pub fn list(&self, f: &ListFilter) -> Vec<Incident> {
        let g = self.lock();
        g.book
            .all()
            .rev()
            .filter(|i| f.status.is_none_or(|s| i.status == s))
            .filter(|i| f.level.is_none_or(|l| i.level == l))
            .filter(|i| f.since.is_none_or(|t| i.opened_at >= t))
            .take(f.limit)
            .cloned()
            .collect()
    }

    /// One incident.
    pub fn get(&self, id: u64) -> Option<Incident> {
        self.lock().book.get(id).cloned()
    }

    /// Incident `id`'s report: the stored one when it is newer than anything that happened to
    /// the incident (and `regenerate` is false), else a new one from `gather`, stored.
    pub fn report(
        &self,
        id: u64,
        regenerate: bool,
        gather: impl FnOnce(Incident) -> report::ReportData,
    ) -> Result<medic_state::StoredReport, IncidentsError> {
        let inc = self
            .get(id)
            .ok_or(IncidentsError::Incident(IncidentError::Unknown(id)))?;
        let stored = self
            .store
            .report(id)
            .map_err(|e| IncidentsError::Store(e.to_string()))?;
        if let Some(r) = stored.filter(|r| !regenerate && r.generated_at > inc.last_activity) {
            return Ok(r);
        }
        let data = gather(inc);
        let doc = report_doc::build(&data);
        let r = medic_state::StoredReport {
            id,
            generated_at: data.now,
            markdown: doc.markdown(),
            html: doc.html(),
        };
        self.store
            .save_report(&r)
            .map_err(|e| IncidentsError::Store(e.to_string()))?;
        Ok(r)
    }

    /// The clock's time (for figures up to now).
    pub fn now_ms(&self) -> i64 {
        self.now()
    }

    /// Opens an incident by hand; saved before it returns.
    pub async fn open_by_hand(
        &self,
        by: &str,
        title: &str,
        level: Level,
        key: Vec<(String, String)>,
    ) -> Result<Incident, IncidentsError> {
        let now = self.now();
        let (id, effects) = {
            let mut g = self.lock();
            let (id, effects) = g.book.open_by_hand(now, by, title, level, key)?;
            self.save(&mut g)?;
            (id, effects)
        };
        self.after(effects).await;
        Ok(self.get(id).expect("just opened"))
    }

    /// A person's action; saved before it returns.
    pub async fn act(&self, id: u64, by: &str, action: Action) -> Result<Incident, IncidentsError> {
        let now = self.now();
        let effects = {
            let mut g = self.lock();
            let effects = g.book.act(now, id, by, action)?;
            self.save(&mut g)?;
            effects
        };
        self.after(effects).await;
        Ok(self.get(id).expect("acted on"))
    }

    /// Saves what changed. Failing, the change stays in memory and is tried again at the next
    /// save (the book keeps nothing else dirty), and the caller hears of it.
    fn save(&self, g: &mut Inner) -> Result<(), IncidentsError> {
        let dirty = g.book.take_dirty();
        if dirty.is_empty() {
            return Ok(());
        }
        let res = self.store.save(&dirty);
        self.metrics.set_gauges(g.book.all());
        res.map_err(|e| {
            self.metrics.store_errors.inc();
            IncidentsError::Store(e.to_string())
        })
    }

    /// The heal engine wrote an execution's record: its new steps go to the incidents at the
    /// next tick (after the groups, so an incident opened by the same alert is there).
    pub fn journaled(&self, e: &Execution) {
        if e.dry_run {
            return;
        }
        let mut j = self.journaled.lock().unwrap_or_else(|p| p.into_inner());
        j.insert(e.id.clone(), e.clone());
    }

    /// One look: groups, repairs, escalations; saves, then notifies.
    pub async fn tick(&self) {
        let now = self.now();
        let groups = snapshot(&self.alerts, now);
        let executions: Vec<Execution> = {
            let mut j = self.journaled.lock().unwrap_or_else(|p| p.into_inner());
            j.drain().map(|(_, e)| e).collect()
        };
        let effects = {
            let mut g = self.lock();
            let Inner {
                book,
                feed,
                reported,
            } = &mut *g;
            let mut effects = feed.sync(book, now, &groups);
            for e in &executions {
                effects.extend(repair_steps(book, feed, reported, now, e));
            }
            effects.extend(book.tick(now));
            let pruned = book.prune(now - self.retention_ms);
            if !pruned.is_empty() {
                if let Err(e) = self.store.delete(&pruned) {
                    warn!(error = %e, "cannot delete incidents past their retention");
                }
            }
            if let Err(e) = self.save(&mut g) {
                warn!(error = %e, "cannot save incidents");
            }
            effects
        };
        self.after(effects).await;
    }

    /// Counts and notifies what `effects` report.
    async fn after(&self, effects: Vec<Effect>) {
        for fx in effects {
            self.metrics.count(&fx);
            let Some((id, event)) = notify::event_of(&fx) else {
                continue;
            };
            let Some(inc) = self.get(id) else { continue };
            let lines = notify::send(&self.alerts, &self.receivers, &inc, event).await;
            if lines.is_empty() {
                continue;
            }
            let now = self.now();
            let mut g = self.lock();
            for (kind, detail) in lines {
                if kind == "notification_failed" {
                    self.metrics.notification_failures.inc();
                }
                g.book
                    .record(now, id, medic_alert::incident::MEDIC, kind, &detail);
            }
            if let Err(e) = self.save(&mut g) {
                warn!(error = %e, "cannot save incidents");
            }
        }
    }

    /// Looks once a second until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => self.tick().await,
            }
        }
    }
}

/// Filters of [`Incidents::list`].
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub status: Option<medic_alert::incident::Status>,
    pub level: Option<Level>,
    pub since: Option<i64>,
    pub limit: usize,
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter {
            status: None,
            level: None,
            since: None,
            limit: 100,
        }
    }
}

/// The alert manager's firing groups as the feed wants them.
fn snapshot(am: &AlertManager, now: i64) -> Vec<GroupSnapshot> {
    am.groups(&[], None)
        .into_iter()
        .map(|g| {
            let common = common_labels(g.alerts.iter().map(|a| &a.alert.labels));
            let labels = Labels::from_pairs(
                g.labels
                    .iter()
                    .chain(common.iter())
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            );
            let mut names: Vec<&str> = g
                .alerts
                .iter()
                .filter_map(|a| a.alert.labels.get("alertname"))
                .collect();
            names.sort_unstable();
            names.dedup();
            let mut silenced_by: Vec<String> = g
                .alerts
                .iter()
                .flat_map(|a| a.silenced_by.iter().cloned())
                .collect();
            silenced_by.sort();
            silenced_by.dedup();
            GroupSnapshot {
                summary: names.join(", "),
                fingerprints: g
                    .alerts
                    .iter()
                    .map(|a| a.alert.fingerprint().to_string())
                    .collect(),
                suppressed: g.alerts.iter().all(|a| a.state() == "suppressed"),
                silenced_by,
                acked_by: g.ack.as_ref().map(|a| a.author.clone()),
                since: g
                    .alerts
                    .iter()
                    .map(|a| a.alert.starts_at)
                    .min()
                    .unwrap_or(now)
                    .clamp(now - MAX_BACKDATE_MS, now),
                labels,
                key: g.key,
            }
        })
        .collect()
}

/// The labels every one of `sets` has with the same value.
fn common_labels<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::empty();
    };
    let mut common: Vec<(String, String)> = first
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    for s in sets {
        common.retain(|(n, v)| s.get(n) == Some(v.as_str()));
    }
    Labels::from_pairs(common)
}

/// The steps of `e` not yet reported, each a line on the incidents it concerns.
fn repair_steps(
    book: &mut Book,
    feed: &Feed,
    reported: &mut HashMap<String, usize>,
    now: i64,
    e: &Execution,
) -> Vec<Effect> {
    let labels = Labels::from_pairs(e.trigger.labels.clone());
    let groups = e
        .trigger
        .fingerprint
        .as_deref()
        .map(|fp| feed.groups_of(fp))
        .unwrap_or_default();
    let from = reported.get(&e.id).copied().unwrap_or(0);
    let mut next = from;
    let mut effects = Vec::new();
    for s in e.steps.iter().skip(from) {
        if s.state == StepState::Started {
            break;
        }
        next += 1;
        let mut line = format!(
            "{} on {} (execution {}): {} {} {}",
            e.playbook,
            e.target,
            e.id,
            s.kind,
            s.name,
            s.state.as_str()
        );
        if !s.message.is_empty() {
            line.push_str(": ");
            line.push_str(&s.message);
        }
        // A log collector's first lines go on the timeline with it.
        if s.kind == StepKind::Collect {
            let excerpt = e
                .evidence
                .get(&s.name)
                .and_then(|v| medic_heal::report::log_excerpt(v, 3));
            for l in excerpt.unwrap_or_default() {
                line.push_str("\n    ");
                line.push_str(&l);
            }
        }
        let verified = s.kind == StepKind::Verify && s.state == StepState::Succeeded;
        effects.extend(book.repair(
            now,
            &RepairRef {
                at: s.ended_at.unwrap_or(s.started_at),
                execution: &e.id,
                labels: &labels,
                groups: &groups,
                step: &line,
                verified,
            },
        ));
    }
    if e.status.is_final() {
        reported.remove(&e.id);
    } else {
        reported.insert(e.id.clone(), next);
    }
    effects
}
