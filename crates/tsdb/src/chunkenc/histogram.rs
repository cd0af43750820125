//! Native histograms in head chunks. A chunk holds a run of histograms that share a bucket
//! layout (schema, zero-bucket width, bucket indexes, custom bounds) as columns: the count, the
//! sum, the zero count and every bucket each a Gorilla XOR stream ([`super::xor`]), the first
//! also carrying the timestamps. A bucket that did not change costs two bits; one that grew by a
//! little, a few bytes — where a decoded histogram costs 16 bytes a bucket plus its allocations.
//!
//! A histogram whose populated buckets are a subset of the chunk's layout joins it (its missing
//! buckets stored as 0, which reads back as absent, as the model keeps no empty bucket); one that
//! needs a bucket the layout lacks, or another schema, starts a new chunk.

use std::sync::Arc;

use medic_model::histogram::CounterResetHint;
use medic_model::{FloatHistogram, HistogramSample};

use super::xor::{XorEncoder, XorIter};

/// Most histograms one chunk holds before a new one is started.
pub const MAX_HISTOGRAMS: u32 = 240;

/// What a chunk's histograms share.
#[derive(Debug, PartialEq)]
struct Layout {
    schema: i32,
    zero_threshold_bits: u64,
    positive: Vec<i32>,
    negative: Vec<i32>,
    custom_values: Vec<f64>,
}

impl Layout {
    fn of(h: &FloatHistogram) -> Layout {
        Layout {
            schema: h.schema,
            zero_threshold_bits: h.zero_threshold.to_bits(),
            positive: h.positive.iter().map(|b| b.0).collect(),
            negative: h.negative.iter().map(|b| b.0).collect(),
            custom_values: h.custom_values.clone(),
        }
    }

    /// Whether `h` can be stored in this layout.
    fn admits(&self, h: &FloatHistogram) -> bool {
        let subset = |have: &[i32], want: &[(i32, f64)]| {
            let mut i = 0;
            want.iter().all(|(idx, _)| {
                while i < have.len() && have[i] < *idx {
                    i += 1;
                }
                i < have.len() && have[i] == *idx
            })
        };
        self.schema == h.schema
            && self.zero_threshold_bits == h.zero_threshold.to_bits()
            && self.custom_values.len() == h.custom_values.len()
            && self
                .custom_values
                .iter()
                .zip(&h.custom_values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
            && subset(&self.positive, &h.positive)
            && subset(&self.negative, &h.negative)
    }
}

/// A run of histograms with one layout, as XOR columns.
#[derive(Debug)]
pub struct HistogramChunk {
    layout: Arc<Layout>,
    /// Counter-reset hints other than `Unknown`, by position in the chunk.
    hints: Vec<(u32, CounterResetHint)>,
    /// count, sum, zero count, then the layout's positive buckets, then its negative ones.
    columns: Vec<XorEncoder>,
    count: u32,
    /// Oldest and newest timestamps.
    pub mint: i64,
    pub maxt: i64,
}

/// The values of `side` at the layout's indexes, 0 where `side` has none.
fn dense(layout: &[i32], side: &[(i32, f64)], out: &mut Vec<f64>) {
    let mut j = 0;
    for idx in layout {
        if j < side.len() && side[j].0 == *idx {
            out.push(side[j].1);
            j += 1;
        } else {
            out.push(0.0);
        }
    }
}

impl HistogramChunk {
    /// A chunk holding `h` at `t`, with `h`'s layout.
    pub fn new(t: i64, h: &FloatHistogram) -> HistogramChunk {
        let layout = Arc::new(Layout::of(h));
        let n = 3 + layout.positive.len() + layout.negative.len();
        let mut c = HistogramChunk {
            layout,
            hints: Vec::new(),
            columns: (0..n).map(|_| XorEncoder::with_capacity(16)).collect(),
            count: 0,
            mint: t,
            maxt: t,
        };
        c.push(t, h);
        c
    }

    fn push(&mut self, t: i64, h: &FloatHistogram) {
        let mut values = Vec::with_capacity(self.columns.len());
        values.extend([h.count, h.sum, h.zero_count]);
        dense(&self.layout.positive, &h.positive, &mut values);
        dense(&self.layout.negative, &h.negative, &mut values);
        for (col, v) in self.columns.iter_mut().zip(values) {
            col.append(t, v);
        }
        if h.counter_reset_hint != CounterResetHint::Unknown {
            self.hints.push((self.count, h.counter_reset_hint));
        }
        self.count += 1;
        self.maxt = t;
    }

    /// Appends `h` at `t` (newer than [`HistogramChunk::maxt`]) if it fits; `false` when a new
    /// chunk must be started (full, or another layout).
    pub fn try_append(&mut self, t: i64, h: &FloatHistogram) -> bool {
        if self.count >= MAX_HISTOGRAMS || !self.layout.admits(h) {
            return false;
        }
        self.push(t, h);
        true
    }

