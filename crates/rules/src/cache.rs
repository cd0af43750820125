//! Selections shared between the rules of one group evaluation.
//!
//! Rule sets select the same series again and again at one timestamp: an error ratio over seven
//! windows, a rate per job and per handler, each reading every `http_requests_total` series.
//! Within one evaluation a group reads through a [`SelectCache`]: the first selection of a
//! matcher set loads (and decodes) the series once, over the widest range the group asked of that
//! matcher set in its previous evaluation; later selections of the same matchers within that range
//! are sliced from memory.
//!
//! Writes invalidate: after each rule writes, entries that could contain the written series (the
//! same metric name, or no name matcher at all) are dropped, so a rule always sees what the rules
//! before it wrote. The cache lives for one evaluation; all caches of the process together hold
//! at most [`MAX_CACHED_SAMPLES`] (groups evaluate concurrently); past that, selections go
//! straight to the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use medic_model::{MatchType, Matcher, Querier, Queryable, Series, SeriesSet, StorageError};

/// Most samples all caches of the process hold together (16 bytes each: 128 MiB).
pub const MAX_CACHED_SAMPLES: usize = 8 << 20;

/// Samples held by every live cache of the process.
static PROCESS_SAMPLES: AtomicUsize = AtomicUsize::new(0);

/// Takes `n` samples from the process-wide budget if they fit under `limit`.
fn reserve(n: usize, limit: usize) -> bool {
    PROCESS_SAMPLES
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            (used + n <= limit).then_some(used + n)
        })
        .is_ok()
}

fn release(n: usize) {
    PROCESS_SAMPLES.fetch_sub(n, Ordering::SeqCst);
}

struct Entry {
    mint: i64,
    maxt: i64,
    series: Arc<Vec<Series>>,
    /// The value of an `__name__="…"` matcher, if the matcher set has one.
    name: Option<String>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    samples: usize,
    /// Widest span (ms) asked of each matcher set during this evaluation; -1 for matcher sets
    /// whose series did not fit the budget, which the next evaluation loads narrowly.
    spans: HashMap<String, i64>,
}

/// See the module docs.
pub struct SelectCache {
    inner: Arc<dyn Queryable>,
    /// Spans learned from the previous evaluation.
    learned: HashMap<String, i64>,
    state: Mutex<State>,
    max_samples: usize,
}

impl SelectCache {
    /// A cache over `inner`, widening first loads to the spans in `learned`.
    pub fn new(inner: Arc<dyn Queryable>, learned: HashMap<String, i64>) -> Arc<SelectCache> {
        Self::with_limit(inner, learned, MAX_CACHED_SAMPLES)
    }

    /// As [`SelectCache::new`] with another limit on the process-wide sample count.
    pub fn with_limit(
        inner: Arc<dyn Queryable>,
        learned: HashMap<String, i64>,
        max_samples: usize,
    ) -> Arc<SelectCache> {
        Arc::new(SelectCache {
            inner,
            learned,
            state: Mutex::new(State::default()),
            max_samples,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops entries that could hold series named `name`.
    pub fn invalidate(&self, name: &str) {
        let mut st = self.state();
        let mut freed = 0;
        st.entries.retain(|_, e| {
            let keep = e.name.as_deref().is_some_and(|n| n != name);
            if !keep {
                freed += e.series.iter().map(|s| s.samples.len()).sum::<usize>();
            }
            keep
        });
        st.samples -= freed;
        release(freed);
    }

    /// The spans asked during this evaluation, to learn from in the next.
    pub fn spans(&self) -> HashMap<String, i64> {
        std::mem::take(&mut self.state().spans)
    }

    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let key = matchers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        {
            let mut st = self.state();
            let span = st.spans.entry(key.clone()).or_insert(0);
            if *span >= 0 {
                *span = (*span).max(maxt - mint);
            }
            if let Some(e) = st.entries.get(&key) {
                if e.mint <= mint && maxt <= e.maxt {
                    return Ok(slice(&e.series, mint, maxt));
                }
            }
        }
        // Widen only what was cached last time: a wide load that cannot be kept is waste.
        let wide_min = match self.learned.get(&key) {
            Some(&span) if span > 0 => mint.min(maxt - span),
            _ => mint,
        };
        let q = self.inner.querier(wide_min, maxt)?;
        let series: Vec<Series> = q.select(matchers)?.collect::<Result<_, _>>()?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        let out = slice(&series, mint, maxt);
        let mut st = self.state();
        if reserve(n, self.max_samples) {
            let name = matchers
                .iter()
                .find(|m| m.name == "__name__" && m.kind == MatchType::Equal)
                .map(|m| m.value.clone());
            if let Some(old) = st.entries.insert(
                key,
                Entry {
                    mint: wide_min,
                    maxt,
                    series: Arc::new(series),
                    name,
                },
            ) {
                let freed = old.series.iter().map(|s| s.samples.len()).sum::<usize>();
                st.samples -= freed;
                release(freed);
            }
            st.samples += n;
        } else {
            st.spans.insert(key, -1);
        }
        Ok(out)
    }
}

impl Drop for SelectCache {
    fn drop(&mut self) {
        release(self.state().samples);
    }
}

/// The series' samples within `[mint, maxt]`; series left without samples are dropped, as the
/// store drops them.
fn slice(series: &[Series], mint: i64, maxt: i64) -> Vec<Series> {
    series
        .iter()
        .filter_map(|s| {
            let lo = s.samples.partition_point(|x| x.t < mint);
            let hi = s.samples.partition_point(|x| x.t <= maxt);
            (lo < hi).then(|| Series {
                labels: s.labels.clone(),
                samples: s.samples[lo..hi].to_vec(),
            })
        })
        .collect()
}

/// A [`Queryable`] reading through a [`SelectCache`].
pub struct Cached(pub Arc<SelectCache>);

impl Queryable for Cached {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(CachedQuerier {
            cache: self.0.clone(),
            mint,
            maxt,
        }))
    }
}

