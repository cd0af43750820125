//! [`MemStorage`]: the storage traits over a map in memory, for tests of the layers above the
//! store. It checks order like a real store but keeps nothing on disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::{
    is_valid_label_name, AppendError, Appendable, Appender, CommitSummary, HistogramSample,
    HistogramSeries, Labels, Matcher, Querier, Queryable, Sample, Series, SeriesRef, SeriesSet,
    StorageError,
};

#[derive(Debug, Default)]
struct Inner {
    series: Vec<(Labels, Vec<Sample>)>,
    by_labels: BTreeMap<Labels, usize>,
    histograms: BTreeMap<Labels, Vec<HistogramSample>>,
}

/// An in-memory store behind the storage traits. Cloning shares the data.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    inner: Arc<Mutex<Inner>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples directly, bypassing order checks (test setup).
    pub fn add(&self, labels: Labels, samples: &[Sample]) {
        let mut inner = self.inner.lock().unwrap();
        let idx = match inner.by_labels.get(&labels) {
            Some(i) => *i,
            None => {
                let i = inner.series.len();
                inner.series.push((labels.clone(), Vec::new()));
                inner.by_labels.insert(labels, i);
                i
            }
        };
        let s = &mut inner.series[idx].1;
        s.extend_from_slice(samples);
        s.sort_by_key(|s| s.t);
    }
}

impl MemStorage {
    /// Adds native histograms directly (test setup); a series may also hold floats.
    pub fn add_histograms(&self, labels: Labels, samples: &[HistogramSample]) {
        let mut inner = self.inner.lock().unwrap();
        let s = inner.histograms.entry(labels).or_default();
        s.extend_from_slice(samples);
        s.sort_by_key(|s| s.t);
    }
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(MemQuerier {
            store: self.clone(),
            mint,
            maxt,
        }))
    }
}

struct MemQuerier {
    store: MemStorage,
    mint: i64,
    maxt: i64,
}

impl MemQuerier {
    fn matching(&self, matchers: &[Matcher]) -> Vec<Series> {
        let inner = self.store.inner.lock().unwrap();
        inner
            .by_labels
            .iter()
            .filter(|(l, _)| matchers.is_empty() || matches_all(l, matchers))
            .filter_map(|(l, &i)| {
                let samples: Vec<Sample> = inner.series[i]
                    .1
                    .iter()
                    .filter(|s| s.t >= self.mint && s.t <= self.maxt)
                    .copied()
                    .collect();
                (!samples.is_empty()).then(|| Series {
                    labels: l.clone(),
                    samples,
                })
            })
            .collect()
    }
}

impl Querier for MemQuerier {
    fn select_histograms(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.store.inner.lock().unwrap();
        Ok(inner
            .histograms
            .iter()
            .filter(|(l, _)| matches_all(l, matchers))
            .filter_map(|(l, hs)| {
                let samples: Vec<HistogramSample> = hs
                    .iter()
                    .filter(|s| s.t >= self.mint && s.t <= self.maxt)
                    .cloned()
                    .collect();
                (!samples.is_empty()).then(|| HistogramSeries {
                    labels: l.clone(),
                    samples,
                })
            })
            .collect())
    }

    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError> {
        if matchers.is_empty() {
            return Ok(Box::new(Vec::new().into_iter()));
        }
        Ok(Box::new(self.matching(matchers).into_iter().map(Ok)))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = self
            .matching(matchers)
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut values: Vec<String> = self
            .matching(matchers)
            .iter()
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

impl Appendable for MemStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender {
            store: self.clone(),
            pending_series: Vec::new(),
            pending: Vec::new(),
            pending_histograms: Vec::new(),
        })
    }
}

struct MemAppender {
    store: MemStorage,
    /// Series first seen in this transaction; their refs start after the stored ones.
    pending_series: Vec<Labels>,
    pending: Vec<(SeriesRef, Sample)>,
    pending_histograms: Vec<(SeriesRef, HistogramSample)>,
}

impl MemAppender {
    fn last_t(&self, r: SeriesRef) -> Option<i64> {
        let pending = self.pending.iter().rev().find(|(pr, _)| *pr == r);
        if let Some((_, s)) = pending {
            return Some(s.t);
        }
        let inner = self.store.inner.lock().unwrap();
        inner
            .series
            .get(r as usize)
            .and_then(|(_, s)| s.last().map(|s| s.t))
    }
}

impl Appender for MemAppender {
    fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, AppendError> {
        if let Some(bad) = labels.iter().find(|l| !is_valid_label_name(&l.name)) {
            return Err(AppendError::InvalidLabels(format!(
                "invalid label name {:?}",
                bad.name
            )));
        }
        let inner = self.store.inner.lock().unwrap();
        if let Some(&i) = inner.by_labels.get(labels) {
            return Ok(i as SeriesRef);
        }
        let base = inner.series.len();
        drop(inner);
        if let Some(i) = self.pending_series.iter().position(|l| l == labels) {
            return Ok((base + i) as SeriesRef);
        }
        self.pending_series.push(labels.clone());
        Ok((base + self.pending_series.len() - 1) as SeriesRef)
    }

    fn append(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        if let Some(last) = self.last_t(series) {
            if t < last {
                return Err(AppendError::OutOfOrder);
            }
        }
        self.pending.push((series, Sample::new(t, v)));
        Ok(())
    }

    fn append_histogram(
        &mut self,
        series: SeriesRef,
        t: i64,
        h: std::sync::Arc<crate::FloatHistogram>,
    ) -> Result<(), AppendError> {
        self.pending_histograms
            .push((series, HistogramSample { t, h }));
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let mut inner = self.store.inner.lock().unwrap();
        for labels in self.pending_series {
            let i = inner.series.len();
            inner.series.push((labels.clone(), Vec::new()));
            inner.by_labels.insert(labels, i);
        }
        let accepted_histograms = self.pending_histograms.len();
        let accepted = self.pending.len() + accepted_histograms;
        for (r, s) in self.pending {
            inner.series[r as usize].1.push(s);
        }
        for (r, h) in self.pending_histograms {
            let labels = inner.series[r as usize].0.clone();
            let hs = inner.histograms.entry(labels).or_default();
            let i = hs.partition_point(|x| x.t < h.t);
            if hs.get(i).is_none_or(|x| x.t != h.t) {
                hs.insert(i, h);
            }
        }
        Ok(CommitSummary {
            accepted,
            accepted_histograms,
            rejected: Vec::new(),
        })
    }

    fn rollback(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_commit_select() {
        let s = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let mut app = s.appender();
        app.append_labels(&l, 1, 1.0).unwrap();
        app.append_labels(&l, 2, 2.0).unwrap();
        assert_eq!(app.append_labels(&l, 1, 3.0), Err(AppendError::OutOfOrder));
        app.commit().unwrap();
        let q = s.querier(0, 10).unwrap();
        let got: Vec<Series> = q
            .select(&[Matcher::equal("job", "a")])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].samples,
            vec![Sample::new(1, 1.0), Sample::new(2, 2.0)]
        );
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a"]);
    }

    #[test]
    fn rollback_drops() {
        let s = MemStorage::new();
        let mut app = s.appender();
        app.append_labels(&Labels::from_pairs([("a", "1")]), 1, 1.0)
            .unwrap();
        app.rollback();
        assert!(s
            .querier(0, 10)
            .unwrap()
            .label_names(&[])
            .unwrap()
            .is_empty());
    }
}
