//! Rule groups: rules evaluated in order at one timestamp, each rule seeing the series the
//! rules before it wrote; series a rule stops producing are ended with staleness markers.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medic_model::{Appendable, Labels, Queryable, STALE_NAN};
use medic_promql::Engine;

use crate::cache::{Cached, SelectCache};
use crate::file::GroupSpec;
use crate::rule::{Alert, AlertState, EvalContext, EvalError, Rule};

/// What rules read from and write to.
pub trait Storage: Queryable + Appendable {}
impl<T: Queryable + Appendable> Storage for T {}

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleHealth {
    /// The last evaluation's error, if it failed.
    pub last_error: Option<String>,
    /// When it was last evaluated (ms; 0 = never).
    pub last_eval: i64,
    /// How long that took.
    pub duration: Duration,
}

/// Settings shared by every group.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub default_interval: Duration,
    pub external_labels: Labels,
    pub external_url: String,
    pub outage_tolerance: Duration,
    pub for_grace_period: Duration,
    pub resend_delay: Duration,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            default_interval: Duration::from_secs(60),
            external_labels: Labels::empty(),
            external_url: String::new(),
            outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            resend_delay: Duration::from_secs(60),
        }
    }
}

/// What the API shows about a group (a snapshot taken after each evaluation).
#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub name: String,
    pub file: PathBuf,
    pub interval: Duration,
    pub limit: usize,
    pub query_offset: Duration,
    /// Last evaluation (ms; 0 = never) and how long it took.
    pub last_eval: i64,
    pub last_duration: Duration,
    pub rules: Vec<RuleStatus>,
}

/// What the API shows about a rule.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    pub name: String,
    pub query: String,
    /// The labels as written in the file (templates unexpanded), group labels included.
    pub labels: Labels,
    pub health: RuleHealth,
    /// An anomaly rule (its alerting part is in `alerting`).
    pub anomaly: bool,
    /// Set for alerting and anomaly rules.
    pub alerting: Option<AlertingStatus>,
}

/// The alerting part of a [`RuleStatus`].
#[derive(Debug, Clone)]
pub struct AlertingStatus {
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub keep_firing_while: Option<String>,
    pub annotations: Labels,
    pub state: AlertState,
    /// Pending and firing alerts, sorted by labels.
    pub alerts: Vec<Alert>,
}

/// One evaluated rule group.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub file: PathBuf,
    pub interval: Duration,
    pub query_offset: Duration,
    pub limit: usize,
    pub rules: Vec<Rule>,
    pub health: Vec<RuleHealth>,
    /// Series each rule wrote at its last evaluation, to mark the vanished ones stale.
    written: Vec<HashSet<Labels>>,
    pub last_eval: i64,
    pub last_duration: Duration,
    /// Evaluations and failed rule evaluations, for metrics.
    pub evaluations: u64,
    pub failures: u64,
    opts: GroupOptions,
    /// Whether the next evaluation restores `for` state (the first after start or load).
    should_restore: bool,
    /// The widest range each matcher set was selected over in the last evaluation, so the next
    /// loads it once for all its rules (see [`crate::cache`]).
    learned_spans: HashMap<String, i64>,
    /// The log store, for LogQL rules (set by the manager).
    pub logs: Option<crate::rule::LogSource>,
    /// The external store that answers the rules' PromQL (set by the manager; none: the
    /// embedded engine over `store`).
    pub backend: Option<crate::backend::QueryBackend>,
}

