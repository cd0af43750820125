//! Reads over one time range of the store: blocks and head merged by labels.

use std::sync::{Arc, RwLock};

use medic_model::{Labels, Matcher, Querier, Sample, Series, SeriesSet, StorageError};

use crate::block::Block;
use crate::compact;
use crate::head::Head;
use crate::Error;

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
        let mut budget = max_samples;
        let mut sources: Vec<Vec<(Labels, Vec<Sample>)>> = Vec::new();
        // The head first, then the blocks (see `blocks`).
        if self.head_overlaps() {
            let mint = self.mint.max(self.head.min_time());
            let mut from_head = Vec::new();
            for s in self.head.select(matchers) {
                let samples = s.samples(mint, self.maxt);
                if samples.len() > budget {
                    return Err(Error::TooManySamples(max_samples));
                }
                budget -= samples.len();
                if !samples.is_empty() {
                    from_head.push((s.labels().clone(), samples));
                }
            }
            sources.push(from_head);
        }
        for b in &self.blocks() {
            let part = b
                .select_at_most(matchers, self.mint, self.maxt, &mut budget)
                .map_err(|e| match e {
                    Error::TooManySamples(_) => Error::TooManySamples(max_samples),
                    e => e,
                })?;
            sources.push(part);
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

impl Querier for DbQuerier {
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
            values.extend(b.label_values(name, matchers).iter().map(|v| v.to_string()));
        }
        Ok(values.into_iter().collect())
    }
}
