//! The manager: loads rule files into groups, evaluates each group on its own schedule (a tokio
//! task per group, the evaluation itself on the blocking pool), hands alerts to a
//! [`Notifier`], and swaps in new rule files on reload while keeping alert state.
//!
//! A reload is all or nothing: if any file fails to load, the groups already running keep
//! running untouched and the errors are returned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medic_model::{Clock, Labels};
use medic_promql::Engine;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::anomaly::{AnomalyEvent, AnomalyRule, RuleSnapshot, SeriesDetector};
use crate::file::FileError;
use crate::group::{Group, GroupOptions, GroupStatus, Storage};
use crate::rule::{Alert, Rule};

/// An alert as it leaves the rules engine (Prometheus's notifier alert): labels with the
/// external labels added, `ends_at` in the future while firing and the resolve time once
/// resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub labels: Labels,
    pub annotations: Labels,
    /// When it started firing (ms).
    pub starts_at: i64,
    /// When it resolved, or until when it is valid unless re-sent (ms).
    pub ends_at: i64,
    /// Whether this is the resolve notification.
    pub resolved: bool,
    /// The value of the expression that fired it.
    pub value: f64,
    /// Link back to the rule's expression in medic's API.
    pub generator_url: String,
    /// Whether an anomaly rule (not a PromQL alerting rule) fired it.
    pub anomaly: bool,
}

/// Where alerts go after each evaluation: the alert manager, a log, a test. Called from the
/// blocking pool; it must not block for long (queue and return).
pub trait Notifier: Send + Sync {
    fn notify(&self, alerts: Vec<Notification>);
}

/// A notifier that drops alerts (logging them at debug level).
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, alerts: Vec<Notification>) {
        for a in alerts {
            debug!(labels = %a.labels, resolved = a.resolved, "alert");
        }
    }
}

/// Labels of the per-group metrics.
type GroupLabels = Vec<(&'static str, String)>;

/// The rule manager's metrics (Prometheus's `prometheus_rule_*` under `medic_rule_`).
#[derive(Debug, Clone)]
pub struct RuleMetrics {
    last_duration: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    interval: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    last_evaluation: Family<GroupLabels, Gauge<f64, AtomicU64>>,
    rules: Family<GroupLabels, Gauge>,
    alerts: Family<GroupLabels, Gauge>,
    evaluations: Family<GroupLabels, Counter>,
    failures: Family<GroupLabels, Counter>,
    iterations: Family<GroupLabels, Counter>,
    missed: Family<GroupLabels, Counter>,
    eval_duration: Histogram,
    notifications: Counter,
}

impl Default for RuleMetrics {
    fn default() -> Self {
        RuleMetrics {
            last_duration: Family::default(),
            interval: Family::default(),
            last_evaluation: Family::default(),
            rules: Family::default(),
            alerts: Family::default(),
            evaluations: Family::default(),
            failures: Family::default(),
            iterations: Family::default(),
            missed: Family::default(),
            eval_duration: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            notifications: Counter::default(),
        }
    }
}

impl RuleMetrics {
    /// Registers every metric under `medic_rule_`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("medic_rule");
        r.register(
            "group_last_duration_seconds",
            "Duration of the last evaluation of the group",
            self.last_duration.clone(),
        );
        r.register(
            "group_interval_seconds",
            "The group's evaluation interval",
            self.interval.clone(),
        );
        r.register(
            "group_last_evaluation_timestamp_seconds",
            "Timestamp of the group's last evaluation",
            self.last_evaluation.clone(),
        );
        r.register("group_rules", "Rules in the group", self.rules.clone());
        r.register(
            "group_alerts",
            "Pending and firing alerts of the group, by state",
            self.alerts.clone(),
        );
        r.register(
            "evaluations",
            "Rule evaluations, by group",
            self.evaluations.clone(),
        );
        r.register(
            "evaluation_failures",
            "Rule evaluations that failed (query error, limit exceeded, write refused), by group",
            self.failures.clone(),
        );
        r.register(
            "group_iterations",
            "Scheduled evaluations of the group, missed ones included",
            self.iterations.clone(),
        );
        r.register(
            "group_iterations_missed",
            "Evaluations skipped because the previous one ran past its slot",
            self.missed.clone(),
        );
        r.register(
            "group_evaluation_duration_seconds",
            "Duration of group evaluations",
            self.eval_duration.clone(),
        );
        r.register(
            "notifications_sent",
            "Alerts handed to the notifier (firing re-sends and resolves included)",
            self.notifications.clone(),
        );
    }

    fn forget(&self, l: &GroupLabels) {
        self.last_duration.remove(l);
        self.interval.remove(l);
        self.last_evaluation.remove(l);
        self.rules.remove(l);
        self.evaluations.remove(l);
        self.failures.remove(l);
        self.iterations.remove(l);
        self.missed.remove(l);
        for state in ["pending", "firing"] {
            let mut with = l.clone();
            with.push(("state", state.into()));
            self.alerts.remove(&with);
        }
    }
}

