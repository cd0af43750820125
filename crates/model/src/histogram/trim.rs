//! The trim operators of PromQL (`h </ x` keeps the observations below `x`, `h >/ x` those
//! above), as Prometheus 3.x computes them.
//!
//! A bucket wholly on the kept side stays; one wholly on the other side goes; one the cut
//! passes through keeps the share of its count on the kept side — by exponential
//! interpolation in an exponential bucket, by linear interpolation in the zero bucket and in
//! custom buckets. When anything was cut, the sum is estimated again from what is left: each
//! kept (part of a) bucket counts at its geometric middle (exponential buckets) or its
//! arithmetic middle (the zero bucket, custom buckets). A trim that cuts nothing returns the
//! histogram as it was, sum included.
//!
//! The zero bucket spans `[0, t]` when only positive buckets are populated, `[-t, 0]` when only
//! negative ones are, `[-t, t]` otherwise. Custom buckets reaching to infinity follow
//! Prometheus's choices: the first bucket counts from 0 when its upper bound is positive, and
//! is kept whole or dropped whole otherwise; the `+Inf` bucket is kept by `</` only for a cut
//! at `+Inf`, and by `>/` whole, counted at the larger of its lower bound and the cut.

use super::FloatHistogram;

/// What is kept of one bucket: the share of its count, and the value it counts at.
type Kept = Option<(f64, f64)>;

/// Which side of the cut a trim keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimSide {
    /// `</`: observations below the cut.
    Below,
    /// `>/`: observations above the cut.
    Above,
}

/// A bucket `(lo, hi]` with both bounds finite, interpolated by `share` (the fraction of the
/// bucket between `lo` and a point inside it) and counted at `middle`.
fn finite_part(
    lo: f64,
    hi: f64,
    cut: f64,
    side: TrimSide,
    share: impl Fn(f64) -> f64,
    middle: impl Fn(f64, f64) -> f64,
) -> Kept {
    match side {
        TrimSide::Below if hi <= cut => Some((1.0, middle(lo, hi))),
        TrimSide::Below if lo >= cut => None,
        TrimSide::Below => Some((share(cut), middle(lo, cut))),
        TrimSide::Above if lo >= cut => Some((1.0, middle(lo, hi))),
        TrimSide::Above if hi <= cut => None,
        TrimSide::Above => Some((1.0 - share(cut), middle(cut, hi))),
    }
}

/// A positive exponential bucket `(lo, hi]`.
fn exponential_part(lo: f64, hi: f64, cut: f64, side: TrimSide) -> Kept {
    let share = |x: f64| (x.ln() - lo.ln()) / (hi.ln() - lo.ln());
    finite_part(lo, hi, cut, side, share, |a, b| (a * b).sqrt())
}

/// A linearly interpolated bucket `(lo, hi]` (the zero bucket, a finite custom bucket).
fn linear_part(lo: f64, hi: f64, cut: f64, side: TrimSide) -> Kept {
    let share = |x: f64| (x - lo) / (hi - lo);
    finite_part(lo, hi, cut, side, share, |a, b| (a + b) / 2.0)
}

/// A custom bucket `(lo, hi]`, either bound possibly infinite.
fn custom_part(lo: f64, hi: f64, cut: f64, side: TrimSide) -> Kept {
    let (below, above) = (side == TrimSide::Below, side == TrimSide::Above);
    match (lo == f64::NEG_INFINITY, hi == f64::INFINITY) {
        (true, true) => ((below && cut == f64::INFINITY) || (above && cut == f64::NEG_INFINITY))
            .then_some((1.0, 0.0)),
        (false, true) if below => (cut == f64::INFINITY).then_some((1.0, lo)),
        (false, true) => (cut < f64::INFINITY).then_some((1.0, lo.max(cut))),
        (true, false) if hi > 0.0 => {
            if above && cut == f64::NEG_INFINITY {
                Some((1.0, hi / 2.0))
            } else if above && cut < 0.0 {
                None
            } else {
                linear_part(0.0, hi, cut, side)
            }
        }
        (true, false) if below => (cut > f64::NEG_INFINITY).then_some((1.0, hi.min(cut))),
        (true, false) => (cut == f64::NEG_INFINITY).then_some((1.0, hi)),
        (false, false) => linear_part(lo, hi, cut, side),
    }
}

