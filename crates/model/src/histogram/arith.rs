//! Adding and subtracting histograms of different layouts: the finer schema is reduced to the
//! coarser, the narrower zero bucket widened to the wider, and custom bounds cut down to the
//! bounds both have.

use super::{CounterResetHint, FloatHistogram};

/// Why two histograms could not be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// One has exponential buckets, the other custom ones.
    ExponentialAndCustom,
}

/// What combining two histograms noticed, for PromQL's annotations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Combined {
    /// Custom bounds differed and were cut to the common ones.
    pub custom_reconciled: bool,
    /// One said counter reset, the other not.
    pub reset_conflict: bool,
}

impl FloatHistogram {
    /// `self += other`.
    pub fn add(&mut self, other: &FloatHistogram) -> Result<Combined, Mismatch> {
        self.combine(other, 1.0)
    }

    /// `self -= other`.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<Combined, Mismatch> {
        self.combine(other, -1.0)
    }

    fn combine(&mut self, other: &FloatHistogram, sign: f64) -> Result<Combined, Mismatch> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(Mismatch::ExponentialAndCustom);
        }
        let mut out = Combined {
            reset_conflict: self.merge_hint(other.counter_reset_hint),
            ..Combined::default()
        };
        let mut other = std::borrow::Cow::Borrowed(other);
        if self.uses_custom_buckets() {
            if self.custom_values != other.custom_values {
                let common = self.common_bounds(&other);
                self.rebucket_custom(&common);
                other.to_mut().rebucket_custom(&common);
                out.custom_reconciled = true;
            }
        } else {
            if other.schema < self.schema {
                self.reduce_resolution(other.schema);
            } else if other.schema > self.schema {
                other.to_mut().reduce_resolution(self.schema);
            }
            if other.zero_threshold > self.zero_threshold {
                self.widen_zero_bucket(other.zero_threshold);
            }
            if self.zero_threshold > other.zero_threshold {
                other.to_mut().widen_zero_bucket(self.zero_threshold);
            }
            // Widening one may have moved the threshold past the other's.
            if other.zero_threshold > self.zero_threshold {
                self.widen_zero_bucket(other.zero_threshold);
            }
            self.zero_count += sign * other.zero_count;
        }
        self.count += sign * other.count;
        self.sum += sign * other.sum;
        self.positive = merge_side(&self.positive, &other.positive, sign);
        self.negative = merge_side(&self.negative, &other.negative, sign);
        Ok(out)
    }

    /// Prometheus's rule for the hint of a sum; true for a direct conflict (reset and no
    /// reset), which leaves it unknown.
    fn merge_hint(&mut self, other: CounterResetHint) -> bool {
        use CounterResetHint::*;
        match (self.counter_reset_hint, other) {
            (a, b) if a == b => false,
            (Gauge, _) => false,
            (_, Gauge) => {
                self.counter_reset_hint = Gauge;
                false
            }
            (Unknown, _) => false,
            (_, Unknown) => {
                self.counter_reset_hint = Unknown;
                false
            }
            _ => {
                self.counter_reset_hint = Unknown;
                true
            }
        }
    }

    /// The custom bounds this histogram and `other` share, ascending: what two histograms with
    /// different custom buckets are combined and compared over.
    pub fn common_bounds(&self, other: &FloatHistogram) -> Vec<f64> {
        self.custom_values
            .iter()
            .copied()
            .filter(|v| other.custom_values.contains(v))
            .collect()
    }

    /// Whether two histograms are the same: layout, zero bucket, count, sum and buckets
    /// (Prometheus's `Equals`; a NaN sum equals nothing).
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        self.schema == other.schema
            && self.zero_threshold == other.zero_threshold
            && self.zero_count == other.zero_count
            && self.count == other.count
            && self.sum == other.sum
            && self.positive == other.positive
            && self.negative == other.negative
            && self.custom_values == other.custom_values
    }

    /// Moves every custom bucket into the first of `bounds` at or above its upper bound (the
    /// `+Inf` bucket past the last).
    pub fn rebucket_custom(&mut self, bounds: &[f64]) {
        let mut out: Vec<(i32, f64)> = Vec::with_capacity(self.positive.len());
        for &(i, c) in &self.positive {
            let upper = self.upper_bound(i);
            let j = bounds.partition_point(|b| *b < upper) as i32;
            match out.last_mut() {
                Some(last) if last.0 == j => last.1 += c,
                _ => out.push((j, c)),
            }
        }
        self.positive = out;
        self.custom_values = bounds.to_vec();
    }
}

/// `a + sign·b` bucket by bucket (both sorted by index); buckets that end at zero stay out.
fn merge_side(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                i += 1;
                j += 1;
                (x.0, x.1 + sign * y.1)
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                i += 1;
                *x
            }
            (Some(x), None) => {
                i += 1;
                *x
            }
            (_, Some(y)) => {
                j += 1;
                (y.0, sign * y.1)
            }
            (None, None) => unreachable!("loop condition"),
        };
        if next.1 != 0.0 {
            out.push(next);
        }
    }
    out
}
