//! Range queries of the shapes dashboards run most, evaluated over all steps at once:
//! `f(selector[range])` for the rate family and the value-only `*_over_time` functions, and a
//! simple aggregation (`sum avg count min max group stddev stdvar`, `by`/`without`) of one or
//! of a plain instant selector (`sum by (job) (up)`).
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
use crate::value::{RangeSeries, VectorSample};
use crate::Error;

/// Range functions evaluated here.
fn supported_function(name: &str) -> bool {
    (rate::FUNCTIONS.contains(&name) && name != "predict_linear")
        || over_time::simple_value(name, &[]).is_some()
}

/// A range call this module evaluates: the function, its selector, and `predict_linear`'s
/// horizon (an expression of constants only, so the same at every step).
type RangeCall<'e> = (&'e str, &'e MatrixSelector, Option<&'e Expr>);

/// `f(selector[range])` with a supported `f`, no `@` (or `predict_linear(selector[range],
/// constant)`).
fn range_call(e: &Expr) -> Option<RangeCall<'_>> {
    let Expr::Call(Call { func, args }) = strip_parens(e) else {
        return None;
    };
    let horizon = match (func.name, args.args.len()) {
        ("predict_linear", 2) if constant(&args.args[1]) => Some(args.args[1].as_ref()),
        (name, 1) if supported_function(name) => None,
        _ => return None,
    };
    match strip_parens(&args.args[0]) {
        Expr::MatrixSelector(m) if m.vs.at.is_none() && !m.vs.anchored && !m.vs.smoothed => {
            Some((func.name, m, horizon))
        }
        _ => None,
    }
}

/// Whether `e` is built of number literals alone (`4 * 3600`): a scalar with no time in it.
fn constant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => constant(&p.expr),
        Expr::Unary(u) => constant(&u.expr),
        Expr::Binary(b) => b.modifier.is_none() && constant(&b.lhs) && constant(&b.rhs),
        _ => false,
    }
}

/// Per series, its value at each step (`None` where the function gives none).
struct PerSeries {
    labels: Vec<Labels>,
    values: Vec<Vec<Option<f64>>>,
}

/// A node's value at every step of the range query, as the step evaluator would return it
/// (labels with the name still there, marked for removal), for the per-step evaluation of the
/// expression around it.
pub(crate) struct Precomputed {
    start: i64,
    step: i64,
    labels: Vec<Labels>,
    values: Vec<Vec<Option<f64>>>,
}

impl Precomputed {
    /// The node's vector at `t`, if `t` is one of the query's steps.
    pub(crate) fn at(&self, t: i64) -> Option<Vec<VectorSample>> {
        if t < self.start || (t - self.start) % self.step != 0 {
            return None;
        }
        let k = ((t - self.start) / self.step) as usize;
        if self.values.first().is_some_and(|v| k >= v.len()) {
            return None;
        }
        Some(
            self.labels
                .iter()
                .zip(&self.values)
                .filter_map(|(l, v)| {
                    v[k].map(|v| VectorSample {
                        labels: l.clone(),
                        t,
                        v,
                        h: None,
                        drop_name: true,
                    })
                })
                .collect(),
        )
    }
}

