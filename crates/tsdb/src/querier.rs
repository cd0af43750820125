//! Reads over one time range of the store: blocks and head merged by labels.

use std::sync::{Arc, RwLock};

use medic_model::{Labels, Matcher, Querier, Sample, SelectHints, Series, SeriesSet, StorageError};

use crate::block::Block;
use crate::compact;
use crate::downsample::{self, Aggr};
use crate::head::Head;
use crate::Error;

/// What one source (the head, a block) gave: series and their samples, sorted by labels.
type Source = Vec<(Labels, Vec<Sample>)>;

/// Reads blocks and head over one time range, merging series that appear in several.
pub struct DbQuerier {
    pub(crate) head: Arc<Head>,
    /// The store's live block list, read after the head on each selection: a block cut from
    /// the head in between is then in the list (its samples are read twice and merged), where
    /// a list taken when the querier was made would miss it once the head is truncated.
    pub(crate) blocks: Arc<RwLock<Vec<Arc<Block>>>>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

impl DbQuerier {
    /// The blocks overlapping the querier's range, as the store holds them now.
    fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|b| b.overlaps(self.mint, self.maxt))
            .cloned()
            .collect()
    }

    fn head_overlaps(&self) -> bool {
        let hmax = self.head.max_time();
        hmax != i64::MIN && hmax >= self.mint && self.head.min_time() <= self.maxt
    }

    /// Series with samples in range, sorted by labels, merged across sources.
    pub fn select_vec(&self, matchers: &[Matcher]) -> Result<Vec<Series>, Error> {
        self.select_vec_at_most(matchers, usize::MAX)
    }

    /// As [`DbQuerier::select_vec`], failing with [`Error::TooManySamples`] as soon as the
    /// samples decoded (blocks and head together) pass `max_samples`.
    pub fn select_vec_at_most(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
    ) -> Result<Vec<Series>, Error> {
        self.select_vec_hinted(matchers, max_samples, &SelectHints::default())
    }

    /// As [`DbQuerier::select_vec_at_most`], reading downsampled tiers as `hints` allow: the
    /// coarsest tier within `max_resolution_ms` for the time it covers, finer data for the
    /// newer time it does not, coarser tiers for the older; with no resolution allowed, raw
    /// data wherever it exists and tiers only for what raw retention dropped.
    pub fn select_vec_hinted(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
        hints: &SelectHints,
    ) -> Result<Vec<Series>, Error> {
        let mut budget = max_samples;
        let blocks = self.blocks();
        let aggr = Aggr::for_function(hints.func.as_deref());
        let mut sources: Vec<Source> = Vec::new();
        for (res, lo, hi) in self.plan(&blocks, hints.max_resolution_ms) {
            let (lo, hi) = (lo.max(self.mint), hi.min(self.maxt));
            if lo > hi {
                continue;
            }
            let part = self
                .select_level(&blocks, res, lo, hi, matchers, aggr, &mut budget)
                .map_err(|e| match e {
                    Error::TooManySamples(_) => Error::TooManySamples(max_samples),
                    e => e,
                })?;
            sources.extend(part);
        }
        sources.retain(|s| !s.is_empty());
        if sources.len() == 1 {
            let only = sources.pop().unwrap_or_default();
            return Ok(only
                .into_iter()
                .map(|(labels, samples)| Series { labels, samples })
                .collect());
        }
        let mut merged: std::collections::BTreeMap<Labels, Vec<Vec<Sample>>> = Default::default();
        for src in sources {
            for (l, s) in src {
                merged.entry(l).or_default().push(s);
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, parts)| Series {
                labels,
                samples: compact::merge_samples(parts),
            })
            .collect())
    }

    /// Which resolution answers which part of time: `(resolution, from, to)`, both inclusive.
    fn plan(&self, blocks: &[Arc<Block>], max_resolution: i64) -> Vec<(i64, i64, i64)> {
        // Coverage [min, max) of each resolution present, finest first.
        let mut levels: Vec<(i64, i64, i64)> = Vec::new();
        // The head's lower bound, not its oldest sample: finding that takes every series'
        // lock, and this runs on every selection.
        let head = self
            .head_overlaps()
            .then(|| (self.head.min_time(), self.head.max_time().saturating_add(1)));
        let mut resolutions: Vec<i64> = blocks.iter().map(|b| b.meta().resolution_ms).collect();
        resolutions.push(0);
        resolutions.sort_unstable();
        resolutions.dedup();
        for res in resolutions {
            let spans = blocks
                .iter()
                .filter(|b| b.meta().resolution_ms == res)
                .map(|b| (b.meta().min_time, b.meta().max_time))
                .chain(head.filter(|_| res == 0));
            let (min, max) =
                spans.fold((i64::MAX, i64::MIN), |(a, b), (x, y)| (a.min(x), b.max(y)));
            if min < max {
                levels.push((res, min, max));
            }
        }
        let Some(p) = levels
            .iter()
            .rposition(|(res, ..)| *res <= max_resolution)
            .or((!levels.is_empty()).then_some(0))
        else {
            return Vec::new();
        };
        let (res, lo, hi) = levels[p];
        let mut out = vec![(res, lo, hi - 1)];
        // Newer time the preferred level does not hold yet: finer levels, coarsest first.
        let mut newest = hi;
        for &(res, _, max) in levels[..p].iter().rev() {
            if max > newest {
                out.push((res, newest, max - 1));
                newest = max;
            }
        }
        // Older time it does not hold: any other level, finest first.
        let mut oldest = lo;
        for (i, &(res, min, _)) in levels.iter().enumerate() {
            if i == p {
                continue;
            }
            if min < oldest {
                out.push((res, min, oldest - 1));
                oldest = min;
            }
        }
        // The ends are open: the head takes new samples, and a range query may ask past them.
        if let Some(last) = out.iter_mut().max_by_key(|x| x.2) {
            last.2 = i64::MAX;
        }
        if let Some(first) = out.iter_mut().min_by_key(|x| x.1) {
            first.1 = i64::MIN;
        }
        out
    }

    /// The series of one resolution over `[lo, hi]`: raw from blocks and head, or a tier's
    /// aggregate `aggr` with `__aggr__` removed.
    #[allow(clippy::too_many_arguments)]
    fn select_level(
        &self,
        blocks: &[Arc<Block>],
        res: i64,
        lo: i64,
        hi: i64,
        matchers: &[Matcher],
        aggr: Aggr,
        budget: &mut usize,
    ) -> Result<Vec<Source>, Error> {
        let mut sources = Vec::new();
        if res == 0 {
            // The head first, then the blocks (see `blocks`).
            if self.head_overlaps() {
                let mint = lo.max(self.head.min_time());
                let mut from_head = Vec::new();
                for s in self.head.select(matchers) {
                    let samples = s.samples(mint, hi);
                    if samples.len() > *budget {
                        return Err(Error::TooManySamples(0));
                    }
                    *budget -= samples.len();
                    if !samples.is_empty() {
                        from_head.push((s.labels().clone(), samples));
                    }
                }
                sources.push(from_head);
            }
            // The live block list, read after the head: a block cut from the head since the
            // plan was made is in it (see `blocks`).
            for b in self.blocks().iter().filter(|b| b.meta().resolution_ms == 0) {
                sources.push(b.select_at_most(matchers, lo, hi, budget)?);
            }
            return Ok(sources);
        }
        let stored = |a: Aggr, b: &Block, budget: &mut usize| {
            let mut m = matchers.to_vec();
            m.push(Matcher::equal(downsample::AGGR_LABEL, a.as_str()));
            b.select_at_most(&m, lo, hi, budget)
        };
        for b in blocks.iter().filter(|b| b.meta().resolution_ms == res) {
            let part = if aggr == Aggr::Avg {
                let sums = stored(Aggr::Sum, b, budget)?;
                let counts = stored(Aggr::Count, b, budget)?;
                sums.into_iter()
                    .zip(counts)
                    .map(|((l, s), (_, c))| {
                        let avg = s
                            .iter()
                            .zip(&c)
                            .map(|(s, c)| Sample {
                                t: s.t,
                                v: s.v / c.v,
                            })
                            .collect();
                        (l, avg)
                    })
                    .collect()
            } else {
                stored(aggr, b, budget)?
            };
            let mut part: Vec<(Labels, Vec<Sample>)> = part
                .into_iter()
                .map(|(l, s)| (downsample::without_aggr(&l), s))
                .collect();
            part.sort_by(|a, b| a.0.cmp(&b.0));
            sources.push(part);
        }
        Ok(sources)
    }

    fn label_sets(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let mut out: Vec<Labels> = Vec::new();
        if self.head_overlaps() {
            out.extend(
                self.head
                    .select(matchers)
                    .iter()
                    .map(|s| s.labels().clone()),
            );
        }
        out
    }
}

