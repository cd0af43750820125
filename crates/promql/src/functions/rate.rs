//! Counter and gauge rates: `rate increase delta irate idelta deriv predict_linear resets changes`.

use std::sync::Arc;

use medic_model::Sample;
use promql_parser::parser::{Expr, RangeModifier};

use super::{extended, unnamed, RangeArg};
use crate::aggregate::kahan_inc;
use crate::engine::Evaluator;
use crate::value::Value;
use crate::Error;

/// Prometheus's `extrapolatedRate`: the increase over the window, extrapolated towards the
/// window's edges when the samples stop short of them.
fn extrapolated(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.v - first.v;
    if counter {
        let mut prev = 0.0;
        for s in samples {
            if s.v < prev {
                result += prev;
            }
            prev = s.v;
        }
    }
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_step = sampled / (samples.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// Least-squares slope and intercept at `intercept_time`, with Kahan sums (Prometheus's
/// `linearRegression`).
pub(crate) fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let init_y = samples[0].v;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// The functions of this family.
pub(crate) const FUNCTIONS: [&str; 9] = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
];

/// One window's value of a rate-family function (`None`: no result for this series at this
/// step). `t` and `horizon` matter for `predict_linear` only. Shared by the step-by-step
/// evaluator and the whole-range one (`crate::range_fast`).
pub(crate) fn window_value(
    name: &str,
    x: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    t: i64,
    horizon: Option<f64>,
) -> Option<f64> {
    match name {
        "rate" | "increase" | "delta" => extrapolated(
            x,
            range_start,
            range_end,
            range_ms,
            name != "delta",
            name == "rate",
        ),
        "irate" | "idelta" => {
            if x.len() < 2 {
                return None;
            }
            let (prev, last) = (x[x.len() - 2], x[x.len() - 1]);
            let mut d = last.v - prev.v;
            if name == "idelta" {
                return Some(d);
            }
            if last.v < prev.v {
                d = last.v;
            }
            let dt = (last.t - prev.t) as f64 / 1000.0;
            (dt != 0.0).then(|| d / dt)
        }
        "deriv" => (x.len() >= 2).then(|| linear_regression(x, x[0].t).0),
        "predict_linear" => (x.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(x, t);
            intercept + slope * horizon.unwrap_or(0.0)
        }),
        "resets" => Some(x.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
        "changes" => Some(
            x.windows(2)
                .filter(|w| !(w[1].v == w[0].v || (w[1].v.is_nan() && w[0].v.is_nan())))
                .count() as f64,
        ),
        _ => None,
    }
}

impl Evaluator<'_> {
    pub(crate) fn call_rate(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Option<Value>, Error> {
        if !FUNCTIONS.contains(&name) {
            return Ok(None);
        }
        let arg = self.range_arg(args[0], t)?;
        self.note_range_windows(name, &arg);
        if let Some(modifier) = arg.modifier {
            return Ok(Some(Value::Vector(extended_windows(
                name, &arg, t, modifier,
            ))));
        }
        let horizon = if name == "predict_linear" {
            Some(self.eval_scalar(args[1], t)?)
        } else {
            None
        };
        let mut out = Vec::new();
        // `deriv` and `predict_linear` read the floats of a window and ignore its histograms;
        // the others give no value for a window that mixes the two.
        let floats: Vec<_> = if matches!(name, "deriv" | "predict_linear") {
            arg.iter().collect()
        } else {
            arg.floats_only().collect()
        };
        for (labels, x) in floats {
            let v = window_value(
                name,
                x,
                arg.end - arg.range_ms,
                arg.end,
                arg.range_ms,
                t,
                horizon,
            );
            if let Some(v) = v {
                out.push(unnamed(labels, t, v));
            }
        }
        out.extend(super::histogram::windows(
            name,
            &arg,
            t,
            &mut self.annotations,
        ));
        Ok(Some(Value::Vector(out)))
    }
}

/// The rate family over an `anchored` or `smoothed` range (the parser admits only `rate`,
/// `increase`, `delta`, and for `anchored` also `changes` and `resets`).
fn extended_windows(
    name: &str,
    arg: &RangeArg,
    t: i64,
    modifier: RangeModifier,
) -> Vec<crate::value::VectorSample> {
    let smoothed = modifier == RangeModifier::Smoothed;
    let (start, end) = (arg.end - arg.range_ms, arg.end);
    let (counter, per_second) = (name != "delta", name == "rate");
    let mut out = Vec::new();
    for (labels, f, h) in arg.all() {
        if matches!(name, "rate" | "increase" | "delta") {
            if !h.is_empty() && !f.is_empty() {
                continue;
            }
            if !h.is_empty() {
                if let Some(x) =
                    extended::rate_histograms(h, start, end, smoothed, counter, per_second)
                {
                    let mut s = unnamed(labels, t, 0.0);
                    s.h = Some(Arc::new(x));
                    out.push(s);
                }
            } else if let Some(v) =
                extended::rate_floats(f, start, end, smoothed, counter, per_second)
            {
                out.push(unnamed(labels, t, v));
            }
            continue;
        }
        if !h.is_empty() {
            let (f, h) = extended::extend_mixed(f, h, start, end);
            if !f.is_empty() || !h.is_empty() {
                let v = super::histogram::transitions(name, &f, &h);
                out.push(unnamed(labels, t, v));
            }
            continue;
        }
        let x = extended::extend_floats(f, start, end, smoothed);
        if x.is_empty() {
            continue;
        }
        if let Some(v) = window_value(name, &x, start, end, arg.range_ms, t, None) {
            out.push(unnamed(labels, t, v));
        }
    }
    out
}