/// One running group.
struct Slot {
    group: Mutex<Group>,
    status: Mutex<Arc<GroupStatus>>,
    labels: GroupLabels,
    stopped: AtomicBool,
    stop: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Slot {
    fn new(group: Group) -> Arc<Slot> {
        let labels = vec![(
            "rule_group",
            format!("{};{}", group.file.display(), group.name),
        )];
        Arc::new(Slot {
            status: Mutex::new(Arc::new(group.status())),
            group: Mutex::new(group),
            labels,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            task: Mutex::new(None),
        })
    }

    fn group(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal_stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop.notify_one();
    }
}

/// What a successful [`Manager::update`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    pub files: usize,
    pub groups: usize,
    pub rules: usize,
}

/// Schedules and evaluates rule groups; see the module docs.
pub struct Manager {
    engine: Engine,
    store: Arc<dyn Storage>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    metrics: RuleMetrics,
    runtime: tokio::runtime::Handle,
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Serialises updates (a SIGHUP and a `/-/reload` at once).
    updating: Mutex<()>,
    /// Anomaly detectors read from a snapshot, waiting for their rules to load.
    pending_detectors: Mutex<HashMap<(String, String), RuleSnapshot>>,
    /// The log store LogQL rules read (none: log rules fail with a clear error).
    logs: Mutex<Option<crate::rule::LogSource>>,
    /// The external store that answers the rules' PromQL (none: the embedded engine).
    backend: Mutex<Option<crate::backend::QueryBackend>>,
}

/// One series' detector as the anomaly API shows it.
#[derive(Debug, Clone)]
pub struct SeriesView {
    pub rule: String,
    pub params: medic_anomaly::Params,
    pub series: SeriesDetector,
}

impl Manager {
    /// A manager with no groups. Must be called inside a tokio runtime, where it will run the
    /// group tasks.
    pub fn new(
        engine: Engine,
        store: Arc<dyn Storage>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        metrics: RuleMetrics,
    ) -> Arc<Manager> {
        Arc::new(Manager {
            engine,
            store,
            notifier,
            clock,
            metrics,
            runtime: tokio::runtime::Handle::current(),
            slots: Mutex::new(Vec::new()),
            updating: Mutex::new(()),
            pending_detectors: Mutex::new(HashMap::new()),
            logs: Mutex::new(None),
            backend: Mutex::new(None),
        })
    }

    /// Sets the log store that LogQL rules (Loki ruler files) read.
    pub fn set_log_source(&self, logs: crate::rule::LogSource) {
        *self.logs.lock().unwrap_or_else(|e| e.into_inner()) = Some(logs);
    }

    /// Sends the rules' PromQL to an external store from the next load on (`query.backend`).
    pub fn set_query_backend(&self, backend: crate::backend::QueryBackend) {
        *self.backend.lock().unwrap_or_else(|e| e.into_inner()) = Some(backend);
    }

