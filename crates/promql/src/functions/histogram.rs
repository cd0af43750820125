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
use crate::annotations::Annotations;
use crate::engine::Evaluator;
use crate::value::{Value, VectorSample};
use crate::Error;

/// Range functions that read a window's histograms (the others read its floats alone).
pub(crate) const RANGE_FUNCTIONS: [&str; 15] = [
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
    "first_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
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
        // The rank lies among the NaN observations (counted, in no bucket).
        return if h.sum.is_nan() { f64::NAN } else { b.upper };
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
        // A custom bucket reaching to -Inf starts at 0 when it ends above it (as for
        // quantiles); a bucket still infinitely wide is never interpolated into: a bound inside
        // it stands at the bucket's finite end.
        if h.uses_custom_buckets() && b.lower == f64::NEG_INFINITY && b.upper > 0.0 {
            b.lower = 0.0;
        }
        let infinite = b.lower.is_infinite() || b.upper.is_infinite();
        let linear = h.uses_custom_buckets() || zero;
        let at = |v: f64| -> f64 {
            if infinite {
                return if b.lower.is_infinite() {
                    rank + b.count
                } else {
                    rank
                };
            }
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
    // NaN observations are counted but in no bucket: they are in no fraction.
    let cap = if h.sum.is_nan() {
        h.buckets().iter().map(|b| b.count).sum()
    } else {
        h.count
    };
    let lo = lower_rank.filter(|r| *r <= cap).unwrap_or(cap);
    let hi = upper_rank.filter(|r| *r <= cap).unwrap_or(cap);
    (hi - lo) / h.count
}

/// The histogram part of a range function at `t`: a value for every window that holds a
/// histogram (functions with no histogram form give none).
pub(crate) fn windows(
    name: &str,
    arg: &RangeArg,
    t: i64,
    notes: &mut Annotations,
) -> Vec<VectorSample> {
    if !RANGE_FUNCTIONS.contains(&name) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (labels, floats, hs) in arg.with_histograms() {
        if let Some(s) = window(name, arg, labels, floats, hs, t, notes) {
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
    notes: &mut Annotations,
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
        "ts_of_last_over_time" => {
            let last = hs[hs.len() - 1]
                .t
                .max(floats.last().map_or(i64::MIN, |f| f.t));
            Some(unnamed(labels, t, last as f64 / 1000.0))
        }
        "ts_of_first_over_time" => {
            let first = hs[0].t.min(floats.first().map_or(i64::MAX, |f| f.t));
            Some(unnamed(labels, t, first as f64 / 1000.0))
        }
        "resets" | "changes" => Some(unnamed(labels, t, transitions(name, floats, hs))),
        "irate" | "idelta" => last_two(name, floats, hs, labels, t),
        _ if mixed => None,
        "sum_over_time" | "avg_over_time" => {
            let all: Vec<&FloatHistogram> = hs.iter().map(|x| x.h.as_ref()).collect();
            let (h, sum_notes) = if name == "sum_over_time" {
                sum(&all)
            } else {
                mean(&all)
            };
            // The mix of bucket kinds is noted per window by `note_range_windows`.
            SumNotes {
                mixed_schemas: false,
                ..sum_notes
            }
            .annotate(notes, "", "aggregation");
            h.map(hist)
        }
        _ => rate(hs, arg, name).map(hist),
    }
}

/// A window's points in time order, floats and histograms together.
#[derive(Clone, Copy)]
enum Any<'a> {
    Float(Sample),
    Histogram(&'a HistogramSample),
}

fn merged<'a>(floats: &[Sample], hs: &'a [HistogramSample]) -> Vec<(i64, Any<'a>)> {
    let mut all: Vec<(i64, Any<'a>)> = floats
        .iter()
        .map(|f| (f.t, Any::Float(*f)))
        .chain(hs.iter().map(|h| (h.t, Any::Histogram(h))))
        .collect();
    all.sort_by_key(|p| p.0);
    all
}

/// `resets` and `changes` over a window of floats and histograms: a switch between the two
/// counts as a reset and as a change.
pub(crate) fn transitions(name: &str, floats: &[Sample], hs: &[HistogramSample]) -> f64 {
    let all = merged(floats, hs);
    let mut n = 0;
    for w in all.windows(2) {
        let counted = match (w[0].1, w[1].1) {
            (Any::Float(a), Any::Float(b)) if name == "resets" => b.v < a.v,
            (Any::Float(a), Any::Float(b)) => !(a.v == b.v || (a.v.is_nan() && b.v.is_nan())),
            (Any::Histogram(a), Any::Histogram(b)) if name == "resets" => {
                !Arc::ptr_eq(&a.h, &b.h) && b.h.detect_reset(&a.h)
            }
            (Any::Histogram(a), Any::Histogram(b)) => !unchanged(&a.h, &b.h),
            _ => true,
        };
        n += usize::from(counted);
    }
    n as f64
}

/// Whether a histogram did not change: equal, a NaN sum counting as equal to a NaN sum.
fn unchanged(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    if a.sum.is_nan() && b.sum.is_nan() {
        let (mut a, mut b) = (a.clone(), b.clone());
        (a.sum, b.sum) = (0.0, 0.0);
        return a.equals(&b);
    }
    a.equals(b)
}

/// `irate`/`idelta` of the window's last two points: histograms give a histogram, floats a
/// float, a float and a histogram nothing.
fn last_two(
    name: &str,
    floats: &[Sample],
    hs: &[HistogramSample],
    labels: &Labels,
    t: i64,
) -> Option<VectorSample> {
    let all = merged(floats, hs);
    let [.., (_, a), (_, b)] = all[..] else {
        return None;
    };
    match (a, b) {
        (Any::Histogram(a), Any::Histogram(b)) => {
            let h = instant_delta(&[a.clone(), b.clone()], name == "irate")?;
            let mut s = unnamed(labels, t, 0.0);
            s.h = Some(Arc::new(h));
            Some(s)
        }
        (Any::Float(a), Any::Float(b)) => {
            super::rate::window_value(name, &[a, b], 0, 0, 0, t, None)
                .map(|v| unnamed(labels, t, v))
        }
        _ => None,
    }
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

/// What a counter histogram gained over the window: split at counter resets, the first piece
/// from its first to its last histogram, every later piece from zero to its last. Pieces that
/// cannot be added (exponential and custom buckets) give nothing.
fn increase(hs: &[HistogramSample]) -> Option<FloatHistogram> {
    let mut acc: Option<FloatHistogram> = None;
    let mut start = 0;
    for i in 1..=hs.len() {
        // A subquery repeats a stored histogram at every step it is the newest: a reset is
        // counted once, where the histogram first appears.
        let reset = i < hs.len()
            && !Arc::ptr_eq(&hs[i - 1].h, &hs[i].h)
            && hs[i].h.detect_reset(&hs[i - 1].h);
        if i < hs.len() && !reset {
            continue;
        }
        let end = &hs[i - 1].h;
        let piece = if start == 0 {
            if i - 1 == 0 {
                None
            } else {
                let mut p = FloatHistogram::clone(end);
                p.sub(&hs[0].h).ok()?;
                Some(p)
            }
        } else {
            Some(FloatHistogram::clone(end))
        };
        if let Some(p) = piece {
            match &mut acc {
                None => acc = Some(p),
                Some(a) => {
                    a.add(&p).ok()?;
                }
            }
        }
        start = i;
    }
    acc
}

/// `rate`, `increase` and `delta` of histograms: the last minus the first (plus what counter
/// resets took away, for counters), extrapolated to the window's edges as for floats.
fn rate(hs: &[HistogramSample], arg: &RangeArg, name: &str) -> Option<FloatHistogram> {
    if hs.len() < 2 {
        return None;
    }
    let counter = name != "delta";
    let (first, last) = (&hs[0], &hs[hs.len() - 1]);
    let mut h = if counter {
        increase(hs)?
    } else {
        let mut h = FloatHistogram::clone(&last.h);
        h.sub(&first.h).ok()?;
        h
    };
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

/// A sum of histograms with Kahan–Neumaier compensation on the count, the sum, the zero bucket
/// and every bucket (Prometheus's `KahanAdd`), so that large values that cancel do not wipe out
/// small ones.
pub(crate) struct KahanSum {
    sum: FloatHistogram,
    comp: FloatHistogram,
    /// What adding noticed, for annotations.
    pub(crate) notes: SumNotes,
}

/// What summing histograms noticed, for the query's annotations.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SumNotes {
    /// Custom bounds differed and were cut to the common ones.
    pub(crate) reconciled: bool,
    /// One histogram said counter reset, another said none.
    pub(crate) reset_conflict: bool,
    /// Exponential and custom buckets met: no sum.
    pub(crate) mixed_schemas: bool,
}

impl SumNotes {
    /// The annotations these notes call for, `during` an aggregation or an addition.
    pub(crate) fn annotate(self, notes: &mut Annotations, metric: &str, during: &str) {
        use crate::annotations as a;
        if self.mixed_schemas {
            notes.add(a::mixed_exponential_custom(metric));
        }
        if self.reconciled {
            notes.add(a::custom_buckets_reconciled(during));
        }
        if self.reset_conflict {
            notes.add(a::counter_reset_collision(during));
        }
    }
}

impl KahanSum {
    pub(crate) fn new(first: &FloatHistogram) -> Self {
        let comp = FloatHistogram {
            schema: first.schema,
            zero_threshold: first.zero_threshold,
            custom_values: first.custom_values.clone(),
            counter_reset_hint: first.counter_reset_hint,
            ..FloatHistogram::default()
        };
        Self {
            sum: first.clone(),
            comp,
            notes: SumNotes::default(),
        }
    }

    /// Adds `h`; `None` when its buckets cannot be combined with the sum's.
    pub(crate) fn add(&mut self, h: &FloatHistogram) -> Option<()> {
        if h.uses_custom_buckets() != self.sum.uses_custom_buckets() {
            self.notes.mixed_schemas = true;
            return None;
        }
        let mut h = std::borrow::Cow::Borrowed(h);
        if h.uses_custom_buckets() {
            if h.custom_values != self.sum.custom_values {
                self.notes.reconciled = true;
                let common = self.sum.common_bounds(&h);
                self.sum.rebucket_custom(&common);
                self.comp.rebucket_custom(&common);
                h.to_mut().rebucket_custom(&common);
            }
        } else {
            let schema = self.sum.schema.min(h.schema);
            self.sum.reduce_resolution(schema);
            self.comp.reduce_resolution(schema);
            h.to_mut().reduce_resolution(schema);
            // Widening may grow a threshold to a bucket's bound: repeat until all agree.
            loop {
                let t = self
                    .sum
                    .zero_threshold
                    .max(self.comp.zero_threshold)
                    .max(h.zero_threshold);
                self.sum.widen_zero_bucket(t);
                self.comp.widen_zero_bucket(t);
                if h.zero_threshold < t {
                    h.to_mut().widen_zero_bucket(t);
                }
                if self.sum.zero_threshold == t
                    && self.comp.zero_threshold == t
                    && h.zero_threshold == t
                {
                    break;
                }
            }
            (self.sum.zero_count, self.comp.zero_count) =
                kahan_inc(h.zero_count, self.sum.zero_count, self.comp.zero_count);
        }
        if h.counter_reset_hint != self.sum.counter_reset_hint {
            use CounterResetHint::{CounterReset, NotCounterReset};
            if matches!(
                (h.counter_reset_hint, self.sum.counter_reset_hint),
                (CounterReset, NotCounterReset) | (NotCounterReset, CounterReset)
            ) {
                self.notes.reset_conflict = true;
            }
            self.sum.counter_reset_hint = if h.counter_reset_hint == CounterResetHint::Gauge
                || self.sum.counter_reset_hint == CounterResetHint::Gauge
            {
                CounterResetHint::Gauge
            } else {
                CounterResetHint::Unknown
            };
        }
        (self.sum.count, self.comp.count) = kahan_inc(h.count, self.sum.count, self.comp.count);
        (self.sum.sum, self.comp.sum) = kahan_inc(h.sum, self.sum.sum, self.comp.sum);
        (self.sum.positive, self.comp.positive) =
            kahan_side(&self.sum.positive, &self.comp.positive, &h.positive);
        (self.sum.negative, self.comp.negative) =
            kahan_side(&self.sum.negative, &self.comp.negative, &h.negative);
        Some(())
    }

    /// The compensated sum.
    pub(crate) fn finish(self) -> FloatHistogram {
        let mut out = self.sum;
        out.count += self.comp.count;
        out.sum += self.comp.sum;
        out.zero_count += self.comp.zero_count;
        out.positive = plus(&out.positive, &self.comp.positive);
        out.negative = plus(&out.negative, &self.comp.negative);
        out.compact();
        out
    }
}

/// One side's buckets after adding `add` to `sum` with compensation `comp` (all sorted by
/// index): the new sums and compensations.
type Side = Vec<(i32, f64)>;

fn kahan_side(sum: &[(i32, f64)], comp: &[(i32, f64)], add: &[(i32, f64)]) -> (Side, Side) {
    let mut idx: Vec<i32> = sum.iter().chain(comp).chain(add).map(|b| b.0).collect();
    idx.sort_unstable();
    idx.dedup();
    let get = |side: &[(i32, f64)], i: i32| {
        side.binary_search_by_key(&i, |b| b.0)
            .map_or(0.0, |k| side[k].1)
    };
    let (mut s_out, mut c_out) = (Vec::with_capacity(idx.len()), Vec::new());
    for i in idx {
        let (s, c) = kahan_inc(get(add, i), get(sum, i), get(comp, i));
        if s != 0.0 {
            s_out.push((i, s));
        }
        if c != 0.0 {
            c_out.push((i, c));
        }
    }
    (s_out, c_out)
}

/// `a + b` bucket by bucket (the compensation folded into the sum).
fn plus(a: &[(i32, f64)], b: &[(i32, f64)]) -> Side {
    let mut out: Side = a.iter().chain(b).copied().collect();
    out.sort_by_key(|x| x.0);
    out.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    out.retain(|x| x.1 != 0.0);
    out
}

/// The mean of histograms, incremental with compensation as Prometheus computes `avg` and
/// `avg_over_time` of histograms (no overflow where the sum would overflow).
pub(crate) fn mean(hs: &[&FloatHistogram]) -> (Option<FloatHistogram>, SumNotes) {
    let Some((first, rest)) = hs.split_first() else {
        return (None, SumNotes::default());
    };
    let mut acc = KahanSum::new(first);
    for (k, h) in rest.iter().enumerate() {
        // mean ← mean·(n-1)/n + h/n, the compensation scaled with the mean.
        let n = (k + 2) as f64;
        let q = (n - 1.0) / n;
        acc.sum.mul(q);
        acc.comp.mul(q);
        let mut add = FloatHistogram::clone(h);
        add.div(n);
        if acc.add(&add).is_none() {
            return (None, acc.notes);
        }
    }
    let notes = acc.notes;
    (Some(acc.finish()), notes)
}

/// The sum of histograms, compensated.
pub(crate) fn sum(hs: &[&FloatHistogram]) -> (Option<FloatHistogram>, SumNotes) {
    let Some((first, rest)) = hs.split_first() else {
        return (None, SumNotes::default());
    };
    let mut acc = KahanSum::new(first);
    for h in rest {
        if acc.add(h).is_none() {
            return (None, acc.notes);
        }
    }
    let notes = acc.notes;
    (Some(acc.finish()), notes)
}
