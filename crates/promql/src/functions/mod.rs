//! PromQL functions, one file per family: [`rate`] (rate, increase, delta, irate, idelta,
//! deriv, predict_linear, resets, changes), [`over_time`] (`*_over_time`), [`math`]
//! (elementwise math and trigonometry, clamp, round), [`misc`] (labels, time, sorting, absent,
//! scalar/vector, histogram_quantile).

pub(crate) mod extended;
pub(crate) mod histogram;
mod info;
mod math;
mod misc;
pub(crate) mod over_time;
pub(crate) mod rate;

use std::sync::Arc;

use medic_model::{Labels, Sample};
use promql_parser::parser::{Call, Expr, RangeModifier};

use crate::engine::{ms, Evaluator};
use crate::value::{RangeSeries, Value, VectorSample};
use crate::Error;

/// A range-vector argument with what range functions need to know about it. Windows borrow
/// from the query's loaded series, so a step copies no samples.
pub(crate) struct RangeArg {
    data: Arc<Vec<RangeSeries>>,
    /// Each non-empty window: series index, then the range of its floats and of its
    /// histograms.
    windows: Vec<Window>,
    /// The window's length (ms).
    pub range_ms: i64,
    /// The window's end after `@` and `offset` (ms).
    pub end: i64,
    /// `anchored` or `smoothed`: the windows then reach a lookback before the range (and for
    /// `smoothed` after it), for [`extended`] to trim.
    pub modifier: Option<RangeModifier>,
}

/// One series' window: `floats` and `histograms` index its points inside the range.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    series: usize,
    floats: std::ops::Range<usize>,
    histograms: std::ops::Range<usize>,
}

impl RangeArg {
    fn whole(series: Vec<RangeSeries>, range_ms: i64, end: i64) -> Self {
        let windows = series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, s)| Window {
                series: i,
                floats: 0..s.samples.len(),
                histograms: 0..s.histograms.len(),
            })
            .collect();
        RangeArg {
            data: Arc::new(series),
            windows,
            range_ms,
            end,
            modifier: None,
        }
    }

    /// The windows that hold floats: each series' labels and its floats inside the range
    /// (what functions that ignore histograms read).
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.windows
            .iter()
            .filter(|w| !w.floats.is_empty())
            .map(|w| {
                let s = &self.data[w.series];
                (&s.labels, &s.samples[w.floats.clone()])
            })
    }

    /// The windows of floats alone: a window that also holds a histogram is left out (for the
    /// functions that give no value for a mix; [`RangeArg::with_histograms`] lists it).
    pub fn floats_only(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.windows
            .iter()
            .filter(|w| w.histograms.is_empty() && !w.floats.is_empty())
            .map(|w| {
                let s = &self.data[w.series];
                (&s.labels, &s.samples[w.floats.clone()])
            })
    }

    /// The windows that hold a histogram: labels, floats, histograms.
    pub fn with_histograms(
        &self,
    ) -> impl Iterator<Item = (&Labels, &[Sample], &[medic_model::HistogramSample])> {
        self.windows
            .iter()
            .filter(|w| !w.histograms.is_empty())
            .map(|w| {
                let s = &self.data[w.series];
                (
                    &s.labels,
                    &s.samples[w.floats.clone()],
                    &s.histograms[w.histograms.clone()],
                )
            })
    }

    /// Every window: labels, floats, histograms.
    pub fn all(
        &self,
    ) -> impl Iterator<Item = (&Labels, &[Sample], &[medic_model::HistogramSample])> {
        self.windows.iter().map(|w| {
            let s = &self.data[w.series];
            (
                &s.labels,
                &s.samples[w.floats.clone()],
                &s.histograms[w.histograms.clone()],
            )
        })
    }

    /// Whether no series has samples in the range.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

