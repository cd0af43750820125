//! PromQL over native histograms: `histogram_count sum avg stddev stdvar fraction`, the native
//! half of `histogram_quantile`, and the range functions' histogram windows (`rate increase
//! delta irate idelta resets changes sum_over_time avg_over_time count_over_time
//! present_over_time last_over_time first_over_time`), with Prometheus's semantics.

use std::sync::Arc;

use medic_model::histogram::CounterResetHint;
use medic_model::{FloatHistogram, HistogramSample, Labels, Sample};
use promql_parser::parser::Expr;

use super::{unnamed, RangeArg};
use crate::aggregate::kahan_inc;
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

/// Range functions that have a histogram form.
pub(crate) const RANGE_FUNCTIONS: [&str; 12] = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "resets",
    "changes",
    "sum_over_time",
    "avg_over_time",
    "count_over_time",
    "present_over_time",
    "last_over_time",
];

impl Evaluator<'_> {
    /// The `histogram_*` functions of one histogram each (`histogram_quantile` and
    /// `histogram_fraction` live with the classic ones in `misc.rs`).
    pub(crate) fn call_histogram(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: i64,
    ) -> Result<Option<Value>, Error> {
        let f: fn(&FloatHistogram) -> f64 = match name {
            "histogram_count" => |h| h.count,
            "histogram_sum" => |h| h.sum,
            "histogram_avg" => |h| h.sum / h.count,
            "histogram_stddev" => |h| variance(h).sqrt(),
            "histogram_stdvar" => variance,
            _ => return Ok(None),
        };
        let v = self.eval_vector(args[0], t)?;
        let out = v
            .iter()
            .filter_map(|s| s.h.as_ref().map(|h| unnamed(&s.labels, t, f(h))))
            .collect();
        Ok(Some(Value::Vector(out)))
    }
}

/// The variance of the observations, each taken at its bucket's middle: the geometric mean of
/// an exponential bucket's bounds, 0 in the zero bucket, the arithmetic mean of a custom
/// bucket's.
fn variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut v, mut c) = (0.0, 0.0);
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        let x = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let g = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 {
                -g
            } else {
                g
            }
        };
        let d = x - mean;
        (v, c) = kahan_inc(b.count * d * d, v, c);
    }
    (v + c) / h.count
}

