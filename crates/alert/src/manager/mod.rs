//! The alert manager as a running service: receives alerts (API, rules, webhooks), keeps them
//! with silences, acks and the notification log in durable state, dispatches groups on their
//! timers and runs the pipeline for each flush, sending on tokio tasks so a slow or dead
//! receiver never holds up another.

mod delivery;
mod silences;
mod upkeep;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medic_model::{Clock, Labels, Matcher};
use tracing::{debug, info, warn};

use crate::ack::Ack;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Flush};
use crate::inhibit::Inhibitor;
use crate::metrics::{
    AlertMetrics, FailureLabels, IntegrationLabels, KindLabel, QuietLabel, StateLabel, StatusLabel,
};
use crate::nflog::Nflog;
use crate::notify::{build_receiver, Integration, NotifyError};
use crate::pipeline::{self, Delivery, EscalationStep, IntegrationInfo, Quiet, Stages};
use crate::route::Route;
use crate::silence::{Silence, SilenceError, SilenceState, Silences};
use crate::state::{Event, EventKind, HistoryQuery, StateError, StateStore};
use crate::template::{Data, Templates};
use crate::timeinterval::TimeInterval;
use crate::types::{Alert, Fingerprint, Status};
use crate::Error;

/// An escalation policy as configured in medic.yml.
#[derive(Debug, Clone)]
pub struct EscalationPolicy {
    pub name: String,
    pub matchers: Vec<Matcher>,
    /// `(after ms, receiver)`, in order.
    pub steps: Vec<(i64, String)>,
}

/// A configuration ready to run: the parsed file, the routing tree, receivers with their
/// templates parsed, and the named time intervals.
pub struct Loaded {
    pub config: Config,
    /// The file's text with secrets replaced, for `/api/v2/status`.
    pub original: String,
    pub route: Arc<Route>,
    integrations: HashMap<String, Vec<Arc<Integration>>>,
    infos: HashMap<String, Vec<IntegrationInfo>>,
    intervals: HashMap<String, Vec<TimeInterval>>,
    escalations: Vec<EscalationStep>,
}

impl Loaded {
    /// A simulation of this configuration (routing, grouping, inhibition, time intervals,
    /// escalation) starting at `now`, delivering nothing (`medic replay`).
    pub fn simulation(&self, now: i64) -> crate::sim::Simulation {
        crate::sim::Simulation::new(
            &self.config,
            self.infos.clone(),
            self.escalations.clone(),
            now,
        )
    }