impl Evaluator<'_> {
    /// Evaluates a range-vector argument (matrix selector or subquery).
    pub(crate) fn range_arg(&mut self, e: &Expr, t: i64) -> Result<RangeArg, Error> {
        let e = strip_parens(e);
        match e {
            Expr::MatrixSelector(m) => {
                let data = self.series_without_stale(&m.vs)?;
                let end = self.shifted(t, &m.vs.at, &m.vs.offset);
                let modifier = range_modifier(&m.vs);
                let lookback = self.opts.lookback_ms;
                let (from, to) = match modifier {
                    None => (end - ms(&m.range), end),
                    Some(RangeModifier::Anchored) => (end - ms(&m.range) - lookback, end),
                    Some(RangeModifier::Smoothed) => {
                        (end - ms(&m.range) - lookback, end + lookback)
                    }
                };
                let windows = data
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| {
                        let a = s.samples.partition_point(|x| x.t <= from);
                        let b = s.samples.partition_point(|x| x.t <= to);
                        let (ha, hb) = if s.histograms.is_empty() {
                            (0, 0)
                        } else {
                            (
                                s.histograms.partition_point(|x| x.t <= from),
                                s.histograms.partition_point(|x| x.t <= to),
                            )
                        };
                        (b > a || hb > ha).then_some(Window {
                            series: i,
                            floats: a..b,
                            histograms: ha..hb,
                        })
                    })
                    .collect();
                Ok(RangeArg {
                    data,
                    windows,
                    range_ms: ms(&m.range),
                    end,
                    modifier,
                })
            }
            Expr::Subquery(sq) => {
                let series = match self.eval(e, t)? {
                    Value::Matrix(m) => m,
                    _ => unreachable!("a subquery evaluates to a matrix"),
                };
                Ok(RangeArg::whole(
                    series,
                    ms(&sq.range),
                    self.shifted(t, &sq.at, &sq.offset),
                ))
            }
            other => match self.eval(other, t)? {
                Value::Matrix(series) => Ok(RangeArg::whole(series, 0, t)),
                v => Err(Error::Eval(format!(
                    "expected range vector, got {}",
                    v.type_name()
                ))),
            },
        }
    }

    pub(crate) fn call(&mut self, c: &Call, t: i64) -> Result<Value, Error> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        check_range_modifiers(name, &args)?;
        if name.starts_with("sort") && self.step > 0 {
            self.annotate(crate::annotations::sort_in_range_query());
        }
        let v = if name == "info" {
            self.call_info(&args, t)?
        } else if let Some(v) = self.call_histogram(name, &args, t)? {
            v
        } else if let Some(v) = self.call_rate(name, &args, t)? {
            v
        } else if let Some(v) = self.call_over_time(name, &args, t)? {
            v
        } else if let Some(v) = self.call_math(name, &args, t)? {
            v
        } else if let Some(v) = self.call_misc(name, &args, t)? {
            v
        } else {
            return Err(Error::Eval(format!(
                "function {name:?} is not supported yet"
            )));
        };
        if let Value::Vector(vec) = &v {
            check_unique_labels(vec)?;
        }
        Ok(v)
    }
}

