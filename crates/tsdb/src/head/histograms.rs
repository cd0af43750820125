//! One series' native histograms in the head: in-order histograms in XOR-column chunks
//! ([`HistogramChunk`]), the few that arrive out of order (within the window) decoded beside
//! them and merged on read.

use medic_model::{AppendError, FloatHistogram, HistogramSample};

use crate::chunkenc::histogram::HistogramChunk;

/// Whether two histograms are the same sample, bit for bit — the way a float sample repeated at
/// its timestamp is recognised (a NaN sum matches the same NaN).
pub(crate) fn identical(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    let bits = |x: f64| x.to_bits();
    let side = |p: &[(i32, f64)], q: &[(i32, f64)]| {
        p.len() == q.len()
            && p.iter()
                .zip(q)
                .all(|(x, y)| x.0 == y.0 && bits(x.1) == bits(y.1))
    };
    a.counter_reset_hint == b.counter_reset_hint
        && a.schema == b.schema
        && bits(a.zero_threshold) == bits(b.zero_threshold)
        && bits(a.zero_count) == bits(b.zero_count)
        && bits(a.count) == bits(b.count)
        && bits(a.sum) == bits(b.sum)
        && side(&a.positive, &b.positive)
        && side(&a.negative, &b.negative)
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| bits(*x) == bits(*y))
}

/// A series' histograms.
#[derive(Debug, Default)]
pub(crate) struct HistogramStore {
    chunks: Vec<HistogramChunk>,
    /// Accepted out-of-order histograms, sorted by time.
    ooo: Vec<HistogramSample>,
}

impl HistogramStore {
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.ooo.is_empty()
    }

    /// Newest timestamp held (`i64::MIN` when empty).
    fn newest(&self) -> i64 {
        let c = self.chunks.last().map_or(i64::MIN, |c| c.maxt);
        c.max(self.ooo.last().map_or(i64::MIN, |h| h.t))
    }

    /// Oldest timestamp held.
    pub(crate) fn oldest(&self) -> Option<i64> {
        let c = self.chunks.first().map(|c| c.mint);
        let o = self.ooo.first().map(|h| h.t);
        match (c, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a histogram at `t` may be stored: `Ok(true)` yes, `Ok(false)` the same one is
    /// already there (dropped silently, as for floats), or why not.
    pub(crate) fn check(
        &self,
        t: i64,
        h: &FloatHistogram,
        min_valid: i64,
        ooo_window: i64,
    ) -> Result<bool, AppendError> {
        if t < min_valid {
            return Err(AppendError::TooOld);
        }
        let newest = self.newest();
        if t > newest {
            return Ok(true);
        }
        if let Some(x) = self.range(t, t).first() {
            return if identical(&x.h, h) {
                Ok(false)
            } else {
                Err(AppendError::DuplicateTimestamp)
            };
        }
        if ooo_window > 0 && t >= newest.saturating_sub(ooo_window) {
            Ok(true)
        } else {
            Err(AppendError::OutOfOrder)
        }
    }

    /// Stores a histogram [`HistogramStore::check`] accepted.
    pub(crate) fn insert(&mut self, sample: HistogramSample) {
        let newest = self.chunks.last().map_or(i64::MIN, |c| c.maxt);
        if sample.t > newest {
            let appended = self
                .chunks
                .last_mut()
                .is_some_and(|c| c.try_append(sample.t, &sample.h));
            if !appended {
                self.chunks.push(HistogramChunk::new(sample.t, &sample.h));
            }
            return;
        }
        let i = self.ooo.partition_point(|x| x.t < sample.t);
        if self.ooo.get(i).is_none_or(|x| x.t != sample.t) {
            self.ooo.insert(i, sample);
        }
    }

    /// Histograms in `[mint, maxt]`, in time order.
    pub(crate) fn range(&self, mint: i64, maxt: i64) -> Vec<HistogramSample> {
        let mut out = Vec::new();
        for c in &self.chunks {
            c.decode(mint, maxt, &mut out);
        }
        let a = self.ooo.partition_point(|x| x.t < mint);
        let b = self.ooo.partition_point(|x| x.t <= maxt);
        if a < b {
            out.extend_from_slice(&self.ooo[a..b]);
            out.sort_by_key(|h| h.t);
            out.dedup_by_key(|h| h.t);
        }
        out
    }

    /// Drops what is older than `mint` (whole chunks; reads filter the rest).
    pub(crate) fn truncate(&mut self, mint: i64) {
        self.chunks.retain(|c| c.maxt >= mint);
        self.ooo.retain(|h| h.t >= mint);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use medic_model::histogram::parse_test_expression;

    use super::*;

    fn at(t: i64, count: u32) -> HistogramSample {
        let text = format!("{{{{schema:0 sum:{count} count:{count} buckets:[{count}]}}}}");
        HistogramSample {
            t,
            h: Arc::new(parse_test_expression(&text).unwrap()),
        }
    }

    #[test]
    fn out_of_order_histograms_within_the_window_are_merged_on_read() {
        let mut s = HistogramStore::default();
        for k in [10, 20, 30] {
            assert_eq!(s.check(k, &at(k, 1).h, 0, 0), Ok(true));
            s.insert(at(k, 1));
        }
        // Older than the newest: refused without a window, kept with one.
        assert_eq!(
            s.check(25, &at(25, 2).h, 0, 0),
            Err(AppendError::OutOfOrder)
        );
        assert_eq!(s.check(25, &at(25, 2).h, 0, 10), Ok(true));
        s.insert(at(25, 2));
        // The same histogram again is a no-op; another one at that time is refused.
        assert_eq!(s.check(25, &at(25, 2).h, 0, 10), Ok(false));
        assert_eq!(
            s.check(20, &at(20, 9).h, 0, 10),
            Err(AppendError::DuplicateTimestamp)
        );
        let ts: Vec<i64> = s.range(0, 100).iter().map(|h| h.t).collect();
        assert_eq!(ts, vec![10, 20, 25, 30]);
        assert_eq!(s.range(21, 29)[0].h.count, 2.0);
        s.truncate(26);
        // Whole chunks only: the chunk holding 10..30 stays, its old part filtered on read.
        assert_eq!(s.range(26, 100).len(), 1);
        assert_eq!(s.oldest(), Some(10));
        assert_eq!(s.check(5, &at(5, 1).h, 26, 100), Err(AppendError::TooOld));
    }
}