    /// Loads `files` and replaces the running groups with theirs. Groups that survive (same
    /// file and name) keep their alerts, `for` timers and schedule; removed groups stop and
    /// their series are marked stale. If any file fails, nothing changes and every error is
    /// returned. Blocks while a replaced group finishes an evaluation in progress.
    pub fn update(
        self: &Arc<Self>,
        files: &[PathBuf],
        opts: &GroupOptions,
    ) -> Result<UpdateSummary, Vec<FileError>> {
        self.update_with_logs(files, &[], opts)
    }

    /// [`Manager::update`] with Loki ruler files (LogQL rules) beside the Prometheus ones.
    pub fn update_with_logs(
        self: &Arc<Self>,
        files: &[PathBuf],
        log_files: &[PathBuf],
        opts: &GroupOptions,
    ) -> Result<UpdateSummary, Vec<FileError>> {
        let _serial = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut groups = load_groups(files, log_files, opts, logs)?;
        let backend = self
            .backend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for g in &mut groups {
            g.backend = backend.clone();
        }
        let summary = UpdateSummary {
            files: files.len() + log_files.len(),
            groups: groups.len(),
            rules: groups.iter().map(|g| g.rules.len()).sum(),
        };

        // The old groups stay visible to the API until the new ones replace them.
        let old: Vec<Arc<Slot>> = self.slots_lock().clone();
        let mut old_by_key: HashMap<(PathBuf, String), Arc<Slot>> = old
            .into_iter()
            .map(|s| {
                let key = s.group().key();
                (key, s)
            })
            .collect();
        let mut new_slots = Vec::with_capacity(groups.len());
        for mut g in groups {
            if let Some(prev) = old_by_key.remove(&g.key()) {
                prev.signal_stop();
                // Waits for an evaluation in progress; the task checks `stopped` under this
                // lock, so none starts after.
                g.copy_state(&mut prev.group());
                self.metrics.forget(&prev.labels);
            }
            self.restore_detectors(&mut g);
            new_slots.push(Slot::new(g));
        }
        let now = self.clock.now_ms();
        for (_, gone) in old_by_key {
            gone.signal_stop();
            let mut g = gone.group();
            if let Err(e) = g.mark_all_stale(&*self.store, now) {
                warn!(group = %g.name, error = %e, "could not mark a removed group's series stale");
            }
            self.metrics.forget(&gone.labels);
        }
        for slot in &new_slots {
            let interval = slot.group().interval.as_secs_f64();
            self.metrics
                .interval
                .get_or_create(&slot.labels)
                .set(interval);
            let n = slot.group().rules.len() as i64;
            self.metrics.rules.get_or_create(&slot.labels).set(n);
            // Counters exist at 0 from the start, so `rate()` and `increase()` see the first
            // failure.
            for c in [
                &self.metrics.evaluations,
                &self.metrics.failures,
                &self.metrics.iterations,
                &self.metrics.missed,
            ] {
                let _ = c.get_or_create(&slot.labels);
            }
            let task = self.runtime.spawn(self.clone().run_group(slot.clone()));
            *slot.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        *self.slots_lock() = new_slots;
        info!(
            files = summary.files,
            groups = summary.groups,
            rules = summary.rules,
            "rules loaded"
        );
        Ok(summary)
    }

    /// Gives anomaly rules that have no detectors yet the ones a snapshot holds for them.
    fn restore_detectors(&self, g: &mut Group) {
        let mut pending = self
            .pending_detectors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return;
        }
        for r in &mut g.rules {
            if let Rule::Anomaly(a) = r {
                if a.detectors.is_empty() {
                    let key = (a.alerting.name.clone(), a.alerting.query.clone());
                    if let Some(snap) = pending.remove(&key) {
                        info!(rule = %key.0, series = snap.series.len(), "anomaly detectors restored");
                        a.restore(snap);
                    }
                }
            }
        }
    }