/// `anchored` and `smoothed` ranges only feed the functions that define them (the message is
/// Prometheus's).
fn check_range_modifiers(name: &str, args: &[&Expr]) -> Result<(), Error> {
    const ANCHORED: &[&str] = &["changes", "delta", "increase", "rate", "resets"];
    const SMOOTHED: &[&str] = &["delta", "increase", "rate"];
    for arg in args {
        let Expr::MatrixSelector(m) = strip_parens(arg) else {
            continue;
        };
        let (modifier, allowed) = match range_modifier(&m.vs) {
            Some(RangeModifier::Anchored) => ("anchored", ANCHORED),
            Some(RangeModifier::Smoothed) => ("smoothed", SMOOTHED),
            None => continue,
        };
        if !allowed.contains(&name) {
            return Err(Error::Eval(format!(
                "{modifier} modifier can only be used with: {} - not with {name}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Dropping the metric name can make two series identical; Prometheus refuses that result.
pub(crate) fn check_unique_labels(v: &[VectorSample]) -> Result<(), Error> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.labels) {
            return Err(Error::Eval(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

/// The selector's `anchored` or `smoothed` modifier, if any.
pub(crate) fn range_modifier(vs: &promql_parser::parser::VectorSelector) -> Option<RangeModifier> {
    if vs.anchored {
        Some(RangeModifier::Anchored)
    } else if vs.smoothed {
        Some(RangeModifier::Smoothed)
    } else {
        None
    }
}

pub(crate) fn strip_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// A vector sample whose metric name is to be dropped (most functions do this).
pub(crate) fn unnamed(labels: &Labels, t: i64, v: f64) -> VectorSample {
    VectorSample {
        drop_name: true,
        labels: labels.clone(),
        t,
        v,
        h: None,
    }
}

impl Evaluator<'_> {
    /// The annotations a range function notes about its windows (Prometheus's texts): a name
    /// that does not look like a counter's under `rate`/`increase`, floats and histograms in one
    /// window, gauge histograms under a counter function and the reverse, exponential and
    /// custom buckets in one window.
    pub(crate) fn note_range_windows(&mut self, name: &str, arg: &RangeArg) {
        use crate::annotations as a;
        const IGNORE_HISTOGRAMS: &[&str] = &[
            "deriv",
            "predict_linear",
            "double_exponential_smoothing",
            "min_over_time",
            "max_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "quantile_over_time",
            "mad_over_time",
        ];
        // Float windows matter only to `rate`/`increase`; the rest look at histograms alone.
        let counter_rate = matches!(name, "rate" | "increase");
        let instant = matches!(name, "irate" | "idelta");
        let mut notes = Vec::new();
        // Windows of one metric come one after another: its info is made once, not per window.
        let mut last_noted: Option<&str> = None;
        for (labels, floats, hs) in arg.all() {
            if hs.is_empty() && !counter_rate && !instant {
                continue;
            }
            let metric = labels.get(medic_model::METRIC_NAME).unwrap_or("");
            if instant {
                note_last_two(name, metric, floats, hs, &mut notes);
                continue;
            }
            if hs.is_empty() {
                if !metric.is_empty()
                    && last_noted != Some(metric)
                    && !crate::annotations::counter_like(metric)
                {
                    notes.push(a::possible_non_counter(metric));
                    last_noted = Some(metric);
                }
                continue;
            }
            if !floats.is_empty() {
                if IGNORE_HISTOGRAMS.contains(&name) {
                    notes.push(a::histogram_ignored_in_mixed_range(metric));
                } else if matches!(
                    name,
                    "rate" | "increase" | "delta" | "sum_over_time" | "avg_over_time"
                ) {
                    notes.push(a::mixed_floats_histograms(metric));
                }
                continue;
            }
            match name {
                "rate" | "increase" if hs.iter().any(gauge) => {
                    notes.push(a::histogram_not_counter(metric));
                }
                "delta" if !hs.iter().all(gauge) => notes.push(a::histogram_not_gauge(metric)),
                _ => {}
            }
            // A counter's first histogram only lends its count: the mix is looked for after it.
            let used = match name {
                "rate" | "increase" => &hs[1..],
                "delta" | "sum_over_time" | "avg_over_time" => hs,
                _ => &[],
            };
            if used.iter().any(custom) && !used.iter().all(custom) {
                notes.push(a::mixed_exponential_custom(metric));
            } else if name == "delta" && hs.len() > 1 && reconciled(&hs[0], &hs[hs.len() - 1]) {
                notes.push(a::custom_buckets_reconciled("subtraction"));
            }
        }
        for n in notes {
            self.annotate(n);
        }
    }
}

fn gauge(h: &medic_model::HistogramSample) -> bool {
    h.h.counter_reset_hint == medic_model::histogram::CounterResetHint::Gauge
}

fn custom(h: &medic_model::HistogramSample) -> bool {
    h.h.uses_custom_buckets()
}

/// Two custom-bucket histograms with different bounds: combining them cuts both to the
/// bounds they share.
fn reconciled(a: &medic_model::HistogramSample, b: &medic_model::HistogramSample) -> bool {
    custom(a) && custom(b) && a.h.custom_values != b.h.custom_values
}

/// `irate`/`idelta` read a window's last two points: a float and a histogram there are a
/// mix; two histograms may be of the wrong kind (a gauge under `irate`, gauge and counter
/// under `idelta`), of both bucket kinds (`idelta`) or of different custom bounds.
fn note_last_two(
    name: &str,
    metric: &str,
    floats: &[Sample],
    hs: &[medic_model::HistogramSample],
    notes: &mut Vec<crate::annotations::Annotation>,
) {
    use crate::annotations as a;
    let last_float = floats.last().map(|f| f.t);
    let hs = &hs[hs.len().saturating_sub(2)..];
    // Times of the last two points: floats and histograms never share a timestamp.
    let mut times: Vec<(i64, bool)> = floats[floats.len().saturating_sub(2)..]
        .iter()
        .map(|f| (f.t, false))
        .chain(hs.iter().map(|h| (h.t, true)))
        .collect();
    times.sort_unstable();
    let last: Vec<bool> = times.iter().rev().take(2).map(|x| x.1).collect();
    if last.len() < 2 || (!last[0] && !last[1]) {
        return;
    }
    if last[0] != last[1] {
        notes.push(a::mixed_floats_histograms(metric));
        return;
    }
    debug_assert!(last_float.is_none_or(|t| t < hs[0].t));
    let (prev, cur) = (&hs[0], &hs[1]);
    if name == "irate" && (gauge(prev) || gauge(cur)) {
        notes.push(a::histogram_not_counter(metric));
    }
    if name == "idelta" && gauge(prev) != gauge(cur) {
        notes.push(a::histogram_not_gauge(metric));
    }
    if custom(prev) != custom(cur) {
        if name == "idelta" {
            notes.push(a::mixed_exponential_custom(metric));
        }
    } else if reconciled(prev, cur) && !(name == "irate" && cur.h.detect_reset(&prev.h)) {
        // (After a counter reset `irate` takes the newer histogram as it is.)
        notes.push(a::custom_buckets_reconciled("subtraction"));
    }
}