/// The native histogram's `q` quantile (Prometheus's `HistogramQuantile`): interpolated
/// exponentially inside exponential buckets, linearly in the zero bucket and custom buckets.
pub(crate) fn quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let mut buckets = h.buckets();
    let mut rank = if forward {
        q * h.count
    } else {
        buckets.reverse();
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut bucket = None;
    for b in &buckets {
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        bucket = Some(*b);
        if count >= rank {
            break;
        }
    }
    let Some(mut b) = bucket else {
        return f64::NAN;
    };
    let (has_neg, has_pos) = (!h.negative.is_empty(), !h.positive.is_empty());
    if !h.uses_custom_buckets() && b.lower < 0.0 && b.upper > 0.0 {
        if !has_neg && has_pos {
            b.lower = 0.0;
        } else if !has_pos && has_neg {
            b.upper = 0.0;
        }
    } else if h.uses_custom_buckets() {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return b.upper;
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return b.lower;
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        return b.upper;
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    let fraction = rank / b.count;
    if h.uses_custom_buckets() || (b.lower <= 0.0 && b.upper >= 0.0) {
        return b.lower + (b.upper - b.lower) * fraction;
    }
    let (log_lower, log_upper) = (b.lower.abs().log2(), b.upper.abs().log2());
    if b.lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// The fraction of observations in `[lower, upper]` (Prometheus's `HistogramFraction`).
pub(crate) fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (has_neg, has_pos) = (!h.negative.is_empty(), !h.positive.is_empty());
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    for mut b in h.buckets() {
        let zero = b.lower <= 0.0 && b.upper >= 0.0;
        if zero && !h.uses_custom_buckets() {
            if !has_neg && has_pos {
                b.lower = 0.0;
            } else if !has_pos && has_neg {
                b.upper = 0.0;
            }
        }
        let linear = h.uses_custom_buckets() || zero;
        let at = |v: f64| -> f64 {
            if linear {
                return rank + b.count * (v - b.lower) / (b.upper - b.lower);
            }
            let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let f = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - (lv - lu) / (ll - lu)
            };
            rank + b.count * f
        };
        if lower_rank.is_none() && b.lower >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && b.lower >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        if lower_rank.is_none() && b.lower < lower && b.upper > lower {
            lower_rank = Some(at(lower));
        }
        if upper_rank.is_none() && b.lower < upper && b.upper > upper {
            upper_rank = Some(at(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank += b.count;
    }
    let lo = lower_rank.filter(|r| *r <= h.count).unwrap_or(h.count);
    let hi = upper_rank.filter(|r| *r <= h.count).unwrap_or(h.count);
    (hi - lo) / h.count
}

/// The histogram part of a range function at `t`: a value for every window that holds a
/// histogram (functions with no histogram form give none).
pub(crate) fn windows(name: &str, arg: &RangeArg, t: i64) -> Vec<VectorSample> {
    if !RANGE_FUNCTIONS.contains(&name) && name != "first_over_time" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (labels, floats, hs) in arg.with_histograms() {
        if let Some(s) = window(name, arg, labels, floats, hs, t) {
            out.push(s);
        }
    }
    out
}

fn window(
    name: &str,
    arg: &RangeArg,
    labels: &Labels,
    floats: &[Sample],
    hs: &[HistogramSample],
    t: i64,
) -> Option<VectorSample> {
    let hist = |h: FloatHistogram| {
        let mut s = unnamed(labels, t, 0.0);
        s.h = Some(Arc::new(h));
        s
    };
    let mixed = !floats.is_empty();
    match name {
        "count_over_time" => Some(unnamed(labels, t, (floats.len() + hs.len()) as f64)),
        "present_over_time" => Some(unnamed(labels, t, 1.0)),
        "last_over_time" | "first_over_time" => {
            let (f, h) = if name == "last_over_time" {
                (floats.last(), hs.last())
            } else {
                (floats.first(), hs.first())
            };
            let take_float = match (f, h) {
                (Some(f), Some(h)) if name == "last_over_time" => f.t > h.t,
                (Some(f), Some(h)) => f.t < h.t,
                (Some(_), None) => true,
                _ => false,
            };
            let mut s = if take_float {
                unnamed(labels, t, f?.v)
            } else {
                hist(FloatHistogram::clone(&h?.h))
            };
            s.drop_name = false;
            Some(s)
        }
        _ if mixed => None,
        "sum_over_time" | "avg_over_time" => {
            let mut acc = FloatHistogram::clone(&hs[0].h);
            for x in &hs[1..] {
                acc.add(&x.h).ok()?;
            }
            if name == "avg_over_time" {
                acc.div(hs.len() as f64);
            }
            acc.compact();
            Some(hist(acc))
        }
        "resets" => Some(unnamed(
            labels,
            t,
            hs.windows(2)
                .filter(|w| w[1].h.detect_reset(&w[0].h))
                .count() as f64,
        )),
        "changes" => Some(unnamed(
            labels,
            t,
            hs.windows(2).filter(|w| !same(&w[0].h, &w[1].h)).count() as f64,
        )),
        "irate" | "idelta" => instant_delta(hs, name == "irate").map(hist),
        _ => rate(hs, arg, name).map(hist),
    }
}

/// Whether two histograms are equal (Prometheus's `Equals`, over non-empty buckets).
fn same(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold == b.zero_threshold
        && a.zero_count == b.zero_count
        && a.count == b.count
        && (a.sum == b.sum || (a.sum.is_nan() && b.sum.is_nan()))
        && a.positive == b.positive
        && a.negative == b.negative
        && a.custom_values == b.custom_values
}

/// `irate`/`idelta` of the last two histograms.
fn instant_delta(hs: &[HistogramSample], is_rate: bool) -> Option<FloatHistogram> {
    if hs.len() < 2 {
        return None;
    }
    let (prev, last) = (&hs[hs.len() - 2], &hs[hs.len() - 1]);
    let mut h = FloatHistogram::clone(&last.h);
    if !is_rate || !last.h.detect_reset(&prev.h) {
        h.sub(&prev.h).ok()?;
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    if is_rate {
        let dt = (last.t - prev.t) as f64 / 1000.0;
        if dt == 0.0 {
            return None;
        }
        h.div(dt);
    }
    h.compact();
    Some(h)
}

/// `rate`, `increase` and `delta` of histograms: the last minus the first (plus what counter
/// resets took away, for counters), extrapolated to the window's edges as for floats.
fn rate(hs: &[HistogramSample], arg: &RangeArg, name: &str) -> Option<FloatHistogram> {
    if hs.len() < 2 {
        return None;
    }
    let counter = name != "delta";
    let (first, last) = (&hs[0], &hs[hs.len() - 1]);
    let custom = first.h.uses_custom_buckets();
    if hs.iter().any(|x| x.h.uses_custom_buckets() != custom) {
        return None;
    }
    let min_schema = hs.iter().map(|x| x.h.schema).min().unwrap_or(0);
    let mut h = FloatHistogram::clone(&last.h);
    h.reduce_resolution(min_schema);
    h.sub(&first.h).ok()?;
    if counter {
        for w in hs.windows(2) {
            if w[1].h.detect_reset(&w[0].h) {
                h.add(&w[0].h).ok()?;
            }
        }
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    let range_start = arg.end - arg.range_ms;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_step = sampled / (hs.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (arg.end - last.t) as f64 / 1000.0;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if counter && h.count > 0.0 && first.h.count >= 0.0 {
        let to_zero = sampled * (first.h.count / h.count);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if name == "rate" {
        factor /= arg.range_ms as f64 / 1000.0;
    }
    h.mul(factor);
    h.compact();
    Some(h)
}
