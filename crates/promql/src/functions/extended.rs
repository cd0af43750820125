//! The experimental `anchored` and `smoothed` modifiers of Prometheus 3.x ("extended range
//! selectors").
//!
//! - `f(x[5m] anchored)` reads one lookback further back and anchors the window's left edge on
//!   the last sample at or before it: `increase`, `delta` and `rate` take the difference of the
//!   two edge values with no extrapolation; `changes` and `resets` count with the edge point
//!   included.
//! - `f(x[5m] smoothed)` reads one lookback further on both sides and interpolates linearly at
//!   both edges (`increase`, `delta`, `rate` only).
//! - `x smoothed` (an instant selector) interpolates each series at the evaluation time between
//!   its neighbouring samples, holding the last value past the end of the data.
//!
//! Each function here follows its namesake in Prometheus's `promql/functions.go` and
//! `engine.go` (`extendFloats`, `extendedRate`, `extendedHistogramRate`, `smoothSeries`).

use medic_model::histogram::CounterResetHint;
use medic_model::{FloatHistogram, HistogramSample, Sample};

/// Go's `sort.Search(n, f)`: the smallest `i` in `[0, n)` with `f(i)`, or `n`.
fn search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if f(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The value at `t` on the line through `p1` and `p2`; a counter that fell between them is
/// taken to have restarted from zero.
fn interpolate(p1: Sample, p2: Sample, t: i64, counter: bool) -> f64 {
    let y1 = if counter && p2.v < p1.v { 0.0 } else { p1.v };
    y1 + (p2.v - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

fn pick_left(f: &[Sample], first: usize, start: i64, smoothed: bool, counter: bool) -> f64 {
    if smoothed && f[first].t < start {
        return interpolate(f[first], f[first + 1], start, counter);
    }
    f[first].v
}

fn pick_right(f: &[Sample], last: usize, end: i64, smoothed: bool, counter: bool) -> f64 {
    if smoothed && last > 0 && f[last].t > end {
        return interpolate(f[last - 1], f[last], end, counter);
    }
    f[last].v
}

/// The edge indexes of a widened window: the last sample at or before `start` (else the
/// first), and for `smoothed` the first sample at or after `end` (else the last).
fn edges(
    ts: impl Fn(usize) -> i64,
    len: usize,
    start: i64,
    end: i64,
    smoothed: bool,
) -> (usize, usize) {
    let mut last = len - 1;
    let first = search(last, |i| ts(i) > start).saturating_sub(1);
    if smoothed {
        last = search(last, |i| ts(i) >= end);
    }
    (first, last)
}

/// `extendFloats`: the window `[start, end]` with a point exactly on each edge (the anchored
/// or interpolated value) in place of the samples outside it. Empty when no sample is newer
/// than `start`.
pub(crate) fn extend_floats(f: &[Sample], start: i64, end: i64, smoothed: bool) -> Vec<Sample> {
    if f.is_empty() {
        return Vec::new();
    }
    let (first, last) = edges(|i| f[i].t, f.len(), start, end, smoothed);
    if f[last].t <= start {
        return Vec::new();
    }
    let left = pick_left(f, first, start, smoothed, false);
    let right = pick_right(f, last, end, smoothed, false);
    let inner_from = if f[first].t <= start {
        first + 1
    } else {
        first
    };
    let inner_to = if f[last].t >= end { last } else { last + 1 };
    let mut out = Vec::with_capacity(inner_to.saturating_sub(inner_from) + 2);
    out.push(Sample::new(start, left));
    if inner_from < inner_to {
        out.extend_from_slice(&f[inner_from..inner_to]);
    }
    out.push(Sample::new(end, right));
    out
}

/// [`extend_floats`] for `anchored` over a window that holds histograms (possibly mixed with
/// floats): the edge points keep their kind.
pub(crate) fn extend_mixed(
    f: &[Sample],
    h: &[HistogramSample],
    start: i64,
    end: i64,
) -> (Vec<Sample>, Vec<HistogramSample>) {
    // Time order of all points: `Ok(i)` a float, `Err(i)` a histogram.
    let mut all: Vec<(i64, Result<usize, usize>)> = f
        .iter()
        .enumerate()
        .map(|(i, s)| (s.t, Ok(i)))
        .chain(h.iter().enumerate().map(|(i, x)| (x.t, Err(i))))
        .collect();
    all.sort_by_key(|p| p.0);
    let (mut floats, mut hists) = (Vec::new(), Vec::new());
    if all.is_empty() {
        return (floats, hists);
    }
    let (first, last) = edges(|i| all[i].0, all.len(), start, end, false);
    if all[last].0 <= start {
        return (floats, hists);
    }
    let mut put = |t: i64, p: Result<usize, usize>| match p {
        Ok(i) => floats.push(Sample::new(t, f[i].v)),
        Err(i) => hists.push(HistogramSample {
            t,
            h: h[i].h.clone(),
        }),
    };
    put(start, all[first].1);
    let inner_from = if all[first].0 <= start {
        first + 1
    } else {
        first
    };
    let inner_to = if all[last].0 >= end { last } else { last + 1 };
    for &(t, p) in all.get(inner_from..inner_to).unwrap_or(&[]) {
        put(t, p);
    }
    put(end, all[last].1);
    (floats, hists)
}

/// `extendedRate`: `rate`, `increase` or `delta` of floats over an anchored or smoothed window
/// (`f` holds the widened window's samples).
pub(crate) fn rate_floats(
    f: &[Sample],
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    if f.is_empty() {
        return None;
    }
    let (mut first, last) = edges(|i| f[i].t, f.len(), start, end, smoothed);
    if f[last].t <= start || (smoothed && f[first].t > end) {
        return None;
    }
    let left = pick_left(f, first, start, smoothed, counter);
    let right = pick_right(f, last, end, smoothed, counter);
    let mut result = right - left;
    if counter {
        // Resets at the edges are already in `left` and `right`; count the ones inside.
        if f[first].t <= start {
            first += 1;
        }
        let inner_to = if f[last].t >= end { last } else { last + 1 };
        let inner = if first < inner_to {
            &f[first..inner_to]
        } else {
            &[][..]
        };
        let mut prev = left;
        for p in inner {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
        if right < prev {
            result += prev;
        }
    }
    if per_second {
        result /= (end - start) as f64 / 1000.0;
    }
    Some(result)
}

/// A histogram between two samples at `t` (a counter that fell is taken to restart from zero).
fn interpolate_histograms(
    p1: &HistogramSample,
    p2: &HistogramSample,
    t: i64,
    counter: bool,
) -> Option<FloatHistogram> {
    if t == p1.t {
        return Some((*p1.h).clone());
    }
    if t == p2.t {
        return Some((*p2.h).clone());
    }
    let fraction = (t - p1.t) as f64 / (p2.t - p1.t) as f64;
    let mut out = (*p2.h).clone();
    if counter && p2.h.detect_reset(&p1.h) {
        out.mul(fraction);
        return Some(out);
    }
    out.sub(&p1.h).ok()?;
    out.mul(fraction);
    out.add(&p1.h).ok()?;
    Some(out)
}

/// `extendedHistogramRate`: `rate`, `increase` or `delta` of histograms over an anchored or
/// smoothed window. `None` when the window has no answer or its histograms do not combine.
pub(crate) fn rate_histograms(
    h: &[HistogramSample],
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
    per_second: bool,
) -> Option<FloatHistogram> {
    if h.is_empty() {
        return None;
    }
    let (first, last) = edges(|i| h[i].t, h.len(), start, end, smoothed);
    if h[last].t <= start || (smoothed && h[first].t > end) {
        return None;
    }
    let custom = h[first].h.uses_custom_buckets();
    if h[first..=last]
        .iter()
        .any(|p| p.h.uses_custom_buckets() != custom)
    {
        return None;
    }
    let left = if smoothed && h[first].t < start {
        interpolate_histograms(&h[first], &h[first + 1], start, counter)?
    } else {
        (*h[first].h).clone()
    };
    let right = if smoothed && last > 0 && h[last].t > end {
        interpolate_histograms(&h[last - 1], &h[last], end, counter)?
    } else {
        (*h[last].h).clone()
    };
    let mut result = right.clone();
    result.sub(&left).ok()?;
    if counter {
        if let Some(correction) = histogram_resets(h, first, last, &left, &right, start, smoothed)?
        {
            result.add(&correction).ok()?;
        }
    }
    if per_second {
        result.div((end - start) as f64 / 1000.0);
    }
    result.counter_reset_hint = CounterResetHint::Gauge;
    result.compact();
    Some(result)
}

/// `correctForCounterResetsHistogram`: the sum of the histograms just before each reset inside
/// the window (`Some(None)`: no reset; `None`: the histograms do not combine).
fn histogram_resets(
    h: &[HistogramSample],
    first: usize,
    last: usize,
    left: &FloatHistogram,
    right: &FloatHistogram,
    start: i64,
    smoothed: bool,
) -> Option<Option<FloatHistogram>> {
    let mut from = first + 1;
    let mut prev = left;
    if smoothed && h[first].t < start && h[first + 1].h.detect_reset(&h[first].h) {
        // The left interpolation already spans this reset.
        prev = &h[first + 1].h;
        from += 1;
    }
    // `last` itself is `right` (or what `right` was interpolated towards).
    if from > last {
        return Some(None);
    }
    let mut correction: Option<FloatHistogram> = None;
    let add = |c: &mut Option<FloatHistogram>, x: &FloatHistogram| -> Option<()> {
        match c {
            None => *c = Some(x.clone()),
            Some(c) => {
                c.add(x).ok()?;
            }
        }
        Some(())
    };
    for p in &h[from..last] {
        if p.h.detect_reset(prev) {
            add(&mut correction, prev)?;
        }
        prev = &p.h;
    }
    if right.detect_reset(prev) {
        add(&mut correction, prev)?;
    }
    Some(correction)
}

/// What `x smoothed` gives at `t` for one series, from its non-stale points within a lookback
/// either side of `t`.
pub(crate) enum Smoothed {
    Float(f64),
    Histogram(FloatHistogram),
}

/// `smoothSeries` at one step: the exact sample at `t`, else the interpolation between its
/// neighbours, else the last value before `t`; nothing when no sample precedes `t` or the
/// window mixes floats and histograms.
pub(crate) fn smoothed_at(f: &[Sample], h: &[HistogramSample], t: i64) -> Option<Smoothed> {
    match (f.is_empty(), h.is_empty()) {
        (true, true) | (false, false) => None,
        (false, true) => {
            let i = f.partition_point(|s| s.t < t);
            if i < f.len() && f[i].t == t {
                Some(Smoothed::Float(f[i].v))
            } else if i > 0 && i < f.len() {
                Some(Smoothed::Float(interpolate(f[i - 1], f[i], t, false)))
            } else if i > 0 {
                Some(Smoothed::Float(f[i - 1].v))
            } else {
                None
            }
        }
        (true, false) => {
            let i = h.partition_point(|s| s.t < t);
            if i < h.len() && h[i].t == t {
                Some(Smoothed::Histogram((*h[i].h).clone()))
            } else if i > 0 && i < h.len() {
                let (prev, next) = (&h[i - 1], &h[i]);
                if prev.h.uses_custom_buckets() != next.h.uses_custom_buckets() {
                    return None;
                }
                let counter = prev.h.counter_reset_hint != CounterResetHint::Gauge
                    || next.h.counter_reset_hint != CounterResetHint::Gauge;
                interpolate_histograms(prev, next, t, counter).map(Smoothed::Histogram)
            } else if i > 0 {
                let mut carried = (*h[i - 1].h).clone();
                carried.counter_reset_hint = CounterResetHint::Unknown;
                Some(Smoothed::Histogram(carried))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    #[test]
    fn anchored_edges_replace_the_samples_outside_the_window() {
        // Samples every minute, window (60 s, 120 s]: the sample at 60 s anchors the left edge.
        let f = [s(0, 1.0), s(60_000, 2.0), s(90_000, 3.0), s(120_000, 4.0)];
        let out = extend_floats(&f, 60_000, 120_000, false);
        assert_eq!(out, vec![s(60_000, 2.0), s(90_000, 3.0), s(120_000, 4.0)]);
        // Smoothed: the edges are interpolated.
        let out = extend_floats(&f, 30_000, 100_000, true);
        assert_eq!(out.first(), Some(&s(30_000, 1.5)));
        assert_eq!(out.last().map(|x| x.t), Some(100_000));
        assert!((out.last().unwrap().v - (3.0 + 1.0 / 3.0)).abs() < 1e-12);
    }

    #[test]
    fn anchored_increase_counts_resets_inside_the_window() {
        let f = [s(0, 5.0), s(60_000, 8.0), s(120_000, 3.0), s(180_000, 6.0)];
        // 5 → 8 (+3), reset to 3 (+3), → 6 (+3).
        assert_eq!(rate_floats(&f, 0, 180_000, false, true, false), Some(9.0));
        // delta ignores resets.
        assert_eq!(rate_floats(&f, 0, 180_000, false, false, false), Some(1.0));
        // Nothing newer than the window's start: no answer.
        assert_eq!(rate_floats(&f[..1], 0, 60_000, false, true, false), None);
    }

    #[test]
    fn smoothed_selector_interpolates_holds_and_waits() {
        let f = [s(10_000, 1.0), s(20_000, 3.0)];
        let v = |t| match smoothed_at(&f, &[], t) {
            Some(Smoothed::Float(v)) => Some(v),
            _ => None,
        };
        assert_eq!(v(15_000), Some(2.0));
        assert_eq!(v(20_000), Some(3.0));
        assert_eq!(v(25_000), Some(3.0));
        assert_eq!(v(5_000), None);
    }
}
