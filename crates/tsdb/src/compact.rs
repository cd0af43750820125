//! Which blocks to merge, and the streaming merge itself. The planner is a pure function of the
//! block list, so it is tested without touching the disk.

use medic_model::{Labels, Sample};

use crate::block::Block;
use crate::Error;

/// A block's range as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Inclusive start (ms).
    pub min: i64,
    /// Exclusive end (ms).
    pub max: i64,
}

/// The compaction levels: block range × 3, × 9, … up to `max_block`.
pub fn level_ranges(block_range: i64, max_block: i64) -> Vec<i64> {
    let mut out = vec![block_range];
    let mut r = block_range;
    while r.saturating_mul(3) <= max_block {
        r *= 3;
        out.push(r);
    }
    out
}

/// Picks the indexes (into `spans`, sorted by `min`) of blocks to merge next, if any: first any
/// chain of overlapping blocks, then, from the smallest level up, two or more blocks that share
/// one window of that level which lies entirely before `sealed_before` (no new data can land in
/// it). Windows of the first level (3× the block range) count as sealed regardless when
/// `eager_first_level` is set: merging them early costs one more merge later, never correctness.
pub fn plan(
    spans: &[Span],
    ranges: &[i64],
    sealed_before: i64,
    eager_first_level: bool,
) -> Option<Vec<usize>> {
    let mut i = 0;
    while i + 1 < spans.len() {
        let mut end = spans[i].max;
        let mut j = i + 1;
        while j < spans.len() && spans[j].min < end {
            end = end.max(spans[j].max);
            j += 1;
        }
        if j - i > 1 {
            return Some((i..j).collect());
        }
        i = j;
    }
    for (level, &r) in ranges.iter().enumerate().skip(1) {
        let sealed_before = if eager_first_level && level == 1 {
            i64::MAX
        } else {
            sealed_before
        };
        let mut start = 0;
        while start < spans.len() {
            let w = spans[start].min.div_euclid(r);
            let mut end = start;
            while end < spans.len()
                && spans[end].min.div_euclid(r) == w
                && spans[end].max <= (w + 1) * r
            {
                end += 1;
            }
            if end - start >= 2 && (w + 1) * r <= sealed_before {
                return Some((start..end).collect());
            }
            start = end.max(start + 1);
        }
    }
    None
}

/// A block's series, one at a time.
type SeriesIter<'a> = Box<dyn Iterator<Item = Result<(Labels, Vec<Sample>), Error>> + 'a>;

/// Merges the series of several blocks, one series at a time, in label order. Samples of the
/// same series from different blocks are merged by time; equal timestamps keep one sample.
pub struct MergeIter<'a> {
    sources: Vec<std::iter::Peekable<SeriesIter<'a>>>,
    error: Option<Error>,
}

impl<'a> MergeIter<'a> {
    /// A merge over `blocks`.
    pub fn new(blocks: &'a [std::sync::Arc<Block>]) -> Self {
        let sources = blocks
            .iter()
            .map(|b| {
                let it: SeriesIter<'a> = Box::new(b.series_iter());
                it.peekable()
            })
            .collect();
        Self {
            sources,
            error: None,
        }
    }

    /// The first read error, if the merge stopped early because of one.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
}

impl Iterator for MergeIter<'_> {
    type Item = (Labels, Vec<Sample>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.error.is_some() {
            return None;
        }
        let mut min: Option<Labels> = None;
        for s in &mut self.sources {
            match s.peek() {
                Some(Ok((l, _))) if min.as_ref().is_none_or(|m| l < m) => {
                    min = Some(l.clone());
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    if let Some(Err(e)) = s.next() {
                        self.error = Some(e);
                    }
                    return None;
                }
                None => {}
            }
        }
        let min = min?;
        let mut parts: Vec<Vec<Sample>> = Vec::new();
        for s in &mut self.sources {
            if matches!(s.peek(), Some(Ok((l, _))) if *l == min) {
                if let Some(Ok((_, samples))) = s.next() {
                    parts.push(samples);
                }
            }
        }
        Some((min, merge_samples(parts)))
    }
}

/// Merges sorted sample lists into one sorted list without duplicate timestamps (the first
/// list wins on ties).
pub fn merge_samples(mut parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut all: Vec<Sample> = parts.into_iter().flatten().collect();
    all.sort_by_key(|s| s.t);
    all.dedup_by_key(|s| s.t);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn spans(v: &[(i64, i64)]) -> Vec<Span> {
        v.iter()
            .map(|&(min, max)| Span {
                min: min * H,
                max: max * H,
            })
            .collect()
    }

    #[test]
    fn levels() {
        assert_eq!(
            level_ranges(2 * H, 54 * H),
            vec![2 * H, 6 * H, 18 * H, 54 * H]
        );
    }

    #[test]
    fn merges_overlaps_first() {
        let s = spans(&[(0, 2), (2, 4), (3, 5), (6, 8)]);
        assert_eq!(
            plan(&s, &level_ranges(2 * H, 100 * H), 0, false),
            Some(vec![1, 2])
        );
    }

    #[test]
    fn merges_a_sealed_window_only() {
        let r = level_ranges(2 * H, 100 * H);
        let s = spans(&[(0, 2), (2, 4), (4, 6), (6, 8)]);
        // Window [0h, 6h) is sealed once the head starts at 6h or later.
        assert_eq!(plan(&s, &r, 5 * H, false), None);
        assert_eq!(plan(&s, &r, 6 * H, false), Some(vec![0, 1, 2]));
        // After that merge: [0,6) and [6,8); the 18h window is not sealed yet.
        let s = spans(&[(0, 6), (6, 8)]);
        assert_eq!(plan(&s, &r, 9 * H, false), None);
        assert_eq!(plan(&s, &r, 18 * H, false), Some(vec![0, 1]));
    }

    #[test]
    fn partial_blocks_from_a_flush_merge_in_their_window() {
        let r = level_ranges(2 * H, 100 * H);
        let s = vec![
            Span { min: 0, max: 2 * H },
            Span {
                min: 2 * H,
                max: 3 * H + 5,
            },
            Span {
                min: 3 * H + 5,
                max: 4 * H,
            },
        ];
        assert_eq!(plan(&s, &r, 6 * H, false), Some(vec![0, 1, 2]));
    }

    #[test]
    fn eager_first_level_merges_an_open_window_but_not_beyond() {
        let r = level_ranges(2 * H, 100 * H);
        let s = spans(&[(0, 2), (2, 3)]);
        assert_eq!(plan(&s, &r, 3 * H, false), None);
        assert_eq!(plan(&s, &r, 3 * H, true), Some(vec![0, 1]));
        let s = spans(&[(0, 6), (6, 7)]);
        assert_eq!(
            plan(&s, &r, 7 * H, true),
            None,
            "the 18h window stays until sealed"
        );
    }

    #[test]
    fn merge_samples_dedups() {
        let a = vec![Sample::new(1, 1.0), Sample::new(3, 3.0)];
        let b = vec![Sample::new(2, 2.0), Sample::new(3, 9.0)];
        let m = merge_samples(vec![a, b]);
        assert_eq!(m.iter().map(|s| s.t).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(m[2].v, 3.0);
    }
}
