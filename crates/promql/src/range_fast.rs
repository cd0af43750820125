//! Range queries of the shapes dashboards run most, evaluated over all steps at once:
//! `f(selector[range])` for the rate family and the value-only `*_over_time` functions, and a
//! simple aggregation (`sum avg count min max group stddev stdvar`, `by`/`without`) of one.
//!
//! The step-by-step evaluator slices every series' window with two binary searches per step,
//! clones each series' labels into a vector per step and regroups aggregations by hashing label
//! sets per step. Here each series is walked once, its windows advanced with two cursors; its
//! group is found once; and per step only values move. The functions themselves are the step
//! evaluator's (`functions::rate::window_value`, `functions::over_time::simple_value`,
//! `aggregate::simple_fold`), called on the same windows in the same order, so results are the
//! same bit for bit. Anything else, or a shape whose result could need the step evaluator's
//! checks (names dropped into duplicates, `@`), returns `None` and goes the usual way.

use std::collections::HashMap;

use medic_model::{Labels, Sample, METRIC_NAME};
use promql_parser::parser::{AggregateExpr, Call, Expr, LabelModifier, MatrixSelector};

use crate::engine::{ms, Evaluator};
use crate::functions::{over_time, rate, strip_parens};
use crate::value::RangeSeries;
use crate::Error;

/// Range functions evaluated here.
fn supported_function(name: &str) -> bool {
    matches!(
        name,
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "resets" | "changes"
    ) || over_time::simple_value(name, &[]).is_some()
}

/// `f(selector[range])` with a supported `f`, no `@`: the function and the selector.
fn range_call(e: &Expr) -> Option<(&str, &MatrixSelector)> {
    let Expr::Call(Call { func, args }) = strip_parens(e) else {
        return None;
    };
    if !supported_function(func.name) || args.args.len() != 1 {
        return None;
    }
    match strip_parens(&args.args[0]) {
        Expr::MatrixSelector(m) if m.vs.at.is_none() => Some((func.name, m)),
        _ => None,
    }
}

/// Per series, its value at each step (NaN-free `None` where the function gives none).
struct PerSeries {
    labels: Vec<Labels>,
    values: Vec<Vec<Option<f64>>>,
}

impl Evaluator<'_> {
    /// The whole-range result of `expr`, or `None` if its shape is not one handled here.
    pub(crate) fn try_range_fast(
        &mut self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Option<Vec<RangeSeries>>, Error> {
        let e = strip_parens(expr);
        if let Some((name, m)) = range_call(e) {
            let per = self.windows_over_steps(name, m, start, end, step)?;
            return Ok(unaggregated(per, start, step));
        }
        let Expr::Aggregate(a) = e else {
            return Ok(None);
        };
        let op = a.op.to_string().to_lowercase();
        if a.param.is_some() || crate::aggregate::simple_fold(&op, [1.0].into_iter()).is_none() {
            return Ok(None);
        }
        if let Some(LabelModifier::Include(keep)) = &a.modifier {
            if keep.labels.iter().any(|l| l == METRIC_NAME) {
                return Ok(None);
            }
        }
        let Some((name, m)) = range_call(&a.expr) else {
            return Ok(None);
        };
        let per = self.windows_over_steps(name, m, start, end, step)?;
        aggregated(&op, a, per, start, step).map(Some)
    }

    /// The function's value for every series at every step, windows advanced by cursors.
    fn windows_over_steps(
        &mut self,
        name: &str,
        m: &MatrixSelector,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<PerSeries, Error> {
        let data = self.series_without_stale(&m.vs)?;
        let range_ms = ms(&m.range);
        let steps = ((end - start) / step + 1) as usize;
        let mut per = PerSeries {
            labels: Vec::with_capacity(data.len()),
            values: Vec::with_capacity(data.len()),
        };
        for (i, s) in data.iter().enumerate() {
            if i % 256 == 0 {
                self.check_deadline()?;
            }
            let x: &[Sample] = &s.samples;
            let (mut a, mut b) = (0usize, 0usize);
            let mut vals = Vec::with_capacity(steps);
            for k in 0..steps {
                let t = start + k as i64 * step;
                let te = self.shifted(t, &None, &m.vs.offset);
                let from = te - range_ms;
                // Windows only move forward: (from, te] for increasing t.
                while a < x.len() && x[a].t <= from {
                    a += 1;
                }
                b = b.max(a);
                while b < x.len() && x[b].t <= te {
                    b += 1;
                }
                let w = &x[a..b];
                vals.push(if w.is_empty() {
                    None
                } else if let Some(v) = over_time::simple_value(name, w) {
                    Some(v)
                } else {
                    rate::window_value(name, w, from, te, range_ms, t, None)
                });
            }
            per.labels.push(s.labels.clone());
            per.values.push(vals);
        }
        Ok(per)
    }
}

/// Each series with its name dropped; `None` (the step evaluator decides) if that makes two
/// series alike.
fn unaggregated(per: PerSeries, start: i64, step: i64) -> Option<Vec<RangeSeries>> {
    let mut seen = std::collections::HashSet::with_capacity(per.labels.len());
    let mut out = Vec::new();
    for (labels, vals) in per.labels.into_iter().zip(per.values) {
        let labels = labels.without_metric_name();
        if !seen.insert(labels.clone()) {
            return None;
        }
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| Sample::new(start + k as i64 * step, v)))
            .collect();
        if !samples.is_empty() {
            out.push(RangeSeries { labels, samples });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Some(out)
}

/// The aggregation per group and step, members folded in series order as the step evaluator
/// folds them.
fn aggregated(
    op: &str,
    a: &AggregateExpr,
    per: PerSeries,
    start: i64,
    step: i64,
) -> Result<Vec<RangeSeries>, Error> {
    let mut group_of = Vec::with_capacity(per.labels.len());
    let mut groups: Vec<Labels> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for l in &per.labels {
        let g = match &a.modifier {
            None => Labels::empty(),
            Some(m) => crate::aggregate::project(l, m),
        };
        let next = groups.len();
        let i = *index.entry(g.clone()).or_insert_with(|| {
            groups.push(g);
            next
        });
        group_of.push(i);
    }
    let steps = per.values.first().map_or(0, Vec::len);
    let mut out: Vec<Vec<Sample>> = vec![Vec::new(); groups.len()];
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
    for k in 0..steps {
        for (s, vals) in per.values.iter().enumerate() {
            if let Some(v) = vals[k] {
                members[group_of[s]].push(v);
            }
        }
        for (g, m) in members.iter_mut().enumerate() {
            if m.is_empty() {
                continue;
            }
            let v = crate::aggregate::simple_fold(op, m.iter().copied())
                .ok_or_else(|| Error::Eval(format!("aggregation {op:?} is not supported yet")))?;
            out[g].push(Sample::new(start + k as i64 * step, v));
            m.clear();
        }
    }
    let mut series: Vec<RangeSeries> = groups
        .into_iter()
        .zip(out)
        .filter(|(_, s)| !s.is_empty())
        .map(|(labels, samples)| RangeSeries {
            labels: labels.without_metric_name(),
            samples,
        })
        .collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}