impl DbQuerier {
    /// Native histograms in range of the series matching `matchers`: raw blocks and head,
    /// merged by labels.
    pub fn select_histograms_vec(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<crate::block_histograms::HistogramSeries>, Error> {
        let mut sources = Vec::new();
        for b in self.blocks() {
            if b.meta().resolution_ms == 0 {
                sources.push(b.select_histograms(matchers, self.mint, self.maxt)?);
            }
        }
        // Looking up the head's series costs a postings walk per selection: skipped while the
        // head has never stored a histogram.
        if self.head.has_histograms() && self.head_overlaps() {
            let series = self.head.select(matchers);
            sources.push(self.head.histograms_of(&series, self.mint, self.maxt));
        }
        Ok(crate::block_histograms::merge(sources))
    }
}

impl Querier for DbQuerier {
    fn select_histograms(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<medic_model::HistogramSeries>, StorageError> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .select_histograms_vec(matchers)?
            .into_iter()
            .map(|(labels, samples)| medic_model::HistogramSeries { labels, samples })
            .collect())
    }

    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError> {
        if matchers.is_empty() {
            return Ok(Box::new(Vec::new().into_iter()));
        }
        let v = self.select_vec(matchers)?;
        Ok(Box::new(v.into_iter().map(Ok)))
    }

