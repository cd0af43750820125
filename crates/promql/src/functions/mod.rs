//! PromQL functions, one file per family: [`rate`] (rate, increase, delta, irate, idelta,
//! deriv, predict_linear, resets, changes), [`over_time`] (`*_over_time`), [`math`]
//! (elementwise math and trigonometry, clamp, round), [`misc`] (labels, time, sorting, absent,
//! scalar/vector, histogram_quantile).

mod math;
mod misc;
mod over_time;
mod rate;

use promql_parser::parser::{Call, Expr};

use crate::engine::{ms, Evaluator};
use crate::value::{RangeSeries, Value, VectorSample};
use crate::Error;

/// A range-vector argument with what range functions need to know about it.
pub(crate) struct RangeArg {
    pub series: Vec<RangeSeries>,
    /// The window's length (ms).
    pub range_ms: i64,
    /// The window's end after `@` and `offset` (ms).
    pub end: i64,
}

impl Evaluator<'_> {
    /// Evaluates a range-vector argument (matrix selector or subquery).
    pub(crate) fn range_arg(&mut self, e: &Expr, t: i64) -> Result<RangeArg, Error> {
        let e = strip_parens(e);
        match e {
            Expr::MatrixSelector(m) => Ok(RangeArg {
                series: self.select_range(m, t)?,
                range_ms: ms(&m.range),
                end: self.shifted(t, &m.vs.at, &m.vs.offset),
            }),
            Expr::Subquery(sq) => {
                let series = match self.eval(e, t)? {
                    Value::Matrix(m) => m,
                    _ => unreachable!("a subquery evaluates to a matrix"),
                };
                Ok(RangeArg {
                    series,
                    range_ms: ms(&sq.range),
                    end: self.shifted(t, &sq.at, &sq.offset),
                })
            }
            other => match self.eval(other, t)? {
                Value::Matrix(series) => Ok(RangeArg {
                    series,
                    range_ms: 0,
                    end: t,
                }),
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
        let v = if let Some(v) = self.call_rate(name, &args, t)? {
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

pub(crate) fn strip_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// A vector sample with its metric name dropped (most functions do this).
pub(crate) fn unnamed(s: &RangeSeries, t: i64, v: f64) -> VectorSample {
    VectorSample {
        drop_name: true,
        labels: s.labels.clone(),
        t,
        v,
    }
}
