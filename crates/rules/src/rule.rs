//! Recording and alerting rules, and the alert state machine: inactive → pending → firing →
//! resolved, with `for`, `keep_firing_for`, and medic's `keep_firing_while` (hysteresis) and
//! flap detection. Deterministic: time comes in as an argument.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use medic_model::{Labels, LabelsBuilder, Queryable};
use medic_promql::{Engine, Expr, Value as PromValue, VectorSample};
use medic_template::Funcs;

use crate::file::{FlappingSpec, RuleSpec};
use crate::template::{alert_data, Text};

/// How long a resolved alert is kept (and re-sent) after it resolves, as Prometheus.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The label medic adds to an alert that flaps.
pub const FLAPPING_LABEL: &str = "flapping";

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are Unix milliseconds; 0 means unset.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    /// Identifying labels: the series' labels without its name, the rule's labels, `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: i64,
    pub resolved_at: i64,
    pub last_sent_at: i64,
    pub valid_until: i64,
    pub keep_firing_since: i64,
    /// Held firing by `keep_firing_while` since this time.
    pub kept_by_while_since: i64,
    /// Changed between firing and not firing too often (medic's flap detection).
    pub flapping: bool,
    /// Hash of the query result's labels (without the name) that produced this alert, to find
    /// it in the `keep_firing_while` result.
    source: u64,
}

impl Alert {
    /// The labels as sent and shown: with `flapping="true"` while it flaps.
    pub fn public_labels(&self) -> Labels {
        if self.flapping {
            let mut b = self.labels.to_builder();
            b.set(FLAPPING_LABEL, "true");
            b.build()
        } else {
            self.labels.clone()
        }
    }

    /// Whether the alert should be sent to the notifier at `ts` (Prometheus's `needsSending`).
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at > self.last_sent_at {
            return true;
        }
        self.last_sent_at + resend_delay_ms < ts
    }
}

/// A query failed or produced something a rule cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// Where LogQL rules read logs from.
#[derive(Clone)]
pub struct LogSource(pub Arc<dyn medic_logs::logql::LogSource + Send + Sync>);

impl std::fmt::Debug for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogSource")
    }
}

/// A rule's query: PromQL, or a LogQL metric query (Loki ruler files).
#[derive(Debug, Clone)]
pub enum RuleExpr {
    /// The parsed query and its text (what an external backend is sent).
    Prom(Box<Expr>, Arc<str>),
    Log(Arc<medic_logs::logql::ast::MetricExpr>),
}

impl RuleExpr {
    /// Parses `text` in `lang`; a LogQL rule must be a metric query.
    pub fn parse(text: &str, lang: crate::file::Lang) -> Result<RuleExpr, String> {
        match lang {
            crate::file::Lang::PromQL => Engine::parse(text)
                .map(|e| RuleExpr::Prom(Box::new(e), text.into()))
                .map_err(|e| e.to_string()),
            crate::file::Lang::LogQL => match medic_logs::logql::parse(text)
                .map_err(|e| e.to_string())?
            {
                medic_logs::logql::ast::Expr::Metric(m) => Ok(RuleExpr::Log(Arc::new(m))),
                medic_logs::logql::ast::Expr::Log(_) => Err(
                    "a log rule needs a metric query (count_over_time, rate, …), not a log query"
                        .into(),
                ),
            },
        }
    }
}

/// What a rule needs to evaluate.
pub struct EvalContext<'a> {
    pub engine: &'a Engine,
    pub store: Arc<dyn Queryable>,
    /// The log store, for LogQL rules.
    pub logs: Option<&'a LogSource>,
    /// The external store that answers PromQL instead of the embedded engine, if any.
    pub backend: Option<&'a crate::backend::QueryBackend>,
    /// Evaluation time (ms), already moved back by the group's `query_offset`.
    pub t: i64,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub funcs: &'a Funcs,
}