    /// Histograms held.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of encoded data (for memory accounting).
    pub fn bytes(&self) -> usize {
        self.columns.iter().map(|c| c.bytes().len()).sum::<usize>() + self.hints.len() * 8
    }

    /// Appends the histograms in `[mint, maxt]` to `out`, in time order.
    pub fn decode(&self, mint: i64, maxt: i64, out: &mut Vec<HistogramSample>) {
        if self.maxt < mint || self.mint > maxt {
            return;
        }
        let mut iters: Vec<XorIter<'_>> = self
            .columns
            .iter()
            .map(|c| XorIter::new(c.bytes(), self.count))
            .collect();
        let npos = self.layout.positive.len();
        let mut hints = self.hints.iter().peekable();
        for i in 0..self.count {
            let mut t = 0;
            let mut vals = Vec::with_capacity(iters.len());
            for (k, it) in iters.iter_mut().enumerate() {
                // Written together, so all columns hold `count` points.
                let s = it.next().expect("every column holds every histogram");
                if k == 0 {
                    t = s.t;
                }
                vals.push(s.v);
            }
            let hint = match hints.peek() {
                Some((at, h)) if *at == i => {
                    hints.next();
                    *h
                }
                _ => CounterResetHint::Unknown,
            };
            if t < mint || t > maxt {
                continue;
            }
            let side = |idx: &[i32], v: &[f64]| -> Vec<(i32, f64)> {
                idx.iter()
                    .zip(v)
                    .filter(|(_, c)| **c != 0.0)
                    .map(|(i, c)| (*i, *c))
                    .collect()
            };
            let h = FloatHistogram {
                counter_reset_hint: hint,
                schema: self.layout.schema,
                zero_threshold: f64::from_bits(self.layout.zero_threshold_bits),
                count: vals[0],
                sum: vals[1],
                zero_count: vals[2],
                positive: side(&self.layout.positive, &vals[3..3 + npos]),
                negative: side(&self.layout.negative, &vals[3 + npos..]),
                custom_values: self.layout.custom_values.clone(),
            };
            out.push(HistogramSample { t, h: Arc::new(h) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::histogram::parse_test_expression;

    fn h(text: &str) -> FloatHistogram {
        parse_test_expression(text).unwrap()
    }

    #[test]
    fn histograms_read_back_exactly_and_layouts_split_chunks() {
        let a = h("{{schema:2 sum:10.5 count:9 z_bucket:1 z_bucket_w:0.001 offset:-1 buckets:[2 0 3] n_buckets:[3] counter_reset_hint:reset}}");
        // A subset of a's buckets: fits a's layout.
        let b = h("{{schema:2 sum:11 count:10 z_bucket:2 z_bucket_w:0.001 offset:-1 buckets:[5] n_buckets:[3]}}");
        // A bucket a lacks: needs a new chunk.
        let c = h("{{schema:2 sum:12 count:11 offset:4 buckets:[11]}}");
        let mut chunk = HistogramChunk::new(1000, &a);
        assert!(chunk.try_append(2000, &b));
        assert!(!chunk.try_append(3000, &c));
        let mut out = Vec::new();
        chunk.decode(i64::MIN, i64::MAX, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].t, &*out[0].h), (1000, &a));
        assert_eq!((out[1].t, &*out[1].h), (2000, &b));
        let mut part = Vec::new();
        chunk.decode(1500, 2500, &mut part);
        assert_eq!(part.len(), 1);
        assert_eq!(part[0].t, 2000);
    }

    #[test]
    fn a_slowly_growing_histogram_costs_a_few_bytes_a_sample() {
        let mut hs = Vec::new();
        for k in 0..240u32 {
            let mut x = h("{{schema:3 sum:0 count:0 offset:-10 buckets:[1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]}}");
            // One of the 20 buckets grows per sample, as a request rate of one per scrape does.
            let i = (k % 20) as usize;
            x.positive[i].1 += f64::from(k / 20 + 1);
            x.count = x.positive.iter().map(|b| b.1).sum();
            x.sum = x.count * 0.25;
            hs.push(x);
        }
        let mut chunk = HistogramChunk::new(0, &hs[0]);
        for (k, x) in hs.iter().enumerate().skip(1) {
            assert!(chunk.try_append(k as i64 * 15_000, x));
        }
        let per = chunk.bytes() as f64 / 240.0;
        eprintln!("{per:.1} bytes per histogram of 20 buckets");
        assert!(per < 20.0, "{per} bytes per histogram of 20 buckets");
        let mut out = Vec::new();
        chunk.decode(i64::MIN, i64::MAX, &mut out);
        assert!(out.iter().zip(&hs).all(|(a, b)| *a.h == *b));
    }
}
