//! The store a replay reads and writes: the history (read only) with what the replayed rules
//! write kept beside it in memory.

use std::sync::Arc;

use medic_model::{
    Appendable, Appender, Matcher, MemStorage, Querier, Queryable, SelectHints, Series, SeriesSet,
    StorageError,
};

/// History plus the replay's own writes; reads merge both by labels.
#[derive(Clone)]
pub struct Overlay {
    history: Arc<dyn Queryable>,
    /// What the replayed rules wrote (recordings, `ALERTS`, anomaly series).
    pub written: MemStorage,
}

impl Overlay {
    /// Over `history`, nothing written yet.
    pub fn new(history: Arc<dyn Queryable>) -> Overlay {
        Overlay {
            history,
            written: MemStorage::new(),
        }
    }
}

impl Queryable for Overlay {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(OverlayQuerier {
            history: self.history.querier(mint, maxt)?,
            written: self.written.querier(mint, maxt)?,
        }))
    }
}

impl Appendable for Overlay {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.written.appender()
    }
}

struct OverlayQuerier {
    history: Box<dyn Querier>,
    written: Box<dyn Querier>,
}

impl OverlayQuerier {
    fn merge(
        a: Box<dyn SeriesSet>,
        b: Box<dyn SeriesSet>,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        let mut all: std::collections::BTreeMap<medic_model::Labels, Vec<medic_model::Sample>> =
            Default::default();
        for s in a.chain(b) {
            let s = s?;
            all.entry(s.labels).or_default().extend(s.samples);
        }
        let out: Vec<Result<Series, StorageError>> = all
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.t);
                samples.dedup_by_key(|s| s.t);
                Ok(Series { labels, samples })
            })
            .collect();
        Ok(Box::new(out.into_iter()))
    }
}

impl Querier for OverlayQuerier {
    fn select_histograms(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<medic_model::HistogramSeries>, StorageError> {
        let mut all: std::collections::BTreeMap<medic_model::Labels, Vec<_>> = Default::default();
        let written = self.written.select_histograms(matchers)?;
        for s in self
            .history
            .select_histograms(matchers)?
            .into_iter()
            .chain(written)
        {
            all.entry(s.labels).or_default().extend(s.samples);
        }
        Ok(all
            .into_iter()
            .map(|(labels, mut samples)| {
                samples.sort_by_key(|s| s.t);
                samples.dedup_by_key(|s| s.t);
                medic_model::HistogramSeries { labels, samples }
            })
            .collect())
    }

    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError> {
        Self::merge(
            self.history.select(matchers)?,
            self.written.select(matchers)?,
        )
    }

    fn select_hinted(
        &self,
        matchers: &[Matcher],
        max_samples: usize,
        hints: &SelectHints,
    ) -> Result<Box<dyn SeriesSet>, StorageError> {
        Self::merge(
            self.history.select_hinted(matchers, max_samples, hints)?,
            self.written.select(matchers)?,
        )
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut v = self.history.label_names(matchers)?;
        v.extend(self.written.label_names(matchers)?);
        v.sort();
        v.dedup();
        Ok(v)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut v = self.history.label_values(name, matchers)?;
        v.extend(self.written.label_values(name, matchers)?);
        v.sort();
        v.dedup();
        Ok(v)
    }
}