/// A rule query's floats: an alert's value is a number, so a result holding a native histogram
/// is refused by name (it would otherwise alert on 0).
pub(crate) fn query_floats(
    ctx: &EvalContext<'_>,
    expr: &RuleExpr,
) -> Result<Vec<VectorSample>, EvalError> {
    let v = query_vector(ctx, expr)?;
    if v.iter().any(|s| s.h.is_some()) {
        return Err(EvalError(
            "the rule's result holds native histograms; alerts need numbers: wrap it in \
             histogram_count(), histogram_sum() or histogram_quantile()"
                .into(),
        ));
    }
    Ok(v)
}

/// A rule query's result (a recording rule records native histograms as they are).
pub(crate) fn query_vector(
    ctx: &EvalContext<'_>,
    expr: &RuleExpr,
) -> Result<Vec<VectorSample>, EvalError> {
    let expr = match (expr, ctx.backend) {
        (RuleExpr::Prom(_, text), Some(backend)) => return backend.instant(text, ctx.t),
        (RuleExpr::Prom(e, _), None) => e,
        (RuleExpr::Log(m), _) => return query_logs(ctx, m),
    };
    match ctx.engine.instant_expr(&*ctx.store, expr, ctx.t) {
        Ok(PromValue::Vector(v)) => Ok(v),
        Ok(PromValue::Scalar(v)) => Ok(vec![VectorSample::new(Labels::empty(), ctx.t, v)]),
        Ok(other) => Err(EvalError(format!(
            "rule result is not a vector or scalar: {}",
            other.type_name()
        ))),
        Err(e) => Err(EvalError(e.to_string())),
    }
}

fn query_logs(
    ctx: &EvalContext<'_>,
    m: &medic_logs::logql::ast::MetricExpr,
) -> Result<Vec<VectorSample>, EvalError> {
    use medic_logs::logql::metric;
    let src = ctx
        .logs
        .ok_or_else(|| EvalError("log rules need the log store (logs.enabled: true)".into()))?;
    let t = ctx.t.saturating_mul(1_000_000);
    let steps = metric::Steps {
        start: t,
        end: t,
        step: 1,
    };
    let vectors = metric::eval(&*src.0, m, steps).map_err(|e| EvalError(e.to_string()))?;
    Ok(vectors
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|s| VectorSample::new(Labels::from_pairs(s.labels), ctx.t, s.value))
        .collect())
}

/// A recording rule.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    pub name: String,
    pub query: String,
    expr: RuleExpr,
    pub labels: Labels,
}

impl RecordingRule {
    /// The series to write at `ctx.t`.
    pub fn eval(
        &self,
        ctx: &EvalContext<'_>,
        limit: usize,
    ) -> Result<Vec<VectorSample>, EvalError> {
        let mut v = query_vector(ctx, &self.expr)?;
        let mut seen = HashSet::with_capacity(v.len());
        for s in &mut v {
            let mut b = s.labels.to_builder();
            b.set("__name__", self.name.as_str());
            for l in self.labels.iter() {
                b.set(l.name.clone(), l.value.clone());
            }
            s.labels = b.build();
            s.t = ctx.t;
            if !seen.insert(s.labels.clone()) {
                return Err(EvalError(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                ));
            }
        }
        if limit > 0 && v.len() > limit {
            return Err(EvalError(format!(
                "exceeded limit of {limit} with {} series",
                v.len()
            )));
        }
        Ok(v)
    }
}

/// An alerting rule and its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub name: String,
    pub query: String,
    expr: RuleExpr,
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub keep_firing_while: Option<(String, RuleExpr)>,
    pub flapping: Option<FlappingSpec>,
    pub labels: Vec<(String, Text)>,
    pub annotations: Vec<(String, Text)>,
    /// The label and annotation texts as written, for the API.
    pub raw_labels: Labels,
    pub raw_annotations: Labels,
    /// Active alerts by the hash of their labels.
    pub active: HashMap<u64, Alert>,
    /// Recent firing/not-firing changes per alert (ms), for flap detection.
    changes: HashMap<u64, VecDeque<i64>>,
    /// Whether `for` state has been restored, so `ALERTS` series may be written.
    pub restored: bool,
}