    /// Loads an Alertmanager configuration file with its templates, and checks the escalation
    /// policies against its receivers. Errors name the file and the field.
    pub fn load(path: &Path, escalations: &[EscalationPolicy]) -> Result<Loaded, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Loaded::parse(&text, path, escalations)
    }

    /// As [`Loaded::load`], from text (`path` names it and anchors relative template paths).
    pub fn parse(
        text: &str,
        path: &Path,
        escalations: &[EscalationPolicy],
    ) -> Result<Loaded, Error> {
        let config = Config::parse(text, path)?;
        let err = |message: String| Error::Config {
            file: path.to_path_buf(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let files = config.template_files(base).map_err(err)?;
        let templates = Templates::load(&files).map_err(err)?;
        let mut integrations = HashMap::new();
        let mut infos = HashMap::new();
        for r in &config.receivers {
            let built = build_receiver(r, &config.global, &templates).map_err(err)?;
            infos.insert(
                r.name.clone(),
                built
                    .iter()
                    .map(|i| IntegrationInfo {
                        name: i.name(),
                        send_resolved: i.send_resolved,
                    })
                    .collect(),
            );
            integrations.insert(r.name.clone(), built.into_iter().map(Arc::new).collect());
        }
        let intervals = config
            .named_intervals()
            .map(|n| (n.name.clone(), n.time_intervals.clone()))
            .collect();
        let mut steps = Vec::new();
        for p in escalations {
            for (after, receiver) in &p.steps {
                if !integrations.contains_key(receiver) {
                    return Err(err(format!(
                        "escalation policy {:?}: receiver {receiver:?} is not defined in this file",
                        p.name
                    )));
                }
                steps.push(EscalationStep {
                    policy: p.name.clone(),
                    matchers: p.matchers.clone(),
                    after: *after,
                    receiver: receiver.clone(),
                });
            }
        }
        let route = Arc::new(Route::new(config.route.as_ref().expect("validated")));
        Ok(Loaded {
            original: crate::config::redact(text),
            config,
            route,
            integrations,
            infos,
            intervals,
            escalations: steps,
        })
    }

    /// Receiver names.
    /// Receiver names in the order the configuration lists them (as Alertmanager's
    /// `/api/v2/receivers`).
    pub fn receivers(&self) -> Vec<String> {
        self.config
            .receivers
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
}

/// Settings that are not in alertmanager.yml.
#[derive(Debug, Clone)]
pub struct Options {
    /// The URL medic is reached at, for links in messages.
    pub external_url: String,
    /// How long expired silences and old log entries are kept.
    pub data_retention: i64,
    /// How long history is kept.
    pub history_retention: i64,
    /// Upper bound on retrying one message (the group interval bounds it too).
    pub max_retry: Duration,
    /// How long a flapping alert (`flapping="true"`, set by medic's rules) that resolved is
    /// still shown as firing, so its flips are not each sent.
    pub flap_hold: i64,
    /// Alerts held at once from outside (the API, webhooks); a batch that would pass it is
    /// refused whole. medic's own rules are not limited (their series bound them). 0: none.
    pub max_alerts: usize,
    /// Limits on silences, as Alertmanager's flags.
    pub silence_limits: crate::silence::SilenceLimits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            external_url: String::new(),
            data_retention: 120 * 3_600_000,
            history_retention: 30 * 86_400_000,
            max_retry: Duration::from_secs(300),
            flap_hold: 15 * 60_000,
            max_alerts: 0,
            silence_limits: Default::default(),
        }
    }
}

struct Inner {
    loaded: Arc<Loaded>,
    alerts: HashMap<Fingerprint, Arc<Alert>>,
    /// Label names and values shared by the alerts held (most repeat: `alertname`, `job`,
    /// `severity`, their values); unused ones are dropped at garbage collection.
    interned: HashSet<Arc<str>>,
    /// `expire_on_resolve` silences that have silenced a firing alert.
    eor_seen: HashSet<String>,
    /// State changes of flapping alerts (ms), for the summary in their messages.
    flaps: HashMap<Fingerprint, Vec<i64>>,
    dispatcher: Dispatcher,
    inhibitor: Inhibitor,
    silences: Silences,
    nflog: Nflog,
    acks: HashMap<String, Ack>,
    /// Alerts a repair is working on, with the note their messages carry.
    repairs: HashMap<Fingerprint, String>,
}

/// The running alert manager.
pub struct AlertManager {
    inner: Mutex<Inner>,
    /// Held while writing state, taken before `inner` is released, so writes reach the store
    /// in the order they were decided.
    persist: Mutex<()>,
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    wake: tokio::sync::Notify,
    metrics: Arc<AlertMetrics>,
    opts: Options,
    started_at: i64,
    observer: Mutex<Option<AlertObserver>>,
    fence: Mutex<Option<SendFence>>,
}

/// Asked right before each notification is sent: `false` when this process may no longer
/// send (a replica that lost the leader lease); the notification is then neither sent nor
/// logged as sent.
pub type SendFence = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync,
>;

/// Called with every alert a `put` stored (merged), after it is durable: how the heal engine
/// hears of alerts from every source.
pub type AlertObserver = Arc<dyn Fn(&[Arc<Alert>]) + Send + Sync>;

/// An alert with its current status, for the API.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub alert: Arc<Alert>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
    pub receivers: Vec<String>,
}

impl AlertView {
    /// `active`, `suppressed` or (never here) `unprocessed`.
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// A group, for the API.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub key: String,
    pub labels: Labels,
    pub receiver: String,
    pub alerts: Vec<AlertView>,
    pub ack: Option<Ack>,
}

