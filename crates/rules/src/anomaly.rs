//! Anomaly rules: every series of the rule's query gets its own streaming detector
//! ([`medic_anomaly::Detector`]). Each evaluation feeds the detectors the query's values and
//! writes four series per input series —
//!
//! - `anomaly_score{anomaly="<rule>", <series labels>}` in [0, 1],
//! - `anomaly_baseline`, `anomaly_lower`, `anomaly_upper` (the expected value and its band),
//!
//! so a graph shows the band — and fires alerts like an alerting rule named after the rule while
//! a series is in an anomaly episode (`for`, `keep_firing_for`, labels and annotations work as
//! there; `$value` is the score). Detector state is snapshotted by the caller
//! ([`AnomalyRule::snapshot`]) and, for a rule with none, warmed from history in the store.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use medic_anomaly::{Detector, Episode, Params, Point};
use medic_model::Labels;
use medic_promql::VectorSample;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::file::RuleSpec;
use crate::rule::{query_floats, AlertingRule, EvalContext, EvalError};

/// The label naming the rule on the series an anomaly rule writes.
pub const RULE_LABEL: &str = "anomaly";
/// The series an anomaly rule writes for each input series.
pub const SERIES: [&str; 4] = [
    "anomaly_score",
    "anomaly_baseline",
    "anomaly_lower",
    "anomaly_upper",
];
/// Series an anomaly rule tracks when its group sets no `limit`: past it, evaluation fails
/// rather than memory growing without bound.
pub const MAX_SERIES: usize = 10_000;
/// Anomalies kept per rule for the API.
pub const MAX_EVENTS: usize = 1000;
/// A series that has not been seen this long loses its detector.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Most points fed to one detector when warming from history.
const MAX_WARM_POINTS: i64 = 20_000;

/// One series' detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesDetector {
    /// The input series' labels without its name.
    pub labels: Labels,
    pub detector: Detector,
    /// When the series was last seen (ms).
    pub seen_at: i64,
}

/// One anomaly: an episode of one series, from the point that signalled it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyEvent {
    pub rule: String,
    pub labels: Labels,
    /// Start (ms) and end (ms, once the score has settled).
    pub start: i64,
    pub end: Option<i64>,
    /// Score at the start, and the highest since.
    pub score: f64,
    pub peak: f64,
    pub value: f64,
    pub baseline: f64,
    pub lower: f64,
    pub upper: f64,
    /// Which test spoke loudest at the start: `spike`, `shift` or `spread`.
    pub test: &'static str,
}

/// A rule's detectors, as snapshotted and restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSnapshot {
    pub name: String,
    pub query: String,
    pub series: Vec<SeriesDetector>,
}

/// An anomaly rule; see the module docs.
#[derive(Debug, Clone)]
pub struct AnomalyRule {
    /// The alerting half: alerts for anomalous series.
    pub alerting: AlertingRule,
    pub params: Params,
    /// History that warms a rule without detectors.
    pub history: Duration,
    pub detectors: HashMap<u64, SeriesDetector>,
    pub events: VecDeque<AnomalyEvent>,
    /// Detectors have been restored or warmed (or there was nothing to do).
    pub warmed: bool,
}

fn which_test(p: &Point) -> &'static str {
    if p.spike >= p.shift && p.spike >= p.spread {
        "spike"
    } else if p.shift >= p.spread {
        "shift"
    } else {
        "spread"
    }
}