    /// Detectors to give anomaly rules of the same name and query when they load (after a
    /// restart); the next [`Manager::update`] applies them.
    pub fn restore_anomalies(&self, snaps: Vec<RuleSnapshot>) {
        let mut pending = self
            .pending_detectors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for s in snaps {
            pending.insert((s.name.clone(), s.query.clone()), s);
        }
    }

    /// Every anomaly rule's detectors, to save.
    pub fn anomaly_snapshots(&self) -> Vec<RuleSnapshot> {
        self.each_anomaly_rule(|_, a| a.snapshot())
    }

    /// Recent anomalies of every anomaly rule, oldest first.
    pub fn anomaly_events(&self) -> Vec<AnomalyEvent> {
        let mut v: Vec<AnomalyEvent> = self
            .each_anomaly_rule(|_, a| a.events())
            .into_iter()
            .flatten()
            .collect();
        v.sort_by_key(|e| e.start);
        v
    }

    /// Every series' detector.
    pub fn anomaly_series(&self) -> Vec<SeriesView> {
        let mut v: Vec<SeriesView> = self
            .each_anomaly_rule(|_, a| {
                a.detectors
                    .values()
                    .map(|sd| SeriesView {
                        rule: a.name().to_string(),
                        params: a.params,
                        series: sd.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect();
        v.sort_by(|a, b| (&a.rule, &a.series.labels).cmp(&(&b.rule, &b.series.labels)));
        v
    }

    fn each_anomaly_rule<T>(&self, mut f: impl FnMut(&Group, &AnomalyRule) -> T) -> Vec<T> {
        let slots: Vec<Arc<Slot>> = self.slots_lock().clone();
        let mut out = Vec::new();
        for s in slots {
            let g = s.group();
            for r in &g.rules {
                if let Rule::Anomaly(a) = r {
                    out.push(f(&g, a));
                }
            }
        }
        out
    }

    fn slots_lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The groups as of their last evaluation, in file order.
    pub fn groups(&self) -> Vec<Arc<GroupStatus>> {
        self.slots_lock()
            .iter()
            .map(|s| s.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Stops every group and waits for evaluations in progress to finish.
    pub async fn stop(&self) {
        let slots: Vec<Arc<Slot>> = self.slots_lock().clone();
        for s in &slots {
            s.signal_stop();
        }
        for s in &slots {
            let task = s.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(t) = task {
                let _ = t.await;
            }
        }
    }

    /// A group's loop: sleep to the next slot, evaluate, repeat; slots that passed while an
    /// evaluation ran long are counted as missed and skipped.
    async fn run_group(self: Arc<Self>, slot: Arc<Slot>) {
        let (interval, mut next) = {
            let g = slot.group();
            (
                g.interval.as_millis().max(1) as i64,
                g.next_eval(self.clock.now_ms()),
            )
        };
        loop {
            let wait = (next - self.clock.now_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = slot.stop.notified() => {}
            }
            if slot.stopped.load(Ordering::SeqCst) {
                return;
            }
            let (me, s) = (self.clone(), slot.clone());
            let ts = next;
            if tokio::task::spawn_blocking(move || me.eval_slot(&s, ts))
                .await
                .is_err()
            {
                warn!(group = %slot.labels[0].1, "rule group evaluation panicked");
            }
            self.metrics.iterations.get_or_create(&slot.labels).inc();
            next += interval;
            let now = self.clock.now_ms();
            if next <= now {
                let missed = (now - next) / interval + 1;
                next += missed * interval;
                self.metrics
                    .missed
                    .get_or_create(&slot.labels)
                    .inc_by(missed as u64);
                self.metrics
                    .iterations
                    .get_or_create(&slot.labels)
                    .inc_by(missed as u64);
                warn!(group = %slot.labels[0].1, missed, "rule group evaluation took longer than its interval");
            }
        }
    }

    /// One evaluation of one group at `ts`, then its alerts to the notifier.
    fn eval_slot(&self, slot: &Slot, ts: i64) {
        let (sent, status) = {
            let mut g = slot.group();
            if slot.stopped.load(Ordering::SeqCst) {
                return;
            }
            let failures_before = g.failures;
            g.eval(&self.engine, &self.store, ts);
            let m = &self.metrics;
            m.evaluations
                .get_or_create(&slot.labels)
                .inc_by(g.rules.len() as u64);
            m.failures
                .get_or_create(&slot.labels)
                .inc_by(g.failures - failures_before);
            m.last_duration
                .get_or_create(&slot.labels)
                .set(g.last_duration.as_secs_f64());
            m.eval_duration.observe(g.last_duration.as_secs_f64());
            m.last_evaluation
                .get_or_create(&slot.labels)
                .set(ts as f64 / 1000.0);
            let sent = g.alerts_to_send(ts);
            let status = g.status();
            let notifications: Vec<Notification> = sent
                .iter()
                .map(|(q, a, anomaly)| to_notification(q, a, *anomaly, &g))
                .collect();
            (notifications, status)
        };
        let (mut pending, mut firing) = (0, 0);
        for r in &status.rules {
            for a in r.alerting.iter().flat_map(|x| &x.alerts) {
                match a.state {
                    crate::AlertState::Pending => pending += 1,
                    crate::AlertState::Firing => firing += 1,
                    crate::AlertState::Inactive => {}
                }
            }
        }
        for (state, n) in [("pending", pending), ("firing", firing)] {
            let mut l = slot.labels.clone();
            l.push(("state", state.into()));
            self.metrics.alerts.get_or_create(&l).set(n);
        }
        *slot.status.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(status);
        if !sent.is_empty() {
            self.metrics.notifications.inc_by(sent.len() as u64);
            self.notifier.notify(sent);
        }
    }
}

/// Loads rule files (Prometheus's, then Loki ruler files) into groups, as a reload does; every
/// error of every file, or the groups. What `medic replay` runs, too.
pub fn load_groups(
    files: &[PathBuf],
    log_files: &[PathBuf],
    opts: &GroupOptions,
    logs: Option<crate::rule::LogSource>,
) -> Result<Vec<Group>, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let loaded = files
        .iter()
        .map(|f| (f, crate::file::load(f, false)))
        .chain(log_files.iter().map(|f| (f, crate::file::load_logql(f))));
    for (f, file) in loaded {
        match file {
            Ok(rf) => {
                for spec in &rf.groups {
                    match Group::new(spec, f.clone(), opts.clone()) {
                        Ok(mut g) => {
                            g.logs = logs.clone();
                            groups.push(g)
                        }
                        Err(e) => errors.push(FileError {
                            file: f.clone(),
                            line: None,
                            message: format!("group {:?}: {e}", spec.name),
                        }),
                    }
                }
            }
            Err(es) => errors.extend(es),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Prometheus's `sendAlerts`: firing alerts end at `valid_until`, resolved ones at their
/// resolve time; external labels are added where the alert lacks them.
pub fn to_notification(rule_query: &str, a: &Alert, anomaly: bool, g: &Group) -> Notification {
    let mut b = a.public_labels().to_builder();
    for l in g.external_labels().iter() {
        if a.labels.get(&l.name).is_none() {
            b.set(l.name.clone(), l.value.clone());
        }
    }
    let resolved = a.resolved_at != 0;
    Notification {
        labels: b.build(),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at,
        ends_at: if resolved {
            a.resolved_at
        } else {
            a.valid_until
        },
        resolved,
        value: a.value,
        generator_url: generator_url(g.external_url(), rule_query),
        anomaly,
    }
}

/// `<external_url>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links alerts to their rule.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    format!(
        "{}/graph?g0.expr={q}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

/// Expands rule-file globs; relative patterns are taken from `base` (the config file's
/// directory, as Prometheus does). A pattern that matches nothing is not an error (Prometheus
/// neither), but an invalid pattern is.
pub fn expand_globs(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in patterns {
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let pattern = full.to_string_lossy();
        let paths = glob::glob(&pattern).map_err(|e| format!("rule_files: {p:?}: {e}"))?;
        let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        matched.sort();
        for m in matched {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}
