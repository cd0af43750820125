//! Evaluation of an expression at one timestamp.

use std::collections::HashMap;

use medic_model::{Labels, Sample};
use promql_parser::parser::{Expr, SubqueryExpr};

use crate::engine::{ms, Evaluator};
use crate::value::{RangeSeries, Value, VectorSample};
use crate::Error;

impl Evaluator<'_> {
    /// Evaluates `e` at `t`.
    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Value, Error> {
        // Deep (but allowed) queries grow the stack instead of overflowing it.
        stacker::maybe_grow(crate::engine::RED_ZONE, crate::engine::EVAL_STACK, || {
            self.eval_node(e, t)
        })
    }

    fn eval_node(&mut self, e: &Expr, t: i64) -> Result<Value, Error> {
        if !self.precomputed.is_empty() {
            if let Some(v) = self
                .precomputed
                .get(&(e as *const Expr as usize))
                .and_then(|p| p.at(t))
            {
                return Ok(Value::Vector(v));
            }
        }
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.select_instant(vs, t)?)),
            Expr::MatrixSelector(m) => Ok(Value::Matrix(self.select_range(m, t)?)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?)),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(vec) => {
                    let out: Vec<VectorSample> = vec
                        .into_iter()
                        .map(|s| VectorSample {
                            labels: s.labels,
                            t: s.t,
                            v: -s.v,
                            h: s.h.map(|h| {
                                let mut h = std::sync::Arc::unwrap_or_clone(h);
                                h.mul(-1.0);
                                std::sync::Arc::new(h)
                            }),
                            drop_name: true,
                        })
                        .collect();
                    crate::functions::check_unique_labels(&out)?;
                    Ok(Value::Vector(out))
                }
                other => Err(Error::Eval(format!("unary expression only allowed on expressions of type scalar or instant vector, got {}", other.type_name()))),
            },
            Expr::Binary(b) => self.binary(b, t),
            Expr::Aggregate(a) => self.aggregate(a, t),
            Expr::Call(c) => self.call(c, t),
            Expr::Extension(_) => Err(Error::Eval("extension expressions are not supported".into())),
        }
    }

    /// Evaluates a vector expression, failing if it is something else.
    pub(crate) fn eval_vector(&mut self, e: &Expr, t: i64) -> Result<Vec<VectorSample>, Error> {
        match self.eval(e, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(Error::Eval(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates a scalar expression, failing if it is something else.
    pub(crate) fn eval_scalar(&mut self, e: &Expr, t: i64) -> Result<f64, Error> {
        match self.eval(e, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(Error::Eval(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// A subquery: the inner expression at every multiple of the step inside `(t' - range, t']`.
    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<RangeSeries>, Error> {
        let te = self.shifted(t, &sq.at, &sq.offset);
        let step = sq
            .step
            .as_ref()
            .map(ms)
            .filter(|s| *s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms);
        let from = te - ms(&sq.range);
        let mut ti = from.div_euclid(step) * step;
        if ti <= from {
            ti += step;
        }
        let mut out: HashMap<Labels, RangeSeries> = HashMap::new();
        let key = &*sq.expr as *const Expr as usize;
        // Steps move forward, so points at or before this window's start are not needed again.
        // Only range queries reuse points (consecutive steps overlap); an instant query does
        // not keep them.
        let mut freed = 0;
        self.subquery_cache.retain(|(k, t), v| {
            let keep = *k != key || *t > from;
            if !keep {
                freed += v.len();
            }
            keep
        });
        self.release(freed);
        let cache = self.step > 0;
        // Bound the work and memory of a subquery by the query's limits: a tiny step over a long
        // range must end in an error, not in an unbounded loop.
        let points = ((te - ti) / step).max(0) as usize + 1;
        if points > self.opts.max_samples {
            return Err(Error::TooManySamples(self.opts.max_samples));
        }
        let mut n = 0usize;
        while ti <= te {
            n += 1;
            if n.is_multiple_of(1024) {
                self.check_deadline()?;
            }
            let v = match self.subquery_cache.get(&(key, ti)) {
                Some(v) => v.clone(),
                None => {
                    let v = self.eval(&sq.expr, ti)?;
                    if cache {
                        self.charge(v.len())?;
                        self.subquery_cache.insert((key, ti), v.clone());
                    }
                    v
                }
            };
            // Every point the subquery produces counts against the sample limit, so a tiny step
            // over a long range ends in an error, not in gigabytes.
            self.charge_transient(v.len())?;
            match v {
                Value::Scalar(v) => out
                    .entry(Labels::empty())
                    .or_insert_with(|| RangeSeries::floats(Labels::empty(), Vec::new()))
                    .samples
                    .push(Sample::new(ti, v)),
                Value::Vector(mut vec) => {
                    crate::value::finish_names(&mut vec)?;
                    for s in vec {
                        let series = out
                            .entry(s.labels)
                            .or_insert_with_key(|l| RangeSeries::floats(l.clone(), Vec::new()));
                        match s.h {
                            Some(h) => series
                                .histograms
                                .push(medic_model::HistogramSample { t: ti, h }),
                            None => series.samples.push(Sample::new(ti, s.v)),
                        }
                    }
                }
                other => {
                    return Err(Error::Eval(format!(
                        "subquery is only allowed on instant vector, got {}",
                        other.type_name()
                    )))
                }
            }
            ti += step;
        }
        let mut series: Vec<RangeSeries> = out.into_values().collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series)
    }
}