impl Group {
    /// Builds a group from a validated spec.
    pub fn new(spec: &GroupSpec, file: PathBuf, opts: GroupOptions) -> Result<Group, EvalError> {
        let group_labels: Vec<(String, String)> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let rules = spec
            .rules
            .iter()
            .map(|r| Rule::from_spec(r, &group_labels, spec.lang))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Group {
            name: spec.name.clone(),
            file,
            interval: spec.interval.unwrap_or(opts.default_interval),
            query_offset: spec.query_offset.unwrap_or_default(),
            limit: spec.limit,
            health: vec![RuleHealth::default(); rules.len()],
            written: vec![HashSet::new(); rules.len()],
            rules,
            last_eval: 0,
            last_duration: Duration::ZERO,
            evaluations: 0,
            failures: 0,
            opts,
            should_restore: true,
            learned_spans: HashMap::new(),
            logs: None,
            backend: None,
        })
    }

    /// Marks `for` state as already restored, so the first evaluation writes `ALERTS` and
    /// restores nothing (what promtool's unit tests do: they start without history).
    pub fn mark_restored(&mut self) {
        self.should_restore = false;
        for r in &mut self.rules {
            if let Some(a) = r.alerting_mut() {
                a.restored = true;
            }
        }
    }

    /// The external labels alerts of this group carry when sent.
    pub fn external_labels(&self) -> &Labels {
        &self.opts.external_labels
    }

    /// The URL medic is reached under, for links in alerts.
    pub fn external_url(&self) -> &str {
        &self.opts.external_url
    }

    /// A key identifying the group across reloads.
    pub fn key(&self) -> (PathBuf, String) {
        (self.file.clone(), self.name.clone())
    }

    /// Takes over alert state and written series from the group this one replaces (a reload):
    /// rules match by name, query and labels, as Prometheus's `CopyState`.
    pub fn copy_state(&mut self, old: &mut Group) {
        let mut by_key: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, r) in old.rules.iter().enumerate() {
            by_key
                .entry((r.name().to_string(), r.query().to_string()))
                .or_default()
                .push(i);
        }
        for (i, r) in self.rules.iter_mut().enumerate() {
            let Some(js) = by_key.get_mut(&(r.name().to_string(), r.query().to_string())) else {
                continue;
            };
            if js.is_empty() {
                continue;
            }
            let j = js.remove(0);
            self.health[i] = old.health[j].clone();
            self.written[i] = std::mem::take(&mut old.written[j]);
            if let (Rule::Anomaly(new), Rule::Anomaly(prev)) = (&mut *r, &mut old.rules[j]) {
                new.copy_state(prev);
            }
            if let (Some(new), Some(prev)) = (r.alerting_mut(), old.rules[j].alerting_mut()) {
                new.active = std::mem::take(&mut prev.active);
                new.restored = prev.restored;
            }
        }
        self.last_eval = old.last_eval;
        self.should_restore = false;
    }

    /// Evaluates every rule at `ts` (ms), writing results to `store`. Rule failures are
    /// recorded in `health` and do not stop the others.
    pub fn eval(&mut self, engine: &Engine, store: &Arc<dyn Storage>, ts: i64) {
        let start = Instant::now();
        let t = ts - self.query_offset.as_millis() as i64;
        let raw: Arc<dyn Queryable> = store.clone();
        let cache = SelectCache::new(raw.clone(), std::mem::take(&mut self.learned_spans));
        let queryable: Arc<dyn Queryable> = Arc::new(Cached(cache.clone()));
        let funcs = crate::template::funcs(
            engine.clone(),
            queryable.clone(),
            self.backend.clone(),
            t,
            &self.opts.external_url,
        );
        for i in 0..self.rules.len() {
            let rule_start = Instant::now();
            let ctx = EvalContext {
                engine,
                store: queryable.clone(),
                logs: self.logs.as_ref(),
                backend: self.backend.as_ref(),
                t,
                external_labels: &self.opts.external_labels,
                external_url: &self.opts.external_url,
                funcs: &funcs,
            };
            let res = match &mut self.rules[i] {
                Rule::Recording(r) => r.eval(&ctx, self.limit),
                Rule::Alerting(r) => r.eval(&ctx, self.limit),
                Rule::Anomaly(r) => r.eval(&ctx, self.limit, self.interval),
            };
            let mut health = RuleHealth {
                last_error: None,
                last_eval: ts,
                duration: Duration::ZERO,
            };
            let samples = match res {
                Ok(s) => s,
                Err(e) => {
                    self.failures += 1;
                    health.last_error = Some(e.0);
                    Vec::new()
                }
            };
            if let Err(e) = self.write(i, t, &samples, &**store) {
                self.failures += 1;
                health.last_error.get_or_insert(e);
            }
            // Later rules must see what this one wrote.
            match &self.rules[i] {
                Rule::Recording(r) => cache.invalidate(&r.name),
                Rule::Alerting(_) => {
                    cache.invalidate("ALERTS");
                    cache.invalidate("ALERTS_FOR_STATE");
                }
                Rule::Anomaly(_) => {
                    for name in crate::anomaly::SERIES {
                        cache.invalidate(name);
                    }
                    cache.invalidate("ALERTS");
                    cache.invalidate("ALERTS_FOR_STATE");
                }
            }
            health.duration = rule_start.elapsed();
            self.health[i] = health;
        }
        if self.should_restore {
            self.should_restore = false;
            for r in &mut self.rules {
                if let Some(a) = r.alerting_mut() {
                    a.restore_for_state(
                        &*raw,
                        ts,
                        self.opts.outage_tolerance,
                        self.opts.for_grace_period,
                    );
                }
            }
        }
        self.learned_spans = cache.spans();
        self.evaluations += 1;
        self.last_eval = ts;
        self.last_duration = start.elapsed();
    }

    /// Appends a rule's samples and staleness markers for its series that vanished.
    fn write(
        &mut self,
        i: usize,
        t: i64,
        samples: &[medic_promql::VectorSample],
        store: &dyn Storage,
    ) -> Result<(), String> {
        let now: HashSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
        let mut app = store.appender();
        let mut first_err = None;
        for s in samples {
            let stored = match &s.h {
                None => app.append_labels(&s.labels, t, s.v).map(|_| ()),
                Some(h) => app
                    .series_ref(&s.labels)
                    .and_then(|r| app.append_histogram(r, t, h.clone())),
            };
            if let Err(e) = stored {
                first_err.get_or_insert_with(|| format!("writing {}: {e}", s.labels));
            }
        }
        for gone in self.written[i].difference(&now) {
            // A marker that the store refuses (the series was written at t already) is moot.
            let _ = app.append_labels(gone, t, STALE_NAN);
        }
        app.commit().map_err(|e| e.to_string())?;
        self.written[i] = now;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Alerts to hand to the notifier after an evaluation at `ts`: firing ones not sent for a
    /// while and newly resolved ones, stamped as sent (Prometheus's `sendAlerts`).
    /// Each alert comes with its rule's query, for the link back to it.
    /// Alerts due to be sent, with their rule's query and whether it is an anomaly rule.
    pub fn alerts_to_send(&mut self, ts: i64) -> Vec<(String, Alert, bool)> {
        let resend = self.opts.resend_delay.as_millis() as i64;
        let delta = resend.max(self.interval.as_millis() as i64);
        let mut out = Vec::new();
        for r in &mut self.rules {
            let anomaly = matches!(r, Rule::Anomaly(_));
            let Some(ar) = r.alerting_mut() else {
                continue;
            };
            for a in ar.active.values_mut() {
                if !a.needs_sending(ts, resend) {
                    continue;
                }
                a.last_sent_at = ts;
                a.valid_until = ts + 4 * delta;
                out.push((ar.query.clone(), a.clone(), anomaly));
            }
        }
        out.sort_by(|a, b| a.1.labels.cmp(&b.1.labels));
        out
    }

    /// Every alert of the group's alerting rules, firing and pending (not resolved ones).
    pub fn active_alerts(&self) -> impl Iterator<Item = (&crate::rule::AlertingRule, &Alert)> {
        self.rules.iter().filter_map(Rule::alerting).flat_map(|r| {
            r.alerts()
                .into_iter()
                .filter(|a| a.state != AlertState::Inactive)
                .map(move |a| (r, a))
        })
    }

    /// Ends every series the group wrote with a staleness marker at `ts` (the group was
    /// removed by a reload), so queries stop seeing them at once instead of after 5 minutes.
    pub fn mark_all_stale(&mut self, store: &dyn Storage, ts: i64) -> Result<(), String> {
        let mut app = store.appender();
        for set in &mut self.written {
            for gone in set.drain() {
                let _ = app.append_labels(&gone, ts, STALE_NAN);
            }
        }
        app.commit().map(|_| ()).map_err(|e| e.to_string())
    }

    /// A copy of what the API shows about the group: rules, health and alerts.
    pub fn status(&self) -> GroupStatus {
        let rules = self
            .rules
            .iter()
            .zip(&self.health)
            .map(|(r, h)| match r {
                Rule::Recording(r) => RuleStatus {
                    name: r.name.clone(),
                    query: r.query.clone(),
                    labels: r.labels.clone(),
                    health: h.clone(),
                    anomaly: false,
                    alerting: None,
                },
                Rule::Alerting(_) | Rule::Anomaly(_) => {
                    let a = r.alerting().expect("alerting or anomaly rule");
                    RuleStatus {
                        name: a.name.clone(),
                        query: a.query.clone(),
                        labels: a.raw_labels.clone(),
                        health: h.clone(),
                        anomaly: matches!(r, Rule::Anomaly(_)),
                        alerting: Some(AlertingStatus {
                            hold: a.hold,
                            keep_firing_for: a.keep_firing_for,
                            keep_firing_while: a.keep_firing_while.as_ref().map(|(q, _)| q.clone()),
                            annotations: a.raw_annotations.clone(),
                            state: a.state(),
                            alerts: a
                                .alerts()
                                .into_iter()
                                .filter(|x| x.state != AlertState::Inactive)
                                .cloned()
                                .collect(),
                        }),
                    }
                }
            })
            .collect();
        GroupStatus {
            name: self.name.clone(),
            file: self.file.clone(),
            interval: self.interval,
            limit: self.limit,
            query_offset: self.query_offset,
            last_eval: self.last_eval,
            last_duration: self.last_duration,
            rules,
        }
    }

    /// When this group evaluates next after `now` (ms): on its interval, shifted by an offset
    /// derived from its file and name so groups spread out and keep their phase across
    /// restarts (Prometheus's `EvalTimestamp`).
    pub fn next_eval(&self, now: i64) -> i64 {
        let interval = self.interval.as_millis().max(1) as i64;
        let key = format!("{}\u{ff}{}", self.file.display(), self.name);
        let offset = (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % interval as u64) as i64;
        let base = now - now.rem_euclid(interval);
        let mut next = base + offset;
        if next <= now {
            next += interval;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::{MemStorage, Sample};
    use std::path::Path;

    const MIN: i64 = 60_000;

    /// A group from rule-file text over a store holding `temp` with one value per minute.
    fn setup(rules: &str, temps: &[f64]) -> (Group, Arc<dyn Storage>) {
        let text = format!("groups:\n- name: g\n  rules:\n{rules}");
        let rf = crate::file::parse(&text, Path::new("t.yml"), false).unwrap();
        let g = Group::new(&rf.groups[0], "t.yml".into(), GroupOptions::default()).unwrap();
        let mem = MemStorage::new();
        let samples: Vec<Sample> = temps
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * MIN, *v))
            .collect();
        mem.add(
            Labels::from_pairs([("__name__", "temp"), ("host", "a")]),
            &samples,
        );
        (g, Arc::new(mem))
    }

    fn states(g: &Group) -> Vec<AlertState> {
        let a = g.rules[0].alerting().expect("an alerting rule");
        a.alerts().iter().map(|a| a.state).collect()
    }

    fn run(g: &mut Group, store: &Arc<dyn Storage>, minutes: usize) -> Vec<Vec<AlertState>> {
        let engine = Engine::default();
        (0..minutes)
            .map(|m| {
                g.eval(&engine, store, m as i64 * MIN);
                states(g)
            })
            .collect()
    }

    use AlertState::{Firing as F, Inactive as I, Pending as P};

    #[test]
    fn for_makes_alerts_wait_and_they_resolve() {
        let (mut g, s) = setup(
            "  - alert: Hot\n    expr: temp > 90\n    for: 2m\n",
            &[95.0, 95.0, 95.0, 95.0, 50.0, 50.0],
        );
        let got = run(&mut g, &s, 6);
        assert_eq!(
            got,
            vec![vec![P], vec![P], vec![F], vec![F], vec![I], vec![I]]
        );
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let (mut g, s) = setup(
            "  - alert: Hot\n    expr: temp > 90\n    keep_firing_for: 2m\n",
            &[95.0, 50.0, 50.0, 50.0, 50.0],
        );
        let got = run(&mut g, &s, 5);
        assert_eq!(got, vec![vec![F], vec![F], vec![F], vec![I], vec![I]]);
    }

    #[test]
    fn keep_firing_while_is_hysteresis() {
        // Fires above 90, stays firing while above 80, resolves at or below 80.
        let (mut g, s) = setup(
            "  - alert: Hot\n    expr: temp > 90\n    keep_firing_while: temp > 80\n",
            &[85.0, 95.0, 85.0, 82.0, 79.0, 85.0],
        );
        let got = run(&mut g, &s, 6);
        assert_eq!(
            got,
            vec![vec![], vec![F], vec![F], vec![F], vec![I], vec![I]]
        );
        match &g.rules[0] {
            // While held, the value follows the looser condition's series.
            Rule::Alerting(a) => assert_eq!(a.alerts()[0].value, 82.0),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flapping_alerts_are_labelled() {
        let (mut g, s) = setup(
            "  - alert: Hot\n    expr: temp > 90\n    flapping: {max_changes: 3, window: 10m}\n",
            &[95.0, 50.0, 95.0, 50.0, 95.0, 95.0],
        );
        run(&mut g, &s, 6);
        let Rule::Alerting(a) = &g.rules[0] else {
            unreachable!()
        };
        let alert = a.alerts()[0];
        assert_eq!(alert.state, F);
        assert!(alert.flapping);
        assert_eq!(alert.public_labels().get("flapping"), Some("true"));
        // The identity (and ALERTS series) keep their labels.
        assert_eq!(alert.labels.get("flapping"), None);
    }

    #[test]
    fn alerts_series_and_staleness_are_written() {
        let (mut g, s) = setup(
            "  - alert: Hot\n    expr: temp > 90\n    labels: {severity: page}\n",
            &[95.0, 95.0, 50.0],
        );
        let engine = Engine::default();
        // As in Prometheus, the first evaluation restores `for` state and writes no ALERTS.
        g.eval(&engine, &s, 0);
        g.eval(&engine, &s, MIN);
        let medic_promql::Value::Vector(v) = engine.instant(&*s, "ALERTS", MIN).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].labels.get("alertstate"), Some("firing"));
        assert_eq!(v[0].labels.get("severity"), Some("page"));
        g.eval(&engine, &s, 2 * MIN);
        // Resolved: a staleness marker ends the series at once.
        let medic_promql::Value::Vector(v) = engine.instant(&*s, "ALERTS", 2 * MIN).unwrap() else {
            panic!()
        };
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn templates_expand_and_failing_rules_do_not_stop_others() {
        let (mut g, s) = setup(
            "  - record: broken\n    expr: temp + on(nosuch) group_left temp\n  - alert: Hot\n    expr: temp > 90\n    annotations:\n      summary: '{{ $labels.host }} at {{ $value | humanize }} ({{ query \"count(temp)\" | first | value }} hosts)'\n",
            &[1234.5],
        );
        g.eval(&Engine::default(), &s, 0);
        assert!(g.health[0].last_error.is_none(), "{:?}", g.health[0]);
        let Rule::Alerting(a) = &g.rules[1] else {
            unreachable!()
        };
        assert_eq!(
            a.alerts()[0].annotations.get("summary"),
            Some("a at 1.234k (1 hosts)")
        );
    }

    #[test]
    fn limit_fails_the_rule_and_is_reported() {
        let (mut g, s) = setup("  - record: r\n    expr: temp or vector(1)\n", &[1.0]);
        g.limit = 1;
        g.eval(&Engine::default(), &s, 0);
        assert_eq!(
            g.health[0].last_error.as_deref(),
            Some("exceeded limit of 1 with 2 series")
        );
        assert_eq!(g.failures, 1);
    }

    #[test]
    fn anomaly_rules_write_bands_fire_and_keep_their_detectors() {
        // A flat-ish temperature, then a jump: the rule warms from the first 200 minutes of
        // history, writes its band, fires once the jump comes, and records the anomaly.
        let mut temps: Vec<f64> = (0..260).map(|i| 20.0 + (i % 7) as f64 * 0.1).collect();
        for t in &mut temps[240..] {
            *t = 35.0;
        }
        let rules = "  - anomaly: TempAnomaly\n    expr: temp\n    sensitivity: high\n    history: 200m\n    labels: {severity: warning}\n";
        let (mut g, s) = setup(rules, &temps);
        let engine = Engine::default();
        for m in 200..250 {
            g.eval(&engine, &s, m * MIN);
        }
        assert!(g.health[0].last_error.is_none(), "{:?}", g.health[0]);
        let Rule::Anomaly(a) = &g.rules[0] else {
            unreachable!()
        };
        let sd = a.detectors.values().next().unwrap();
        assert!(
            sd.detector.n >= 240,
            "warmed from history: {}",
            sd.detector.n
        );
        assert_eq!(a.events.len(), 1, "{:?}", a.events);
        assert_eq!(a.events[0].start, 240 * MIN);
        assert_eq!(states(&g), vec![F]);
        let alert = &a.alerting.alerts()[0];
        assert_eq!(alert.labels.get("alertname"), Some("TempAnomaly"));
        assert_eq!(alert.labels.get("severity"), Some("warning"));
        assert!(alert.value >= 0.25 && alert.value <= 1.0, "{alert:?}");
        // The band series, queryable like any other.
        let medic_promql::Value::Vector(v) = engine
            .instant(
                &*s,
                "anomaly_upper{anomaly=\"TempAnomaly\", host=\"a\"}",
                239 * MIN,
            )
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].v > 20.0 && v[0].v < 30.0, "{v:?}");
        // A reload keeps detectors and anomalies; a snapshot restores them elsewhere.
        let snap = a.snapshot();
        let (mut fresh, _) = setup(rules, &[]);
        fresh.copy_state(&mut g);
        let Rule::Anomaly(b) = &mut fresh.rules[0] else {
            unreachable!()
        };
        assert_eq!(b.events.len(), 1);
        let (mut other, _) = setup(rules, &[]);
        let Rule::Anomaly(c) = &mut other.rules[0] else {
            unreachable!()
        };
        c.restore(snap.clone());
        assert_eq!(c.snapshot(), snap);
        assert!(c.warmed);
    }

    #[test]
    fn bad_anomaly_rules_are_refused_with_where_and_why() {
        let text = "groups:\n- name: g\n  rules:\n  - record: ok\n    expr: up\n  - anomaly: A\n    expr: 'rate(x[5m]'\n    sensitivity: extreme\n  - anomaly: B\n    expr: up\n    seasonality: yearly\n    keep_firing_while: up\n  - alert: C\n    expr: up\n    sensitivity: high\n";
        let errs = crate::file::parse(text, Path::new("a.yml"), false).unwrap_err();
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| all.iter().any(|e| e.contains(needle));
        assert!(
            has("a.yml:6: group \"g\", rule 2, \"A\": could not parse expression"),
            "{all:#?}"
        );
        assert!(
            has("a.yml:6: group \"g\", rule 2, \"A\": sensitivity: unknown \"extreme\""),
            "{all:#?}"
        );
        assert!(
            has("a.yml:9: group \"g\", rule 3, \"B\": seasonality: unknown seasonality \"yearly\""),
            "{all:#?}"
        );
        assert!(
            has("invalid field 'keep_firing_while' in anomaly rule"),
            "{all:#?}"
        );
        assert!(
            has("a.yml:13: group \"g\", rule 4, \"C\": invalid field 'sensitivity'"),
            "{all:#?}"
        );
    }

    #[test]
    fn for_state_survives_a_restart() {
        // Pending for 5 of 30 minutes, then medic is down 3 minutes: after the restart it
        // keeps the 5 minutes already waited (Prometheus's RestoreForState).
        let temps = vec![95.0; 40];
        let rules = "  - alert: Hot\n    expr: temp > 90\n    for: 30m\n";
        let (mut g, s) = setup(rules, &temps);
        let engine = Engine::default();
        for m in 0..=5 {
            g.eval(&engine, &s, m * MIN);
        }
        let (mut fresh, _) = setup(rules, &[]);
        fresh.eval(&engine, &s, 8 * MIN);
        let Rule::Alerting(a) = &fresh.rules[0] else {
            unreachable!()
        };
        // Was active at 0, down at 5m, back at 8m: active_at moves by the 3m downtime.
        assert_eq!(a.alerts()[0].active_at, 3 * MIN);
        fresh.eval(&engine, &s, 32 * MIN);
        assert_eq!(states(&fresh), vec![P]);
        fresh.eval(&engine, &s, 33 * MIN);
        assert_eq!(states(&fresh), vec![F]);
    }
}