    fn select_at_most(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        if matchers.is_empty() {
            return Ok(Box::new(Vec::new().into_iter()));
        }
        let v = self.select_vec_at_most(matchers, max_samples)?;
        Ok(Box::new(v.into_iter().map(Ok)))
    }

    fn select_hinted(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
        hints: &SelectHints,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        if matchers.is_empty() {
            return Ok(Box::new(Vec::new().into_iter()));
        }
        let v = self.select_vec_hinted(matchers, max_samples, hints)?;
        Ok(Box::new(v.into_iter().map(Ok)))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = std::collections::BTreeSet::new();
        if matchers.is_empty() {
            if self.head_overlaps() {
                names.extend(self.head.label_names());
            }
        } else {
            for l in self.label_sets(matchers) {
                names.extend(l.iter().map(|l| l.name.to_string()));
            }
        }
        for b in &self.blocks() {
            names.extend(b.label_names(matchers).iter().map(|n| n.to_string()));
        }
        names.remove(downsample::AGGR_LABEL);
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values = std::collections::BTreeSet::new();
        if matchers.is_empty() {
            if self.head_overlaps() {
                values.extend(self.head.label_values(name));
            }
        } else {
            for l in self.label_sets(matchers) {
                if let Some(v) = l.get(name) {
                    values.insert(v.to_string());
                }
            }
        }
        for b in &self.blocks() {
            if name == downsample::AGGR_LABEL && b.meta().resolution_ms != 0 {
                continue;
            }
            values.extend(b.label_values(name, matchers).iter().map(|v| v.to_string()));
        }
        Ok(values.into_iter().collect())
    }
}