/// Filters for listing alerts.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub matchers: Vec<Matcher>,
    pub receiver: Option<regex::Regex>,
    pub active: bool,
    pub silenced: bool,
    pub inhibited: bool,
    /// Also list alerts that have resolved but are still held.
    pub resolved: bool,
}

impl AlertManager {
    /// Starts from durable state with a loaded configuration.
    pub fn new(
        loaded: Loaded,
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<AlertMetrics>,
        opts: Options,
    ) -> Result<Arc<Self>, Error> {
        let now = clock.now_ms();
        let loaded = Arc::new(loaded);
        let st = |e: StateError| Error::State(e.0);
        let resolve_timeout = loaded.config.global.resolve_timeout.0;
        let mut alerts = HashMap::new();
        let mut interned = HashSet::new();
        for mut a in state.load_alerts().map_err(st)? {
            a.labels = intern_labels(&mut interned, &a.labels);
            // Senders re-send firing alerts, and a firing alert's moving end is not written at
            // every re-send; give firing alerts one resolve timeout after the restart. Not an
            // alert whose end medic set itself (posted without `endsAt`): that end is written
            // at every re-send, and extending it at each restart would keep an alert firing
            // for ever through a crash loop shorter than the timeout.
            if a.ends_at != 0 && !a.timeout && !a.resolved_at(a.updated_at) {
                a.ends_at = a.ends_at.max(now + resolve_timeout);
            }
            alerts.insert(a.fingerprint(), Arc::new(a));
        }
        let mut silences = Silences::from_saved(state.load_silences().map_err(st)?);
        silences.set_limits(opts.silence_limits);
        let nflog = Nflog::from_saved(state.load_nflog().map_err(st)?);
        let acks = state
            .load_acks()
            .map_err(st)?
            .into_iter()
            .map(|a| (a.group_key.clone(), a))
            .collect();
        info!(
            alerts = alerts.len(),
            silences = silences.len(),
            nflog = nflog.len(),
            "alert manager state loaded"
        );
        let mut inner = Inner {
            dispatcher: Dispatcher::new(loaded.route.clone()),
            inhibitor: Inhibitor::new(&loaded.config.inhibit_rules),
            loaded,
            alerts,
            interned,
            eor_seen: HashSet::new(),
            flaps: HashMap::new(),
            silences,
            nflog,
            acks,
            repairs: HashMap::new(),
        };
        rebuild(&mut inner, now);
        Ok(Arc::new(AlertManager {
            inner: Mutex::new(inner),
            persist: Mutex::new(()),
            state,
            clock,
            wake: tokio::sync::Notify::new(),
            metrics,
            opts,
            started_at: now,
            observer: Mutex::new(None),
            fence: Mutex::new(None),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current time of the manager's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// When the manager started (ms).
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// The configuration in use.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.lock().loaded.clone()
    }

    /// Swaps in a new configuration: the routing tree, inhibit rules and receivers change;
    /// alerts, silences, acks and the log stay. Groups start again and send at once what the
    /// log says they have not sent.
    pub fn apply(&self, loaded: Loaded) {
        let now = self.now();
        let mut g = self.lock();
        g.loaded = Arc::new(loaded);
        g.dispatcher = Dispatcher::new(g.loaded.route.clone());
        g.inhibitor = Inhibitor::new(&g.loaded.config.inhibit_rules);
        rebuild(&mut g, now);
        drop(g);
        self.wake.notify_one();
    }

    /// Stores received alerts, all or none: an invalid alert refuses the whole batch. Returns
    /// once they are durable.
    /// Invalid alerts are refused and counted, the valid ones of the batch stored; then
    /// `Error::Invalid` names the refused ones (`alert N: why`), as Alertmanager answers.
    pub fn put(&self, batch: Vec<Alert>) -> Result<(), Error> {
        let mut refused = Vec::new();
        let batch: Vec<Alert> = batch
            .into_iter()
            .enumerate()
            .filter_map(|(i, a)| match validate_alert(&a) {
                Ok(()) => Some(a),
                Err(e) => {
                    self.metrics.invalid.inc();
                    refused.push(format!("alert {i}: {e}"));
                    None
                }
            })
            .collect();
        let now = self.now();
        let mut to_save = Vec::new();
        let mut events = Vec::new();
        let mut stored = Vec::new();
        let mut g = self.lock();
        if self.opts.max_alerts > 0 {
            let new: std::collections::HashSet<Fingerprint> = batch
                .iter()
                .filter(|a| !a.source.is_own())
                .map(|a| a.fingerprint())
                .filter(|fp| !g.alerts.contains_key(fp))
                .collect();
            if !new.is_empty() && g.alerts.len() + new.len() > self.opts.max_alerts {
                self.metrics.refused_over_limit.inc_by(new.len() as u64);
                return Err(Error::Limit(format!(
                    "{} new alerts would pass the limit of {} held alerts (alerting.max_alerts; {} held); nothing in this batch was stored",
                    new.len(),
                    self.opts.max_alerts,
                    g.alerts.len()
                )));
            }
        }
        for mut a in batch {
            a.updated_at = now;
            a.labels = intern_labels(&mut g.interned, &a.labels);
            let fp = a.fingerprint();
            let old = g.alerts.get(&fp).cloned();
            let merged = match &old {
                Some(o) if o.overlaps(&a) => o.merge(&a),
                _ => a,
            };
            let status = merged.status(now);
            self.metrics
                .received
                .get_or_create(&StatusLabel {
                    status: status.as_str().into(),
                })
                .inc();
            let was = old.as_ref().map(|o| o.status(now));
            // Re-sends that only move a firing alert's end forward are not written: after a
            // restart, firing alerts get at least `resolve_timeout` anyway (see `new`) — except
            // an end medic set itself, which is written so that a restart keeps it.
            let changed = match &old {
                None => true,
                Some(o) => {
                    o.annotations != merged.annotations
                        || o.starts_at != merged.starts_at
                        || o.resolved_at(now) != merged.resolved_at(now)
                        || (merged.resolved_at(now) && o.ends_at != merged.ends_at)
                        || (merged.timeout && o.ends_at != merged.ends_at)
                        || o.generator_url != merged.generator_url
                        || o.value != merged.value
                }
            };
            if was.is_some_and(|w| w != status) && merged.labels.get("flapping") == Some("true") {
                g.flaps.entry(fp).or_default().push(now);
            }
            if was != Some(status) && !(was.is_none() && status == Status::Resolved) {
                events.push(Event {
                    at: now,
                    kind: if status == Status::Firing {
                        EventKind::Firing
                    } else {
                        EventKind::Resolved
                    },
                    fingerprint: Some(fp),
                    labels: merged.labels.clone(),
                    group_key: String::new(),
                    receiver: String::new(),
                    detail: String::new(),
                    author: String::new(),
                });
            }
            let merged = Arc::new(merged);
            g.inhibitor.observe(&merged);
            g.dispatcher.insert(merged.clone(), now);
            g.alerts.insert(fp, merged.clone());
            stored.push(merged.clone());
            if changed {
                to_save.push(merged);
            }
        }
        // Queued under the lock, so writes keep the order of the decisions; waited for
        // outside it, so concurrent requests share one commit.
        let ticket = (!to_save.is_empty() || !events.is_empty())
            .then(|| self.state.queue_alerts(to_save, events));
        drop(g);
        self.wake.notify_one();
        if let Some(t) = ticket {
            t.wait().map_err(|e| {
                self.metrics.state_errors.inc();
                Error::State(e.0)
            })?;
        }
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(obs) = observer {
            obs(&stored);
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(refused.join("; ")))
        }
    }

    /// Sets the function told of stored alerts (see [`AlertObserver`]).
    pub fn set_observer(&self, f: AlertObserver) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// Fences every later notification with `f` (see [`SendFence`]).
    pub fn set_send_fence(&self, f: SendFence) {
        *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// The alert with this fingerprint, if held.
    pub fn get(&self, fp: Fingerprint) -> Option<Arc<Alert>> {
        self.lock().alerts.get(&fp).cloned()
    }

    /// Marks an alert as under repair with a note its messages carry (`medic_repair`
    /// annotation); while every firing alert of a group is under repair, the group is not
    /// repeated or escalated. `None` ends the mark.
    pub fn set_repair(&self, fp: Fingerprint, note: Option<String>) {
        let mut g = self.lock();
        match note {
            Some(n) => {
                g.repairs.insert(fp, n);
            }
            None => {
                g.repairs.remove(&fp);
            }
        }
    }

    /// Sends a document (a report) to every integration of `receiver`, with the retries of
    /// notifications; the errors, one per integration that failed.
    pub async fn send_document(
        &self,
        receiver: &str,
        doc: &crate::notify::Document,
    ) -> Result<(), String> {
        let doc = Arc::new(doc.clone());
        self.to_each_integration(receiver, |integ, _now| {
            let doc = doc.clone();
            async move { integ.send_document(&doc).await }
        })
        .await
    }

    /// Calls `send` for each integration of `receiver`, retrying a retryable failure with
    /// backoff while `max_retry` allows, as a group's notification is retried; the failures,
    /// one per integration, each naming it.
    async fn to_each_integration<F, Fut>(&self, receiver: &str, send: F) -> Result<(), String>
    where
        F: Fn(Arc<crate::notify::Integration>, i64) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::notify::NotifyError>>,
    {
        let fence = self.fence.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(fence) = fence {
            if !fence().await {
                return Err("this replica may no longer send".into());
            }
        }
        let loaded = self.loaded();
        let integs = loaded
            .integrations
            .get(receiver)
            .ok_or_else(|| format!("no receiver named {receiver:?}"))?
            .clone();
        let mut errors = Vec::new();
        for integ in integs {
            let mut backoff = Duration::from_millis(500);
            let started = tokio::time::Instant::now();
            loop {
                match send(integ.clone(), self.now()).await {
                    Ok(()) => break,
                    Err(e) if e.retryable && started.elapsed() + backoff < self.opts.max_retry => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    Err(e) => {
                        errors.push(format!("{receiver}/{}: {e}", integ.name()));
                        break;
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Sends a message straight to a receiver's integrations (no routing, grouping or
    /// dedup): for the heal engine's reports. Retries like a group's notification.
    pub async fn send_direct(&self, receiver: &str, alerts: Vec<Alert>) -> Result<(), String> {
        if !self.loaded().integrations.contains_key(receiver) {
            return Err(format!("no receiver named {receiver:?}"));
        }
        let group_labels = alerts
            .first()
            .map(|a| {
                Labels::from_pairs(
                    a.labels
                        .iter()
                        .filter(|l| &*l.name == "alertname" || &*l.name == "playbook")
                        .map(|l| (&*l.name, &*l.value)),
                )
            })
            .unwrap_or_else(Labels::empty);
        let group_key = Arc::new(format!("{{}}/{{medic=\"heal\"}}:{group_labels}"));
        let data = Arc::new(Data::new(
            receiver,
            &group_labels,
            alerts,
            self.now(),
            &self.opts.external_url,
        ));
        self.to_each_integration(receiver, |integ, now| {
            let (data, group_key) = (data.clone(), group_key.clone());
            async move { integ.notify(&data, &group_key, now).await }
        })
        .await
    }

    fn record(&self, events: &[Event]) {
        if let Err(e) = self.state.record(events) {
            self.metrics.state_errors.inc();
            warn!(error = %e, "cannot record alert history");
        }
    }

    /// Alerts with their status, filtered, sorted by fingerprint.
    pub fn alerts(&self, f: &AlertFilter) -> Vec<AlertView> {
        let now = self.now();
        let g = self.lock();
        let mut out: Vec<AlertView> = g
            .alerts
            .values()
            .filter(|a| f.resolved || !a.resolved_at(now))
            .filter(|a| crate::matchers::matches_all(&f.matchers, &a.labels))
            .filter_map(|a| {
                let v = view(&g, a, now);
                if let Some(re) = &f.receiver {
                    if !v.receivers.iter().any(|r| re.is_match(r)) {
                        return None;
                    }
                }
                let keep = (f.active || v.state() != "active")
                    && (f.silenced || v.silenced_by.is_empty())
                    && (f.inhibited || v.inhibited_by.is_empty());
                keep.then_some(v)
            })
            .collect();
        out.sort_by_key(|v| v.alert.fingerprint());
        out
    }

    /// The dispatcher's groups with their alerts.
    pub fn groups(&self, matchers: &[Matcher], receiver: Option<&regex::Regex>) -> Vec<GroupView> {
        let now = self.now();
        let g = self.lock();
        let mut out: Vec<GroupView> = g
            .dispatcher
            .groups()
            .filter(|grp| receiver.is_none_or(|r| r.is_match(&grp.receiver)))
            .filter_map(|grp| {
                let mut alerts: Vec<AlertView> = grp
                    .alerts
                    .values()
                    .filter(|a| !a.resolved_at(now))
                    .filter(|a| crate::matchers::matches_all(matchers, &a.labels))
                    .map(|a| {
                        let mut v = view(&g, a, now);
                        // As Alertmanager: with a receiver filter, an alert lists only the
                        // receivers that pass it.
                        if let Some(r) = receiver {
                            v.receivers.retain(|x| r.is_match(x));
                        }
                        v
                    })
                    .collect();
                if alerts.is_empty() {
                    return None;
                }
                alerts
                    .sort_by(|a, b| crate::dispatch::alert_order(&a.alert.labels, &b.alert.labels));
                Some(GroupView {
                    key: grp.key.clone(),
                    labels: grp.labels.clone(),
                    receiver: grp.receiver.clone(),
                    alerts,
                    ack: g.acks.get(&grp.key).filter(|a| a.expires_at > now).cloned(),
                })
            })
            .collect();
        // Alertmanager's order (`dispatch.AlertGroups.Less`): by label set, then receiver.
        out.sort_by(|a, b| {
            crate::dispatch::labels_order(&a.labels, &b.labels)
                .then_with(|| a.receiver.cmp(&b.receiver))
        });
        out
    }
}

fn view(g: &Inner, a: &Arc<Alert>, now: i64) -> AlertView {
    let mut seen = HashSet::new();
    AlertView {
        alert: a.clone(),
        silenced_by: g.silences.mutes(&a.labels, now),
        inhibited_by: g
            .inhibitor
            .mutes(&a.labels, now)
            .map(|f| vec![f.to_string()])
            .unwrap_or_default(),
        receivers: g
            .loaded
            .route
            .matches(&a.labels)
            .into_iter()
            .map(|r| r.opts.receiver.clone())
            .filter(|r| seen.insert(r.clone()))
            .collect(),
    }
}

/// The same labels, with names and values shared through `interned`.
fn intern_labels(interned: &mut HashSet<Arc<str>>, labels: &Labels) -> Labels {
    let mut one = |s: &Arc<str>| -> Arc<str> {
        match interned.get(s) {
            Some(x) => x.clone(),
            None => {
                interned.insert(s.clone());
                s.clone()
            }
        }
    };
    Labels::from_sorted_unchecked(
        labels
            .iter()
            .map(|l| medic_model::Label {
                name: one(&l.name),
                value: one(&l.value),
            })
            .collect(),
    )
}

/// Re-feeds every held alert to a fresh dispatcher and inhibitor.
fn rebuild(g: &mut Inner, now: i64) {
    let alerts: Vec<Arc<Alert>> = g.alerts.values().cloned().collect();
    for a in &alerts {
        g.inhibitor.observe(a);
    }
    for a in alerts {
        g.dispatcher.insert(a, now);
    }
}

/// Alertmanager's checks on a received alert.
pub fn validate_alert(a: &Alert) -> Result<(), String> {
    if a.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    for l in a.labels.iter() {
        if !medic_model::is_valid_label_name(&l.name) {
            return Err(format!("invalid label name {:?}", &*l.name));
        }
        if l.value.is_empty() {
            return Err(format!("label {:?} has an empty value", &*l.name));
        }
    }
    for k in a.annotations.keys() {
        if !medic_model::is_valid_label_name(k) {
            return Err(format!("invalid annotation name {k:?}"));
        }
    }
    if a.starts_at == 0 {
        return Err("start time missing".into());
    }
    if a.ends_at != 0 && a.ends_at < a.starts_at {
        return Err("start time must be before end time".into());
    }
    Ok(())
}