/// A rule of either kind.
#[derive(Debug, Clone)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(Box<AlertingRule>),
    Anomaly(Box<crate::anomaly::AnomalyRule>),
}

impl Rule {
    /// Builds a rule from its validated spec; `group_labels` apply under the rule's own.
    pub fn from_spec(
        spec: &RuleSpec,
        group_labels: &[(String, String)],
        lang: crate::file::Lang,
    ) -> Result<Rule, EvalError> {
        let expr = RuleExpr::parse(&spec.expr, lang).map_err(EvalError)?;
        let mut labels: Vec<(String, String)> = group_labels.to_vec();
        for (k, v) in &spec.labels {
            labels.retain(|(n, _)| n != k);
            labels.push((k.clone(), v.clone()));
        }
        labels.sort();
        let raw_labels = Labels::from_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(name) = &spec.record {
            return Ok(Rule::Recording(RecordingRule {
                name: name.clone(),
                query: spec.expr.clone(),
                expr,
                labels: raw_labels,
            }));
        }
        let alerting = Self::alerting_from_spec(spec, expr, labels, raw_labels)?;
        if spec.anomaly.is_some() {
            return Ok(Rule::Anomaly(Box::new(crate::anomaly::AnomalyRule::new(
                spec, alerting,
            )?)));
        }
        Ok(Rule::Alerting(Box::new(alerting)))
    }

    fn alerting_from_spec(
        spec: &RuleSpec,
        expr: RuleExpr,
        labels: Vec<(String, String)>,
        raw_labels: Labels,
    ) -> Result<AlertingRule, EvalError> {
        let name = spec.name().to_string();
        let keep_firing_while = match &spec.keep_firing_while {
            Some(q) => Some((
                q.clone(),
                RuleExpr::parse(q, crate::file::Lang::PromQL).map_err(EvalError)?,
            )),
            None => None,
        };
        Ok(AlertingRule {
            labels: labels
                .iter()
                .map(|(k, v)| (k.clone(), Text::parse(&name, v)))
                .collect(),
            annotations: spec
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), Text::parse(&name, v)))
                .collect(),
            raw_labels,
            raw_annotations: Labels::from_pairs(
                spec.annotations
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            name,
            query: spec.expr.clone(),
            expr,
            hold: spec.for_.unwrap_or_default(),
            keep_firing_for: spec.keep_firing_for.unwrap_or_default(),
            keep_firing_while,
            flapping: spec.flapping,
            active: HashMap::new(),
            changes: HashMap::new(),
            restored: false,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
            Rule::Anomaly(r) => &r.alerting.name,
        }
    }

    /// The alerting part of an alerting or anomaly rule.
    pub fn alerting(&self) -> Option<&AlertingRule> {
        match self {
            Rule::Recording(_) => None,
            Rule::Alerting(a) => Some(a),
            Rule::Anomaly(a) => Some(&a.alerting),
        }
    }

    pub fn alerting_mut(&mut self) -> Option<&mut AlertingRule> {
        match self {
            Rule::Recording(_) => None,
            Rule::Alerting(a) => Some(a),
            Rule::Anomaly(a) => Some(&mut a.alerting),
        }
    }

    pub fn query(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.query,
            Rule::Alerting(r) => &r.query,
            Rule::Anomaly(r) => &r.alerting.query,
        }
    }
}

impl AlertingRule {
    /// The parsed query.
    pub(crate) fn expr(&self) -> &RuleExpr {
        &self.expr
    }

    /// Evaluates at `ctx.t` and advances the state machine; returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples to write (once `for` state is restored).
    pub fn eval(
        &mut self,
        ctx: &EvalContext<'_>,
        limit: usize,
    ) -> Result<Vec<VectorSample>, EvalError> {
        let res = query_floats(ctx, &self.expr)?;
        self.eval_vector(ctx, &res, limit)
    }