impl Evaluator<'_> {
    /// The whole-range result of `expr`, or `None` if its shape is not one handled here (its
    /// handled subexpressions are then computed for all steps at once, see [`Precomputed`]).
    pub(crate) fn try_range_fast(
        &mut self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Option<Vec<RangeSeries>>, Error> {
        let e = strip_parens(expr);
        if let Some(call) = range_call(e) {
            let Some(per) = self.windows_over_steps(call, start, end, step)? else {
                return Ok(None);
            };
            return Ok(unaggregated(per, start, step));
        }
        if let Some(series) = self.node_over_steps(e, start, end, step)? {
            return Ok(Some(finished(series, start, step)));
        }
        self.precompute(e, start, end, step)?;
        Ok(None)
    }

    /// For an instant query at `t`: the inner expressions of `e`'s subqueries computed over
    /// their grids, as a range query does (an instant query otherwise evaluates each inner step
    /// on its own).
    pub(crate) fn precompute_subqueries(&mut self, e: &Expr, t: i64) -> Result<(), Error> {
        let mut todo = vec![e];
        while let Some(e) = todo.pop() {
            match e {
                Expr::Subquery(_) => self.precompute(e, t, t, 1)?,
                _ => crate::engine::for_each_child(e, |c| todo.push(c)),
            }
        }
        Ok(())
    }

    /// Computes every handled subexpression of `e` for all steps (inside a subquery, on the
    /// subquery's own grid).
    fn precompute(&mut self, e: &Expr, start: i64, end: i64, step: i64) -> Result<(), Error> {
        // Deep (but allowed) queries grow the stack, as evaluation does.
        stacker::maybe_grow(crate::engine::RED_ZONE, crate::engine::EVAL_STACK, || {
            self.precompute_node(e, start, end, step)
        })
    }

    fn precompute_node(&mut self, e: &Expr, start: i64, end: i64, step: i64) -> Result<(), Error> {
        let e = strip_parens(e);
        let node = if let Some(call) = range_call(e) {
            self.windows_over_steps(call, start, end, step)?
        } else {
            self.node_over_steps(e, start, end, step)?
        };
        if let Some(per) = node {
            let key = e as *const Expr as usize;
            self.precomputed.insert(
                key,
                Precomputed {
                    start,
                    step,
                    labels: per.labels,
                    values: per.values,
                },
            );
            return Ok(());
        }
        match e {
            Expr::Aggregate(a) => {
                self.precompute(&a.expr, start, end, step)?;
                if let Some(p) = &a.param {
                    self.precompute(p, start, end, step)?;
                }
            }
            Expr::Unary(u) => self.precompute(&u.expr, start, end, step)?,
            Expr::Binary(b) => {
                self.precompute(&b.lhs, start, end, step)?;
                self.precompute(&b.rhs, start, end, step)?;
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.precompute(a, start, end, step)?;
                }
            }
            Expr::Subquery(sq) if sq.at.is_none() => {
                // The inner expression is evaluated at the subquery's own aligned times: over
                // the whole query, every multiple of its step in (start - offset - range,
                // end - offset]. Those become the inner node's grid.
                let sub = sq
                    .step
                    .as_ref()
                    .map(ms)
                    .filter(|s| *s > 0)
                    .unwrap_or(self.opts.default_subquery_step_ms);
                let off = crate::engine::offset_ms(&sq.offset);
                let from = start - off - ms(&sq.range);
                let mut first = from.div_euclid(sub) * sub;
                if first <= from {
                    first += sub;
                }
                let last_t = end - off;
                if first <= last_t {
                    let last = first + (last_t - first) / sub * sub;
                    self.precompute(&sq.expr, first, last, sub)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A simple aggregation of a handled range call, for every step: the groups' labels (the
    /// name, if any, still to drop) and values. `None` for other shapes.
    fn node_over_steps(
        &mut self,
        e: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Option<PerSeries>, Error> {
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
        let per = match strip_parens(&a.expr) {
            Expr::VectorSelector(vs) if vs.at.is_none() && !vs.smoothed => {
                self.selector_over_steps(vs, start, end, step)?
            }
            inner => match range_call(inner) {
                Some(call) => self.windows_over_steps(call, start, end, step)?,
                None => return Ok(None),
            },
        };
        let Some(per) = per else {
            return Ok(None);
        };
        aggregated(&op, a, per).map(Some)
    }

    /// An instant selector's value for every series at every step: the latest sample within
    /// the lookback, none if that is a staleness marker (as `select_instant` decides per
    /// step), found with one cursor per series.
    fn selector_over_steps(
        &mut self,
        vs: &promql_parser::parser::VectorSelector,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Option<PerSeries>, Error> {
        let data = self.series(vs)?;
        if data.iter().any(|s| !s.histograms.is_empty()) {
            return Ok(None);
        }
        let steps = ((end - start) / step + 1) as usize;
        if data.len().saturating_mul(steps) > MAX_CELLS.min(self.opts.max_samples) {
            return Ok(None);
        }
        let offset = crate::engine::offset_ms(&vs.offset);
        let lookback = self.opts.lookback_ms;
        let values = crate::parallel::map(&data, data.len() * steps, &self.stop, |s| {
            let x: &[Sample] = &s.samples;
            let mut b = 0usize;
            let mut vals = Vec::with_capacity(steps);
            for k in 0..steps {
                let te = start + k as i64 * step - offset;
                while b < x.len() && x[b].t <= te {
                    b += 1;
                }
                vals.push(match b.checked_sub(1).map(|i| x[i]) {
                    Some(last) if last.t > te - lookback && !medic_model::is_stale_nan(last.v) => {
                        Some(last.v)
                    }
                    _ => None,
                });
            }
            vals
        })?;
        Ok(Some(PerSeries {
            labels: data.iter().map(|s| s.labels.clone()).collect(),
            values,
        }))
    }

    /// The function's value for every series at every step, windows advanced by cursors.
    fn windows_over_steps(
        &mut self,
        (name, m, horizon): RangeCall<'_>,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Option<PerSeries>, Error> {
        let horizon = match horizon {
            Some(h) => Some(self.eval_scalar(h, start)?),
            None => None,
        };
        let data = self.series_without_stale(&m.vs)?;
        if data.iter().any(|s| !s.histograms.is_empty()) {
            return Ok(None);
        }
        let range_ms = ms(&m.range);
        let steps = ((end - start) / step + 1) as usize;
        // Every series' value at every step is held at once (16 bytes each): past the budget,
        // the step evaluator, which holds one step at a time, does it instead.
        if data.len().saturating_mul(steps) > MAX_CELLS.min(self.opts.max_samples) {
            return Ok(None);
        }
        let offset = crate::engine::offset_ms(&m.vs.offset);
        let values = crate::parallel::map(&data, data.len() * steps, &self.stop, |s| {
            let x: &[Sample] = &s.samples;
            let (mut a, mut b) = (0usize, 0usize);
            let mut vals = Vec::with_capacity(steps);
            for k in 0..steps {
                let t = start + k as i64 * step;
                let te = t - offset;
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
                    rate::window_value(name, w, from, te, range_ms, t, horizon)
                });
            }
            vals
        })?;
        if matches!(name, "rate" | "increase") {
            self.note_non_counters(&data, start - offset - range_ms, end - offset);
        }
        let per = PerSeries {
            labels: data.iter().map(|s| s.labels.clone()).collect(),
            values,
        };
        Ok(Some(per))
    }

    /// `rate`/`increase` of series named unlike counters, with floats in `(from, to]`: noted
    /// as the step evaluator notes them.
    fn note_non_counters(&mut self, data: &[RangeSeries], from: i64, to: i64) {
        for s in data {
            let metric = s.labels.get(METRIC_NAME).unwrap_or("");
            if metric.is_empty() || crate::annotations::counter_like(metric) {
                continue;
            }
            let a = s.samples.partition_point(|x| x.t <= from);
            if s.samples.get(a).is_some_and(|x| x.t <= to) {
                self.annotate(crate::annotations::possible_non_counter(metric));
            }
        }
    }
}

/// The most (series × step) values one whole-range node may hold: 256 MiB.
const MAX_CELLS: usize = 16 << 20;

/// A node's values as samples at the query's steps, steps without a value left out.
fn samples_at_steps(vals: &[Option<f64>], start: i64, step: i64) -> Vec<Sample> {
    vals.iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| Sample::new(start + k as i64 * step, v)))
        .collect()
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
        let samples = samples_at_steps(&vals, start, step);
        if !samples.is_empty() {
            out.push(RangeSeries::floats(labels, samples));
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Some(out)
}

/// The aggregation per group and step, members folded in series order as the step evaluator
/// folds them.
fn aggregated(op: &str, a: &AggregateExpr, per: PerSeries) -> Result<PerSeries, Error> {
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
    let mut out: Vec<Vec<Option<f64>>> = vec![vec![None; steps]; groups.len()];
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
            out[g][k] = Some(v);
            m.clear();
        }
    }
    Ok(PerSeries {
        labels: groups,
        values: out,
    })
}

/// An aggregation's groups as the range query's result (group labels never repeat).
fn finished(per: PerSeries, start: i64, step: i64) -> Vec<RangeSeries> {
    let mut series: Vec<RangeSeries> = per
        .labels
        .into_iter()
        .zip(per.values)
        .map(|(labels, vals)| {
            RangeSeries::floats(
                labels.without_metric_name(),
                samples_at_steps(&vals, start, step),
            )
        })
        .filter(|s| !s.samples.is_empty())
        .collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series
}