impl FloatHistogram {
    /// `self </ cut` ([`TrimSide::Below`]) or `self >/ cut` ([`TrimSide::Above`]).
    pub fn trim(&self, cut: f64, side: TrimSide) -> FloatHistogram {
        let mirrored = match side {
            TrimSide::Below => TrimSide::Above,
            TrimSide::Above => TrimSide::Below,
        };
        let custom = self.uses_custom_buckets();
        let mut out = FloatHistogram {
            positive: Vec::new(),
            negative: Vec::new(),
            zero_count: 0.0,
            count: 0.0,
            sum: 0.0,
            ..self.clone()
        };
        let mut cut_anything = false;
        let mut keep = |count: f64, kept: Kept, into: &mut Vec<(i32, f64)>, index: i32| {
            let Some((share, at)) = kept else {
                cut_anything = true;
                return (0.0, 0.0);
            };
            cut_anything |= share < 1.0 || (custom && at != (kept_middle(self, index)));
            let left = count * share;
            if left != 0.0 {
                into.push((index, left));
            }
            (left, left * at)
        };
        let mut positive = Vec::with_capacity(self.positive.len());
        let mut totals = Vec::new();
        for &(i, c) in &self.positive {
            let (lo, hi) = (self.lower_bound(i), self.upper_bound(i));
            let kept = if custom {
                custom_part(lo, hi, cut, side)
            } else {
                exponential_part(lo, hi, cut, side)
            };
            totals.push(keep(c, kept, &mut positive, i));
        }
        let mut negative = Vec::with_capacity(self.negative.len());
        for &(i, c) in &self.negative {
            // `[-hi, -lo)` is `(lo, hi]` mirrored: keeping what is below `cut` there keeps
            // what is above `-cut` here.
            let (lo, hi) = (self.lower_bound(i), self.upper_bound(i));
            let kept = exponential_part(lo, hi, -cut, mirrored).map(|(s, at)| (s, -at));
            totals.push(keep(c, kept, &mut negative, i));
        }
        let mut zero = Vec::new();
        if self.zero_count != 0.0 && !custom {
            let t = self.zero_threshold;
            let (has_pos, has_neg) = (!self.positive.is_empty(), !self.negative.is_empty());
            let (lo, hi) = match (has_pos, has_neg) {
                (true, false) => (0.0, t),
                (false, true) => (-t, 0.0),
                _ => (-t, t),
            };
            let kept = linear_part(lo, hi, cut, side);
            totals.push(keep(self.zero_count, kept, &mut zero, 0));
        }
        if !cut_anything {
            return self.clone();
        }
        out.positive = positive;
        out.negative = negative;
        out.zero_count = zero.first().map_or(0.0, |z| z.1);
        for (count, sum) in totals {
            out.count += count;
            out.sum += sum;
        }
        out
    }
}

/// The value a whole custom bucket counts at when nothing of it is cut (only the buckets
/// reaching to infinity can count elsewhere, at the cut, while keeping their whole count).
fn kept_middle(h: &FloatHistogram, index: i32) -> f64 {
    let (lo, hi) = (h.lower_bound(index), h.upper_bound(index));
    match (lo == f64::NEG_INFINITY, hi == f64::INFINITY) {
        (true, true) => 0.0,
        (false, true) => lo,
        (true, false) if hi > 0.0 => hi / 2.0,
        (true, false) => hi,
        (false, false) => (lo + hi) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_test_expression;
    use super::*;

    fn h(text: &str) -> FloatHistogram {
        parse_test_expression(text).unwrap()
    }

    #[test]
    fn exponential_cut_inside_a_bucket_interpolates_exponentially() {
        let x = h("{{schema:0 sum:123.75 count:34 z_bucket:1 z_bucket_w:0.001 buckets:[2 4 8 16] n_buckets:[1 2]}}");
        // Half of (1, 2] in log space lies below √2.
        let t = x.trim(2f64.sqrt(), TrimSide::Below);
        assert_eq!(t.positive.len(), 2);
        assert!((t.positive[1].1 - 2.0).abs() < 1e-9);
        assert!((t.count - 8.0).abs() < 1e-9);
        // 2·√0.5 + 2·2^¼ − 1·√0.5 − 2·√2 (the zero bucket counts at 0).
        assert!((t.sum - 0.2570938865989847).abs() < 1e-9, "{}", t.sum);
    }

    #[test]
    fn a_trim_that_cuts_nothing_keeps_the_recorded_sum() {
        let x = h("{{schema:0 sum:8.5 count:12 z_bucket:2 z_bucket_w:0.5 buckets:[10]}}");
        assert_eq!(x.trim(0.0, TrimSide::Above), x);
        assert_eq!(x.trim(f64::INFINITY, TrimSide::Below), x);
        let none = x.trim(f64::INFINITY, TrimSide::Above);
        assert_eq!((none.count, none.sum, none.positive.len()), (0.0, 0.0, 0));
    }

    #[test]
    fn custom_buckets_interpolate_linearly_and_drop_the_inf_bucket_below() {
        let x =
            h("{{schema:-53 sum:172.5 count:15 custom_values:[5 10 15 20] buckets:[1 6 4 3 1]}}");
        let t = x.trim(13.0, TrimSide::Below);
        assert_eq!(t.positive.len(), 3);
        assert!((t.positive[2].1 - 2.4).abs() < 1e-9);
        assert!((t.sum - 75.1).abs() < 1e-9);
        let t = x.trim(50.0, TrimSide::Below);
        assert_eq!(t.positive.len(), 4);
        assert!((t.sum - 150.0).abs() < 1e-9);
    }
}