struct CachedQuerier {
    cache: Arc<SelectCache>,
    mint: i64,
    maxt: i64,
}

impl Querier for CachedQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Box<dyn SeriesSet>, StorageError> {
        let series = self.cache.select(matchers, self.mint, self.maxt)?;
        Ok(Box::new(series.into_iter().map(Ok)))
    }

    /// Histograms are not cached: read from the store behind.
    fn select_histograms(
        &self,
        matchers: &[Matcher],
    ) -> Result<Vec<medic_model::HistogramSeries>, StorageError> {
        self.cache
            .inner
            .querier(self.mint, self.maxt)?
            .select_histograms(matchers)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.cache
            .inner
            .querier(self.mint, self.maxt)?
            .label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.cache
            .inner
            .querier(self.mint, self.maxt)?
            .label_values(name, matchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::{Labels, MemStorage, Sample};

    fn store() -> Arc<MemStorage> {
        let mem = Arc::new(MemStorage::new());
        for (job, n) in [("a", 10), ("b", 3)] {
            let samples: Vec<Sample> = (0..n).map(|i| Sample::new(i * 1000, i as f64)).collect();
            mem.add(
                Labels::from_pairs([("__name__", "x"), ("job", job)]),
                &samples,
            );
        }
        mem
    }

    fn direct(q: &dyn Queryable, m: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        q.querier(mint, maxt)
            .unwrap()
            .select(m)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn cached_selections_equal_direct_ones() {
        let mem = store();
        let m = [Matcher::equal("__name__", "x")];
        let mut learned = HashMap::new();
        learned.insert("__name__=\"x\"".to_string(), 9000);
        let cache = SelectCache::new(mem.clone(), learned);
        let cached = Cached(cache.clone());
        // The first load is widened to the learned span; narrower ranges are sliced from it,
        // including ones where a series has no samples left.
        for (mint, maxt) in [
            (7000, 9000),
            (0, 9000),
            (3000, 9000),
            (5000, 6000),
            (0, 9000),
        ] {
            assert_eq!(
                direct(&cached, &m, mint, maxt),
                direct(&*mem, &m, mint, maxt),
                "[{mint}, {maxt}]"
            );
        }
        assert_eq!(cache.state().entries.len(), 1);
        assert_eq!(cache.spans().get("__name__=\"x\""), Some(&9000));
    }

    #[test]
    fn writes_invalidate_what_they_could_change() {
        let mem = store();
        let cache = SelectCache::new(mem.clone(), HashMap::new());
        let cached = Cached(cache.clone());
        let x = [Matcher::equal("job", "a"), Matcher::equal("__name__", "x")];
        let any = [Matcher::equal("job", "a")];
        direct(&cached, &x, 0, 9000);
        direct(&cached, &any, 0, 9000);
        cache.invalidate("y");
        assert_eq!(
            cache.state().entries.len(),
            1,
            "the name-less entry could hold y"
        );
        cache.invalidate("x");
        assert!(cache.state().entries.is_empty());
        assert_eq!(cache.state().samples, 0);
    }

    #[test]
    fn the_sample_limit_is_kept() {
        let mem = store();
        let cache = SelectCache::with_limit(mem.clone(), HashMap::new(), 5);
        let cached = Cached(cache.clone());
        let got = direct(&cached, &[Matcher::equal("__name__", "x")], 0, 9000);
        assert_eq!(got.len(), 2);
        assert!(cache.state().entries.is_empty());
        // Next time it is not widened, since it could not be kept.
        assert_eq!(cache.spans().get("__name__=\"x\""), Some(&-1));
    }
}
