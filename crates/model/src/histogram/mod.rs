//! Native histograms (Prometheus's sparse, exponential-bucket histograms, and the custom-bucket
//! kind, schema −53, that stands in for a classic histogram), as PromQL computes with them:
//! every count a float, buckets as absolute counts.
//!
//! Prometheus keeps buckets as spans plus a dense array; here each side is a list of
//! `(index, count)` pairs, sorted by index, with no empty bucket. The two say the same thing:
//! Prometheus compares histograms only after compacting away empty buckets, and writes none in
//! its API. The span form is made when a histogram goes out on the wire or to disk
//! ([`FloatHistogram::spans`]).
//!
//! Bucket `i` of an exponential schema `s` holds observations in `(b^(i-1), b^i]` where
//! `b = 2^(2^-s)`; negative buckets mirror them; the zero bucket holds `[-t, t]`. For custom
//! buckets (schema −53) bucket `i` is `(v[i-1], v[i]]` over the list of upper bounds `v`, with
//! `-Inf` below the first and `+Inf` above the last.

mod arith;
mod text;
mod trim;

pub use arith::{Combined, Mismatch};
pub use text::{format_go_g, format_test_expression, parse_test_expression};
pub use trim::TrimSide;

/// The schema of custom-bucket histograms.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What the writer said about a counter reset before this histogram (Prometheus's
/// `CounterResetHint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    /// Not known; readers compare with the previous histogram.
    #[default]
    Unknown,
    /// A counter reset happened here.
    CounterReset,
    /// No counter reset happened here.
    NotCounterReset,
    /// A gauge histogram: it goes up and down, resets do not apply.
    Gauge,
}

/// One native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    /// −4 … 8 for exponential buckets, [`CUSTOM_BUCKETS_SCHEMA`] for custom ones.
    pub schema: i32,
    /// Width of the zero bucket (exponential schemas only).
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    /// `(index, count)`, ascending index, no zero count.
    pub positive: Vec<(i32, f64)>,
    pub negative: Vec<(i32, f64)>,
    /// Upper bounds of the custom buckets, ascending (schema −53 only).
    pub custom_values: Vec<f64>,
}

/// A histogram at a time (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    pub h: std::sync::Arc<FloatHistogram>,
}

/// One bucket with its bounds, as iterated in value order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    /// The zero bucket of an exponential histogram.
    pub zero: bool,
}

/// A span of consecutive buckets on the wire: `offset` from the end of the previous span (from
/// index 0 for the first), `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

impl FloatHistogram {
    /// Whether the buckets are custom (schema −53).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Upper bound of bucket `index` on the positive side.
    pub fn upper_bound(&self, index: i32) -> f64 {
        if self.uses_custom_buckets() {
            return custom_bound(&self.custom_values, index);
        }
        exponential_bound(index, self.schema)
    }

    /// Lower bound of bucket `index` on the positive side.
    pub fn lower_bound(&self, index: i32) -> f64 {
        if self.uses_custom_buckets() {
            return custom_bound(&self.custom_values, index - 1);
        }
        exponential_bound(index - 1, self.schema)
    }