    /// Advances the state machine with `res` as the query result at `ctx.t` (anomaly rules
    /// feed the series that are anomalous).
    pub fn eval_vector(
        &mut self,
        ctx: &EvalContext<'_>,
        res: &[VectorSample],
        limit: usize,
    ) -> Result<Vec<VectorSample>, EvalError> {
        let ts = ctx.t;
        let current = self.current(ctx, res)?;
        let result_fps: HashSet<u64> = current.keys().copied().collect();
        for (h, a) in current {
            match self.active.get_mut(&h) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                    old.source = a.source;
                }
                _ => {
                    self.active.insert(h, a);
                }
            }
        }
        let held = self.held(ctx, &result_fps)?;
        let mut out = Vec::new();
        let mut active_pending = 0;
        let mut remove = Vec::new();
        let mut changed: Vec<u64> = Vec::new();
        for (&h, a) in self.active.iter_mut() {
            if !result_fps.contains(&h) {
                if !still_kept(a, &held, self.keep_firing_for, ts) {
                    if a.state == AlertState::Pending
                        || (a.resolved_at != 0
                            && ts - a.resolved_at > RESOLVED_RETENTION.as_millis() as i64)
                    {
                        remove.push(h);
                    }
                    if a.state != AlertState::Inactive {
                        if a.state == AlertState::Firing {
                            changed.push(h);
                        }
                        a.state = AlertState::Inactive;
                        a.resolved_at = ts;
                    }
                    continue;
                }
            } else {
                a.keep_firing_since = 0;
                a.kept_by_while_since = 0;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.hold.as_millis() as i64 {
                a.state = AlertState::Firing;
                a.fired_at = ts;
                changed.push(h);
            }
            if self.restored {
                let mut b = a.labels.to_builder();
                b.set("__name__", "ALERTS");
                b.set("alertstate", a.state.as_str());
                out.push(VectorSample::new(b.build(), ts, 1.0));
                let mut b = a.labels.to_builder();
                b.set("__name__", "ALERTS_FOR_STATE");
                out.push(VectorSample::new(
                    b.build(),
                    ts,
                    (a.active_at / 1000) as f64,
                ));
            }
        }
        for h in remove {
            self.active.remove(&h);
        }
        self.track_flapping(ts, &changed);
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(EvalError(format!(
                "exceeded limit of {limit} with {active_pending} alerts"
            )));
        }
        Ok(out)
    }

    /// The alerts the query result stands for now, by label hash (pending, new).
    fn current(
        &self,
        ctx: &EvalContext<'_>,
        res: &[VectorSample],
    ) -> Result<HashMap<u64, Alert>, EvalError> {
        let ts = ctx.t;
        let mut current: HashMap<u64, Alert> = HashMap::with_capacity(res.len());
        for s in res {
            let (labels, annotations) = self.expand(ctx, &s.labels, s.v);
            let h = labels.stable_hash();
            if current.contains_key(&h) {
                return Err(EvalError(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                ));
            }
            current.insert(
                h,
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value: s.v,
                    active_at: ts,
                    fired_at: 0,
                    resolved_at: 0,
                    last_sent_at: 0,
                    valid_until: 0,
                    keep_firing_since: 0,
                    kept_by_while_since: 0,
                    flapping: false,
                    source: s.labels.without_metric_name().stable_hash(),
                },
            );
        }
        Ok(current)
    }

    /// medic's hysteresis: which firing alerts the looser condition still holds for (by
    /// source series), queried only when a firing alert left the result.
    fn held(
        &self,
        ctx: &EvalContext<'_>,
        result_fps: &HashSet<u64>,
    ) -> Result<HashMap<u64, f64>, EvalError> {
        Ok(match &self.keep_firing_while {
            Some((_, expr))
                if self
                    .active
                    .iter()
                    .any(|(h, a)| a.state == AlertState::Firing && !result_fps.contains(h)) =>
            {
                query_floats(ctx, expr)?
                    .into_iter()
                    .map(|s| (s.labels.without_metric_name().stable_hash(), s.v))
                    .collect()
            }
            _ => HashMap::new(),
        })
    }

    fn expand(&self, ctx: &EvalContext<'_>, series: &Labels, value: f64) -> (Labels, Labels) {
        let data = alert_data(series, ctx.external_labels, ctx.external_url, value);
        let mut b: LabelsBuilder = series.to_builder();
        b.del("__name__");
        for (k, t) in &self.labels {
            b.set(k.as_str(), t.expand(&data, ctx.funcs));
        }
        b.set("alertname", self.name.as_str());
        let annotations = Labels::from_pairs(
            self.annotations
                .iter()
                .map(|(k, t)| (k.clone(), t.expand(&data, ctx.funcs))),
        );
        (b.build(), annotations)
    }

    /// Records firing/not-firing changes and marks alerts that change too often.
    fn track_flapping(&mut self, ts: i64, changed: &[u64]) {
        let Some(spec) = self.flapping else { return };
        let window = spec.window.as_millis() as i64;
        for h in changed {
            self.changes.entry(*h).or_default().push_back(ts);
        }
        self.changes.retain(|h, times| {
            while times.front().is_some_and(|t| ts - t > window) {
                times.pop_front();
            }
            let flapping = times.len() > spec.max_changes;
            if let Some(a) = self.active.get_mut(h) {
                a.flapping = flapping;
            }
            !times.is_empty()
        });
    }

    /// Firing and pending alerts (and resolved ones still kept), sorted by labels.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// The rule's state: the highest of its alerts'.
    pub fn state(&self) -> AlertState {
        let mut s = AlertState::Inactive;
        for a in self.active.values() {
            if a.state == AlertState::Firing {
                return AlertState::Firing;
            }
            if a.state == AlertState::Pending {
                s = AlertState::Pending;
            }
        }
        s
    }

    /// Restores `for` state from the `ALERTS_FOR_STATE` series in `store` after a restart, as
    /// Prometheus does: an alert that had been pending keeps the time it already waited, moved
    /// on by the downtime; one that would fire within `grace` waits at least `grace`.
    pub fn restore_for_state(
        &mut self,
        store: &dyn Queryable,
        ts: i64,
        outage_tolerance: Duration,
        grace: Duration,
    ) {
        self.restored = true;
        if self.hold < grace {
            return;
        }
        let mint = ts - outage_tolerance.as_millis() as i64;
        let Ok(q) = store.querier(mint, ts) else {
            return;
        };
        for a in self.active.values_mut() {
            let mut matchers = vec![medic_model::Matcher::equal("__name__", "ALERTS_FOR_STATE")];
            for l in a.labels.iter() {
                matchers.push(medic_model::Matcher::equal(&*l.name, &*l.value));
            }
            let Ok(set) = q.select(&matchers) else {
                continue;
            };
            let Some(Ok(series)) = set.into_iter().next() else {
                continue;
            };
            let Some(last) = series.samples.iter().rev().find(|s| s.t < ts) else {
                continue;
            };
            if medic_model::is_stale_nan(last.v) {
                continue;
            }
            let down_at = last.t / 1000 * 1000;
            let mut restored = last.v as i64 * 1000;
            let spent = down_at - restored;
            let remaining = self.hold.as_millis() as i64 - spent;
            if remaining <= 0 {
                // It was firing; the next evaluation fires it again if it still holds.
            } else if remaining < grace.as_millis() as i64 {
                restored = ts + grace.as_millis() as i64 - self.hold.as_millis() as i64;
            } else {
                restored += ts - down_at;
            }
            a.active_at = restored;
        }
    }
}

/// Whether a firing alert that left the query result stays firing: held by
/// `keep_firing_while`, or within `keep_firing_for`.
fn still_kept(a: &mut Alert, held: &HashMap<u64, f64>, keep_firing_for: Duration, ts: i64) -> bool {
    let mut keep = false;
    if a.state == AlertState::Firing {
        if let Some(v) = held.get(&a.source) {
            keep = true;
            a.value = *v;
            if a.kept_by_while_since == 0 {
                a.kept_by_while_since = ts;
            }
        } else if !keep_firing_for.is_zero() {
            if a.keep_firing_since == 0 {
                a.keep_firing_since = ts;
            }
            if ts - a.keep_firing_since < keep_firing_for.as_millis() as i64 {
                keep = true;
            }
        }
    }
    keep
}