impl AnomalyRule {
    /// Builds the rule from its validated spec and its alerting half.
    pub fn new(spec: &RuleSpec, alerting: AlertingRule) -> Result<AnomalyRule, EvalError> {
        let mut params = Params::default();
        if let Some(s) = &spec.sensitivity {
            params.threshold = s.threshold().map_err(EvalError)?;
        }
        if let Some(s) = &spec.seasonality {
            params.seasonality = s.parse().map_err(EvalError)?;
        }
        if let Some(d) = spec.settle {
            params.settle_ms = d.as_millis() as i64;
        }
        if let Some(w) = spec.warmup {
            params.warmup = w;
        }
        Ok(AnomalyRule {
            alerting,
            params,
            history: spec.history.unwrap_or(Duration::from_secs(7 * 24 * 3600)),
            detectors: HashMap::new(),
            events: VecDeque::new(),
            warmed: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.alerting.name
    }

    /// The labels of one written series.
    fn series_labels(&self, name: &str, labels: &Labels) -> Labels {
        let mut b = labels.to_builder();
        b.set("__name__", name);
        b.set(RULE_LABEL, self.alerting.name.as_str());
        b.build()
    }

    /// Feeds the query's values at `ctx.t` to the detectors, then advances the alerts.
    /// Returns the series to write and the `ALERTS` samples.
    pub fn eval(
        &mut self,
        ctx: &EvalContext<'_>,
        limit: usize,
        interval: Duration,
    ) -> Result<Vec<VectorSample>, EvalError> {
        let t = ctx.t;
        if !self.warmed {
            self.warmed = true;
            self.warm(ctx, interval);
        }
        let res = query_floats(ctx, self.alerting.expr())?;
        let cap = if limit > 0 { limit } else { MAX_SERIES };
        let mut out = Vec::with_capacity(res.len() * 4);
        let mut anomalous = Vec::new();
        let mut refused = 0;
        for s in &res {
            let labels = s.labels.without_metric_name();
            let h = labels.stable_hash();
            if !self.detectors.contains_key(&h) && self.detectors.len() >= cap {
                refused += 1;
                continue;
            }
            let sd = self.detectors.entry(h).or_insert_with(|| SeriesDetector {
                labels: labels.clone(),
                detector: Detector::new(),
                seen_at: t,
            });
            sd.seen_at = t;
            let was = sd.detector.episode.active;
            let peak_before = sd.detector.episode.peak;
            let Some(p) = sd.detector.update(&self.params, t, s.v) else {
                // NaN, ±Inf, a staleness marker or a repeated timestamp: nothing to say.
                continue;
            };
            let values = [p.score, p.baseline, p.lower, p.upper];
            for (name, v) in SERIES.iter().zip(values) {
                // The band is infinite until the spike tail is learned: nothing to write.
                if !v.is_finite() {
                    continue;
                }
                out.push(VectorSample::new(self.series_labels(name, &labels), t, v));
            }
            if p.signal {
                self.record(labels.clone(), t, s.v, &p);
            } else if was && !p.anomalous {
                self.close(&labels, t, peak_before.max(p.score));
            }
            if p.anomalous {
                anomalous.push(VectorSample::new(labels, t, p.score));
            }
        }
        self.detectors
            .retain(|_, sd| t - sd.seen_at < FORGET_AFTER.as_millis() as i64);
        let alerts = self.alerting.eval_vector(ctx, &anomalous, limit)?;
        out.extend(alerts);
        if refused > 0 {
            return Err(EvalError(format!(
                "anomaly rule tracks at most {cap} series; {refused} more were not scored (raise the group's limit or narrow the query)"
            )));
        }
        Ok(out)
    }

    fn record(&mut self, labels: Labels, t: i64, value: f64, p: &Point) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(AnomalyEvent {
            rule: self.alerting.name.clone(),
            labels,
            start: t,
            end: None,
            score: p.score,
            peak: p.score,
            value,
            baseline: p.baseline,
            lower: p.lower,
            upper: p.upper,
            test: which_test(p),
        });
    }

    fn close(&mut self, labels: &Labels, t: i64, peak: f64) {
        if let Some(e) = self
            .events
            .iter_mut()
            .rev()
            .find(|e| e.end.is_none() && &e.labels == labels)
        {
            e.end = Some(t);
            e.peak = e.peak.max(peak);
        }
    }

    /// Open anomalies with their peak so far, closed ones as recorded.
    pub fn events(&self) -> Vec<AnomalyEvent> {
        self.events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if e.end.is_none() {
                    if let Some(sd) = self.detectors.get(&e.labels.stable_hash()) {
                        e.peak = e.peak.max(sd.detector.episode.peak);
                    }
                }
                e
            })
            .collect()
    }

    /// Feeds a rule without detectors the query's history: the last `history` at the group's
    /// interval (coarser if that would be more than 20,000 points).
    fn warm(&mut self, ctx: &EvalContext<'_>, interval: Duration) {
        if self.history.is_zero() || !self.detectors.is_empty() {
            return;
        }
        let span = self.history.as_millis() as i64;
        let step = (interval.as_millis() as i64)
            .max(1000)
            .max(span / MAX_WARM_POINTS);
        let (start, end) = (ctx.t - span, ctx.t - step);
        if end < start {
            return;
        }
        let began = std::time::Instant::now();
        let query = &self.alerting.query;
        let series = match ctx.backend {
            Some(b) => b.range(query, start, end, step).map_err(|e| e.0),
            None => ctx
                .engine
                .range(&*ctx.store, query, start, end, step)
                .map_err(|e| e.to_string()),
        };
        let series = match series {
            Ok(s) => s,
            Err(e) => {
                warn!(rule = %self.alerting.name, error = %e, "could not warm anomaly detectors from history");
                return;
            }
        };
        let mut points = 0;
        for rs in series.into_iter().take(MAX_SERIES) {
            let labels = rs.labels.without_metric_name();
            let mut d = Detector::new();
            for s in &rs.samples {
                d.update(&self.params, s.t, s.v);
            }
            points += rs.samples.len();
            // History teaches the baseline; anomalies start with live data.
            d.episode = Episode::default();
            let seen_at = rs.samples.last().map(|s| s.t).unwrap_or(ctx.t);
            self.detectors.insert(
                labels.stable_hash(),
                SeriesDetector {
                    labels,
                    detector: d,
                    seen_at,
                },
            );
        }
        debug!(rule = %self.alerting.name, series = self.detectors.len(), points, took = ?began.elapsed(), "anomaly detectors warmed from history");
    }

    /// The detectors, to save.
    pub fn snapshot(&self) -> RuleSnapshot {
        let mut series: Vec<SeriesDetector> = self.detectors.values().cloned().collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        RuleSnapshot {
            name: self.alerting.name.clone(),
            query: self.alerting.query.clone(),
            series,
        }
    }

    /// Takes detectors from a snapshot of the same rule (name and query).
    pub fn restore(&mut self, snap: RuleSnapshot) {
        self.detectors = snap
            .series
            .into_iter()
            .map(|sd| (sd.labels.stable_hash(), sd))
            .collect();
        self.warmed = true;
    }

    /// Takes over detectors and anomalies from the rule this one replaces (a reload).
    pub fn copy_state(&mut self, old: &mut AnomalyRule) {
        self.detectors = std::mem::take(&mut old.detectors);
        self.events = std::mem::take(&mut old.events);
        self.warmed = old.warmed;
    }
}