    /// Every populated bucket in ascending order of value: negative buckets, the zero bucket
    /// (when it holds anything), positive buckets.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        for &(i, c) in self.negative.iter().rev() {
            out.push(Bucket {
                lower: -self.upper_bound(i),
                upper: -self.lower_bound(i),
                count: c,
                zero: false,
            });
        }
        if self.zero_count != 0.0 && !self.uses_custom_buckets() {
            out.push(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                count: self.zero_count,
                zero: true,
            });
        }
        for &(i, c) in &self.positive {
            out.push(Bucket {
                lower: self.lower_bound(i),
                upper: self.upper_bound(i),
                count: c,
                zero: false,
            });
        }
        out
    }

    /// Multiplies every count and the sum by `f`.
    pub fn mul(&mut self, f: f64) {
        self.zero_count *= f;
        self.count *= f;
        self.sum *= f;
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 *= f;
        }
    }

    /// Divides every count and the sum by `f`. Dividing by zero leaves no bucket (as in
    /// Prometheus: the zero bucket, count and sum become infinite or NaN).
    pub fn div(&mut self, f: f64) {
        self.zero_count /= f;
        self.count /= f;
        self.sum /= f;
        if f == 0.0 {
            self.positive.clear();
            self.negative.clear();
            return;
        }
        for b in self.positive.iter_mut().chain(self.negative.iter_mut()) {
            b.1 /= f;
        }
    }

    /// Drops buckets whose count is zero (what Prometheus's `Compact(0)` leaves out).
    pub fn compact(&mut self) {
        self.positive.retain(|b| b.1 != 0.0);
        self.negative.retain(|b| b.1 != 0.0);
    }

    /// Whether this histogram, following `prev` in a counter, shows a reset: a count, the zero
    /// bucket or a bucket went down, the schema got finer, the zero bucket narrower, or the
    /// custom bounds changed.
    pub fn detect_reset(&self, prev: &FloatHistogram) -> bool {
        // As in Prometheus, a gauge histogram is compared like an unknown one: the caller
        // decides whether resets matter.
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < prev.count {
            return true;
        }
        if self.uses_custom_buckets() != prev.uses_custom_buckets() {
            return true;
        }
        if !self.uses_custom_buckets()
            && (self.schema > prev.schema || self.zero_threshold < prev.zero_threshold)
        {
            return true;
        }
        // Compare at the coarser of the two layouts: reduce `prev` to this schema and zero
        // bucket (custom buckets: both to the bounds they share), then every bucket must have
        // grown or stayed.
        let mut p = prev.clone();
        let mut cur = std::borrow::Cow::Borrowed(self);
        if p.uses_custom_buckets() {
            if p.custom_values != self.custom_values {
                let common = self.common_bounds(&p);
                p.rebucket_custom(&common);
                cur.to_mut().rebucket_custom(&common);
            }
        } else {
            p.reduce_resolution(self.schema);
            p.widen_zero_bucket(self.zero_threshold);
        }
        if cur.zero_count < p.zero_count {
            return true;
        }
        decreased(&p.positive, &cur.positive) || decreased(&p.negative, &cur.negative)
    }

    /// Lowers an exponential histogram's resolution to `schema` (≤ its own), merging buckets.
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.uses_custom_buckets() || schema >= self.schema {
            return;
        }
        let shift = (self.schema - schema) as u32;
        for side in [&mut self.positive, &mut self.negative] {
            let mut out: Vec<(i32, f64)> = Vec::with_capacity(side.len());
            for &(i, c) in side.iter() {
                let j = ((i - 1) >> shift) + 1;
                match out.last_mut() {
                    Some(last) if last.0 == j => last.1 += c,
                    _ => out.push((j, c)),
                }
            }
            *side = out;
        }
        self.schema = schema;
    }

    /// Widens the zero bucket to at least `threshold`, moving the buckets it then covers into
    /// it. A threshold inside a bucket grows to that bucket's upper bound, so no bucket is
    /// split.
    pub fn widen_zero_bucket(&mut self, threshold: f64) {
        if self.uses_custom_buckets() || threshold <= self.zero_threshold {
            return;
        }
        let mut t = threshold;
        loop {
            let mut grown = false;
            for &(i, _) in self.positive.iter().chain(self.negative.iter()) {
                let (lower, upper) = (self.lower_bound(i), self.upper_bound(i));
                if lower < t && upper > t {
                    t = upper;
                    grown = true;
                }
            }
            if !grown {
                break;
            }
        }
        let mut moved = 0.0;
        let schema = self.schema;
        for side in [&mut self.positive, &mut self.negative] {
            side.retain(|&(i, c)| {
                if exponential_bound(i, schema) <= t {
                    moved += c;
                    false
                } else {
                    true
                }
            });
        }
        self.zero_count += moved;
        self.zero_threshold = t;
    }

    /// The buckets of one side as spans and counts, for the wire and for storage.
    pub fn spans(side: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
        let mut spans: Vec<Span> = Vec::new();
        let mut counts = Vec::with_capacity(side.len());
        let mut next = 0i32;
        for &(i, c) in side {
            match spans.last_mut() {
                Some(s) if i == next => s.length += 1,
                Some(_) => spans.push(Span {
                    offset: i - next,
                    length: 1,
                }),
                None => spans.push(Span {
                    offset: i,
                    length: 1,
                }),
            }
            counts.push(c);
            next = i + 1;
        }
        (spans, counts)
    }

    /// One side's buckets from spans and absolute counts (empty buckets left out). `None` when
    /// the spans and counts disagree in number.
    pub fn from_spans(spans: &[Span], counts: &[f64]) -> Option<Vec<(i32, f64)>> {
        let total: usize = spans.iter().map(|s| s.length as usize).sum();
        if total != counts.len() {
            return None;
        }
        let mut out = Vec::with_capacity(counts.len());
        let mut idx = 0i32;
        let mut k = 0;
        for (n, s) in spans.iter().enumerate() {
            idx = if n == 0 { s.offset } else { idx + s.offset };
            for _ in 0..s.length {
                if counts[k] != 0.0 {
                    out.push((idx, counts[k]));
                }
                k += 1;
                idx += 1;
            }
        }
        Some(out)
    }
}

/// Whether any bucket of `prev` is larger than the same bucket of `cur` (missing = 0).
fn decreased(prev: &[(i32, f64)], cur: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        let now = if j < cur.len() && cur[j].0 == i {
            cur[j].1
        } else {
            0.0
        };
        if now < c {
            return true;
        }
    }
    false
}

/// Upper bound of custom bucket `index`: `-Inf` below the first, `+Inf` past the last.
fn custom_bound(values: &[f64], index: i32) -> f64 {
    if index < 0 {
        f64::NEG_INFINITY
    } else if (index as usize) < values.len() {
        values[index as usize]
    } else {
        f64::INFINITY
    }
}

/// Upper bound of exponential bucket `index` at `schema`: `2^(index · 2^-schema)`, with the
/// bucket just below the one for ±Inf ending at `f64::MAX`.
pub fn exponential_bound(index: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = (index as i64) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let per_octave = 1i64 << schema;
    let frac_idx = (index as i64).rem_euclid(per_octave);
    let exp = (index as i64).div_euclid(per_octave) + 1;
    let frac = if frac_idx == 0 {
        0.5
    } else {
        (frac_idx as f64 / per_octave as f64).exp2() / 2.0
    };
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `frac · 2^exp`, exact for any `exp` a bucket index can give.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut v = frac;
    let mut e = exp;
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

#[cfg(test)]
mod tests;
