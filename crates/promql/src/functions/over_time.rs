//! `*_over_time` functions over a range vector.

use promql_parser::parser::Expr;

use super::unnamed;
use crate::aggregate::{kahan_inc, mean, quantile, variance};
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

/// The `*_over_time` functions whose value depends on the window's values alone (`None` for
/// the others). Shared by the step-by-step evaluator and the whole-range one.
pub(crate) fn simple_value(name: &str, samples: &[medic_model::Sample]) -> Option<f64> {
    let vals = || samples.iter().map(|x| x.v);
    Some(match name {
        "avg_over_time" => mean(vals()),
        "sum_over_time" => {
            let (a, c) = vals().fold((0.0, 0.0), |(a, c), v| kahan_inc(v, a, c));
            a + c
        }
        "count_over_time" => samples.len() as f64,
        "min_over_time" => vals().fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
        "max_over_time" => vals().fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
        "stddev_over_time" => variance(vals()).sqrt(),
        "stdvar_over_time" => variance(vals()),
        "present_over_time" => 1.0,
        _ => return None,
    })
}

impl Evaluator<'_> {
    pub(crate) fn call_over_time(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Option<Value>, Error> {
        if name == "double_exponential_smoothing" {
            return self.double_exponential_smoothing(args, t).map(Some);
        }
        if !name.ends_with("_over_time") || name == "absent_over_time" {
            return Ok(None);
        }
        let q = if name == "quantile_over_time" {
            Some(self.eval_scalar(args[0], t)?)
        } else {
            None
        };
        let range = if q.is_some() { args[1] } else { args[0] };
        let arg = self.range_arg(range, t)?;
        self.note_range_windows(name, &arg);
        if let Some(q) = q.filter(|q| !(0.0..=1.0).contains(q)) {
            self.annotate(crate::annotations::invalid_quantile(q));
        }
        let mut out = super::histogram::windows(name, &arg, t, &mut self.annotations);
        // The functions with a histogram form (sum, avg, count, present, last, first) read
        // windows of floats alone; the others read the floats of every window.
        let with_histogram_form =
            super::histogram::RANGE_FUNCTIONS.contains(&name) || name == "first_over_time";
        let floats: Vec<_> = if with_histogram_form {
            arg.floats_only().collect()
        } else {
            arg.iter().collect()
        };
        for (labels, samples) in floats {
            if let Some(v) = simple_value(name, samples) {
                out.push(unnamed(labels, t, v));
                continue;
            }
            let vals = || samples.iter().map(|x| x.v);
            let v = match name {
                "last_over_time" | "first_over_time" => {
                    // Keep the metric name, as in Prometheus.
                    let x = if name == "last_over_time" {
                        samples[samples.len() - 1]
                    } else {
                        samples[0]
                    };
                    out.push(VectorSample::new(labels.clone(), t, x.v));
                    continue;
                }
                "ts_of_min_over_time" | "ts_of_max_over_time" => {
                    let mut best: Option<(f64, i64)> = None;
                    for x in samples.iter().filter(|x| !x.v.is_nan()) {
                        let better = match best {
                            None => true,
                            Some((b, _)) if name == "ts_of_min_over_time" => x.v <= b,
                            Some((b, _)) => x.v >= b,
                        };
                        if better {
                            best = Some((x.v, x.t));
                        }
                    }
                    match best {
                        Some((_, ts)) => ts as f64 / 1000.0,
                        None => samples[samples.len() - 1].t as f64 / 1000.0,
                    }
                }
                "ts_of_last_over_time" => samples[samples.len() - 1].t as f64 / 1000.0,
                "ts_of_first_over_time" => samples[0].t as f64 / 1000.0,
                "quantile_over_time" => {
                    let mut v: Vec<f64> = vals().collect();
                    quantile(q.unwrap_or(f64::NAN), &mut v)
                }
                "mad_over_time" if vals().any(f64::is_nan) => f64::NAN,
                "mad_over_time" => {
                    let mut v: Vec<f64> = vals().collect();
                    let med = quantile(0.5, &mut v);
                    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
                    quantile(0.5, &mut dev)
                }
                _ => {
                    return Err(Error::Eval(format!(
                        "function {name:?} is not supported yet"
                    )))
                }
            };
            out.push(unnamed(labels, t, v));
        }
        Ok(Some(Value::Vector(out)))
    }
}

impl Evaluator<'_> {
    /// Holt's linear smoothing (`double_exponential_smoothing(v range, sf, tf)`), as Prometheus
    /// computes it: the smoothed value at the end of the window.
    fn double_exponential_smoothing(&mut self, args: &[&Expr], t: i64) -> Result<Value, Error> {
        let arg = self.range_arg(args[0], t)?;
        self.note_range_windows("double_exponential_smoothing", &arg);
        let sf = self.eval_scalar(args[1], t)?;
        let tf = self.eval_scalar(args[2], t)?;
        if !(sf > 0.0 && sf < 1.0) {
            return Err(Error::Eval(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
            )));
        }
        if !(tf > 0.0 && tf < 1.0) {
            return Err(Error::Eval(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
            )));
        }
        let mut out = Vec::new();
        for (labels, x) in arg.iter() {
            if x.len() < 2 {
                continue;
            }
            let (mut s0, mut s1) = (0.0, x[0].v);
            let mut b = x[1].v - x[0].v;
            for (i, p) in x.iter().enumerate().skip(1) {
                if i > 1 {
                    b = tf * (s1 - s0) + (1.0 - tf) * b;
                }
                let next = sf * p.v + (1.0 - sf) * (s1 + b);
                s0 = s1;
                s1 = next;
            }
            out.push(unnamed(labels, t, s1));
        }
        Ok(Value::Vector(out))
    }
}
