//! The head: the newest samples, in memory, in XOR-compressed chunks per series, with an
//! inverted index for matchers. Writes arrive through [`HeadAppender`]; every commit goes to the
//! WAL before it changes the head. Old data leaves the head when a block is cut
//! ([`Head::truncate`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use medic_model::{
    is_valid_label_name, is_valid_metric_name, AppendError, Appender, CommitSummary,
    FloatHistogram, HistogramSample, Label, Labels, Sample, SeriesRef, StorageError, METRIC_NAME,
};

use crate::chunkenc::{XorEncoder, XorIter};
use crate::metrics::Metrics;
use crate::postings::{matches_all, Postings};
use crate::wal::{self, RefSample, Wal};
use crate::Options;

mod appender;
mod histograms;
mod series;

pub use appender::HeadAppender;
use series::Index;
pub use series::MemSeries;

/// Marks a series reference as "created by this transaction, not yet committed".
const PENDING: u64 = 1 << 63;

/// What becomes of one sample, given the newest in-order sample of its series.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    /// Newer than anything stored: appended to the open chunk.
    InOrder,
    /// Older, within the out-of-order window: buffered.
    OutOfOrder,
    /// The same timestamp and value as the newest sample: dropped silently, as Prometheus does.
    Duplicate,
    Rejected(AppendError),
}

/// The in-memory part of the store.
pub struct Head {
    index: RwLock<Index>,
    /// Samples older than this are in blocks, not here (truncation point).
    min_time: AtomicI64,
    /// Newest sample timestamp (i64::MIN when empty).
    max_time: AtomicI64,
    next_ref: AtomicU64,
    /// Serialises commits so that the WAL order is the order samples were applied in.
    commit_lock: Mutex<Vec<u8>>,
    wal: RwLock<Option<Arc<Wal>>>,
    /// Told of every commit's accepted samples before they are logged and applied.
    tap: RwLock<Option<Arc<dyn medic_model::CommitTap>>>,
    /// Whether any native histogram was ever stored here: selections skip looking for them
    /// until one was.
    has_histograms: std::sync::atomic::AtomicBool,
    opts: Options,
    metrics: Metrics,
}

impl Head {
    /// An empty head.
    pub fn new(opts: Options, metrics: Metrics) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            min_time: AtomicI64::new(i64::MIN),
            max_time: AtomicI64::new(i64::MIN),
            next_ref: AtomicU64::new(1),
            commit_lock: Mutex::new(Vec::new()),
            wal: RwLock::new(None),
            tap: RwLock::new(None),
            has_histograms: std::sync::atomic::AtomicBool::new(false),
            opts,
            metrics,
        }
    }

    /// Hands every later commit's accepted samples to `tap` before the commit is logged; a
    /// tap that fails fails the commit.
    pub fn set_tap(&self, tap: Arc<dyn medic_model::CommitTap>) {
        *self.tap.write().unwrap_or_else(|e| e.into_inner()) = Some(tap);
    }

    /// Starts logging commits to `wal`.
    pub fn set_wal(&self, wal: Arc<Wal>) {
        *self.wal.write().unwrap_or_else(|e| e.into_inner()) = Some(wal);
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The truncation point: the head answers for samples at or after it.
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Acquire)
    }

    /// The newest sample's timestamp, or `i64::MIN` when the head is empty.
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Acquire)
    }

    /// Raises the truncation point (used at start-up, when blocks already cover older data).
    pub fn set_min_time(&self, t: i64) {
        self.min_time.fetch_max(t, Ordering::AcqRel);
        self.metrics.head_min_time.set(self.min_time());
    }

    /// The oldest sample timestamp actually held, if any.
    pub fn oldest_sample(&self) -> Option<i64> {
        let min = self.min_time();
        let idx = self.index();
        idx.series
            .values()
            .filter_map(|s| s.lock().oldest())
            .min()
            .map(|t| t.max(min))
    }

    /// Oldest timestamp a new sample may have.
    pub fn min_valid_time(&self) -> i64 {
        let max = self.max_time();
        let by_range = if max == i64::MIN {
            i64::MIN
        } else {
            max.saturating_sub(self.opts.block_range_ms / 2)
        };
        self.min_time().max(by_range)
    }

    /// Newest timestamp a new sample may have: the wall clock plus `max_future_ms`.
    pub fn max_valid_time(&self) -> i64 {
        if self.opts.max_future_ms <= 0 {
            return i64::MAX;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        now.saturating_add(self.opts.max_future_ms)
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.index().series.len()
    }

    /// A new transaction.
    pub fn appender(&self) -> HeadAppender<'_> {
        HeadAppender::new(self)
    }

    fn validate_labels(&self, labels: &Labels) -> Result<(), AppendError> {
        if labels.is_empty() {
            return Err(AppendError::InvalidLabels("empty label set".into()));
        }
        let o = &self.opts;
        if o.max_labels_per_series > 0 && labels.len() > o.max_labels_per_series {
            return Err(AppendError::TooManyLabels {
                count: labels.len(),
                limit: o.max_labels_per_series,
            });
        }
        for l in labels.iter() {
            if !is_valid_label_name(&l.name) {
                return Err(AppendError::InvalidLabels(format!(
                    "invalid label name {:?}",
                    l.name
                )));
            }
            if &*l.name == METRIC_NAME && !is_valid_metric_name(&l.value) {
                return Err(AppendError::InvalidLabels(format!(
                    "invalid metric name {:?}",
                    l.value
                )));
            }
            if o.max_label_name_bytes > 0 && l.name.len() > o.max_label_name_bytes {
                return Err(AppendError::LabelTooLong {
                    name: l.name.to_string(),
                    len: l.name.len(),
                    limit: o.max_label_name_bytes,
                });
            }
            if o.max_label_value_bytes > 0 && l.value.len() > o.max_label_value_bytes {
                return Err(AppendError::LabelTooLong {
                    name: l.name.to_string(),
                    len: l.value.len(),
                    limit: o.max_label_value_bytes,
                });
            }
        }
        Ok(())
    }

    /// Decides what to do with sample `(t, v)` for a series whose newest in-order sample is
    /// `(last_t, last_v)`.
    fn classify(&self, t: i64, v: f64, last_t: i64, last_v: f64, min_valid: i64) -> Verdict {
        if t < min_valid {
            return Verdict::Rejected(AppendError::TooOld);
        }
        if last_t == i64::MIN || t > last_t {
            return Verdict::InOrder;
        }
        if t == last_t {
            return if v.to_bits() == last_v.to_bits() {
                Verdict::Duplicate
            } else {
                Verdict::Rejected(AppendError::DuplicateTimestamp)
            };
        }
        let window = self.opts.out_of_order_window_ms;
        if window > 0 && t >= last_t - window {
            return Verdict::OutOfOrder;
        }
        Verdict::Rejected(AppendError::OutOfOrder)
    }

    fn get_series(&self, r: SeriesRef) -> Option<Arc<MemSeries>> {
        self.index().series.get(&r).cloned()
    }

    fn note_time(&self, t: i64) {
        self.max_time.fetch_max(t, Ordering::AcqRel);
    }

    /// Applies a sample during WAL replay, with the same order rules as live appends.
    fn replay_sample(&self, s: &MemSeries, t: i64, v: f64) -> bool {
        if t < self.min_time() {
            return false;
        }
        let mut d = s.lock();
        match self.classify(t, v, d.last_t, d.last_v, i64::MIN) {
            Verdict::InOrder => {
                d.append_in_order(t, v, self.opts.head_chunk_samples);
            }
            Verdict::OutOfOrder => d.insert_ooo(Sample::new(t, v)),
            Verdict::Duplicate | Verdict::Rejected(_) => return false,
        }
        drop(d);
        self.note_time(t);
        true
    }

    /// Applies a histogram during WAL replay (any order: the checkpoint and the segments
    /// overlap).
    fn replay_histogram(&self, s: &MemSeries, t: i64, h: Arc<FloatHistogram>) {
        let mut d = s.lock();
        if let Ok(true) = d.histograms.check(t, &h, self.min_time(), i64::MAX) {
            d.histograms.insert(HistogramSample { t, h });
            self.has_histograms.store(true, Ordering::Release);
            drop(d);
            self.note_time(t);
        }
    }

    /// Replays decoded WAL or checkpoint records. Returns how many records were applied.
    pub fn replay(&self, payloads: &[Vec<u8>]) -> Result<usize, crate::Error> {
        let mut applied = 0;
        let mut cache: HashMap<SeriesRef, Arc<MemSeries>> = HashMap::new();
        for p in payloads {
            match wal::decode_record(p)? {
                wal::Record::Series(list) => {
                    let mut idx = self.index_mut();
                    for (r, labels) in list {
                        if idx.series.contains_key(&r) {
                            continue;
                        }
                        let hash = labels.stable_hash();
                        if let Some(existing) = idx.get(hash, &labels).cloned() {
                            // The same series under an older ref (checkpoint and segment
                            // overlap): alias the new ref to it.
                            cache.insert(r, existing);
                            continue;
                        }
                        let s = idx.insert(r, &labels);
                        cache.insert(r, s);
                        self.next_ref.fetch_max(r + 1, Ordering::AcqRel);
                        self.metrics.head_series_created.inc();
                    }
                }
                wal::Record::Samples(list) => {
                    for rs in list {
                        let s = match cache.get(&rs.r) {
                            Some(s) => s.clone(),
                            None => match self.get_series(rs.r) {
                                Some(s) => s,
                                None => continue,
                            },
                        };
                        self.replay_sample(&s, rs.t, rs.v);
                    }
                }
                wal::Record::Histograms(list) => {
                    for (r, t, h) in list {
                        let Some(s) = cache.get(&r).cloned().or_else(|| self.get_series(r)) else {
                            continue;
                        };
                        self.replay_histogram(&s, t, Arc::new(h));
                    }
                }
                wal::Record::SeriesChunk { r, count, bytes } => {
                    let Some(s) = cache.get(&r).cloned().or_else(|| self.get_series(r)) else {
                        continue;
                    };
                    let mut it = XorIter::new(&bytes, count);
                    for smp in it.by_ref() {
                        self.replay_sample(&s, smp.t, smp.v);
                    }
                    if it.corrupted() {
                        return Err(crate::Error::Decode(format!(
                            "checkpoint chunk of series {r} ends early"
                        )));
                    }
                }
            }
            applied += 1;
        }
        self.refresh_gauges();
        Ok(applied)
    }

    fn refresh_gauges(&self) {
        let idx = self.index();
        self.metrics.head_series.set(idx.series.len() as i64);
        let chunks: usize = idx.series.values().map(|s| s.lock().chunk_count()).sum();
        self.metrics.head_chunks.set(chunks as i64);
        self.metrics.head_min_time.set(self.min_time());
        self.metrics.head_max_time.set(self.max_time());
    }

    /// Whether any native histogram was ever stored in the head.
    pub fn has_histograms(&self) -> bool {
        self.has_histograms.load(Ordering::Acquire)
    }

    /// The native histograms in `[mint, maxt]` of `series` (series without any left out); no
    /// series is locked while the head has never stored a histogram.
    pub fn histograms_of(
        &self,
        series: &[Arc<MemSeries>],
        mint: i64,
        maxt: i64,
    ) -> Vec<crate::block_histograms::HistogramSeries> {
        if !self.has_histograms() {
            return Vec::new();
        }
        series
            .iter()
            .filter_map(|s| {
                let hs = s.histograms(mint, maxt);
                (!hs.is_empty()).then(|| (s.labels().clone(), hs))
            })
            .collect()
    }

    /// Series matching `matchers` (all series when empty), sorted by labels.
    pub fn select(&self, matchers: &[medic_model::Matcher]) -> Vec<Arc<MemSeries>> {
        let idx = self.index();
        let mut out: Vec<Arc<MemSeries>> = idx
            .postings
            .candidates(matchers)
            .into_iter()
            .filter_map(|r| idx.series.get(&r))
            .filter(|s| matches_all(&s.labels, matchers))
            .cloned()
            .collect();
        drop(idx);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label names and, for `name`, values, of all series (used by the label APIs when no
    /// matcher narrows them).
    pub fn label_names(&self) -> Vec<String> {
        self.index()
            .postings
            .names()
            .map(|n| n.to_string())
            .collect()
    }

    /// Values of `name` across all series.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.index()
            .postings
            .values(name)
            .map(|(v, _)| v.to_string())
            .collect()
    }

    /// Drops everything older than `mint` (now persisted in a block), and series left empty.
    /// Holds the commit lock, so no commit interleaves.
    pub fn truncate(&self, mint: i64) {
        let _g = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.set_min_time(mint);
        let all: Vec<Arc<MemSeries>> = self.index().series.values().cloned().collect();
        let mut removed = Vec::new();
        for s in &all {
            let mut d = s.lock();
            d.truncate(mint);
            if d.is_empty() && d.last_t < mint {
                s.removed.store(true, Ordering::Release);
                removed.push((s.r, s.labels.clone()));
            }
        }
        if !removed.is_empty() {
            removed.sort_by_key(|(r, _)| *r);
            self.index_mut().remove(&removed);
            self.metrics
                .head_series_removed
                .inc_by(removed.len() as u64);
        }
        self.metrics.head_truncations.inc();
        self.refresh_gauges();
    }

    /// Rotates the WAL and writes a checkpoint of everything in the head, so that replay starts
    /// from it. Appends continue while the checkpoint is written; samples they add may be both
    /// in the checkpoint and in the next segment, which replay tolerates.
    pub fn checkpoint(&self) -> Result<(), crate::Error> {
        let Some(wal) = self.wal.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return Ok(());
        };
        let (last_seq, mut all) = {
            let _g = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
            let seq = wal.rotate()?;
            let all: Vec<Arc<MemSeries>> = self.index().series.values().cloned().collect();
            (seq, all)
        };
        all.sort_by_key(|s| s.r);
        let mint = self.min_time();
        // Streamed in pieces of about 1 MiB: a checkpoint must not hold a copy of the head.
        const FLUSH_AT: usize = 1 << 20;
        let mut out = wal.begin_checkpoint(last_seq)?;
        let mut buf = Vec::with_capacity(FLUSH_AT * 2);
        for batch in all.chunks(1000) {
            let refs: Vec<(SeriesRef, &Labels)> = batch.iter().map(|s| (s.r, &s.labels)).collect();
            wal::encode_series(&mut buf, &refs);
            if buf.len() >= FLUSH_AT {
                out.write(&buf)?;
                buf.clear();
            }
        }
        let mut samples = Vec::new();
        for s in &all {
            samples.clear();
            let d = s.lock();
            d.collect(mint, i64::MAX, &mut samples);
            // The newest sample may have been truncated from the chunks but still decides
            // order checks after a restart.
            if samples.is_empty() && d.last_t != i64::MIN && d.last_t >= mint {
                samples.push(Sample::new(d.last_t, d.last_v));
            }
            drop(d);
            if samples.is_empty() {
                continue;
            }
            let mut e = XorEncoder::with_capacity(samples.len() * 2);
            for x in &samples {
                e.append(x.t, x.v);
            }
            wal::encode_series_chunk(&mut buf, s.r, e.count(), e.bytes());
            if buf.len() >= FLUSH_AT {
                out.write(&buf)?;
                buf.clear();
            }
        }
        for s in &all {
            let hs = s.histograms(mint, i64::MAX);
            for part in hs.chunks(1000) {
                let refs: Vec<_> = part.iter().map(|x| (s.r, x.t, &*x.h)).collect();
                wal::encode_histograms(&mut buf, &refs);
                if buf.len() >= FLUSH_AT {
                    out.write(&buf)?;
                    buf.clear();
                }
            }
        }
        out.write(&buf)?;
        out.finish()
    }

    /// fsyncs the WAL if it has unsynced writes.
    pub fn sync_wal(&self) -> Result<(), crate::Error> {
        match self.wal.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    /// WAL bytes since the last checkpoint.
    pub fn wal_bytes_since_checkpoint(&self) -> u64 {
        self.wal
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |w| w.bytes_since_checkpoint())
    }

    /// Bytes of the WAL on disk.
    pub fn wal_disk_bytes(&self) -> u64 {
        self.wal
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |w| w.disk_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::Matcher;

    fn head(ooo: i64) -> Head {
        let opts = Options {
            out_of_order_window_ms: ooo,
            head_chunk_samples: 4,
            ..Options::default()
        };
        Head::new(opts, Metrics::default())
    }

    fn lbl(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", job)])
    }

    #[test]
    fn append_commit_select_across_chunks() {
        let h = head(0);
        let mut app = Box::new(h.appender());
        for t in 0..10 {
            app.append_labels(&lbl("a"), t * 1000, t as f64).unwrap();
        }
        let sum = app.commit().unwrap();
        assert_eq!(sum.accepted, 10);
        let s = h.select(&[Matcher::equal("job", "a")]);
        assert_eq!(s.len(), 1);
        let got = s[0].samples(2000, 7000);
        assert_eq!(
            got.iter().map(|s| s.t).collect::<Vec<_>>(),
            vec![2000, 3000, 4000, 5000, 6000, 7000]
        );
    }

    #[test]
    fn order_duplicates_and_age() {
        let h = head(0);
        let mut app = Box::new(h.appender());
        app.append_labels(&lbl("a"), 10_000_000, 1.0).unwrap();
        app.commit().unwrap();
        let mut app = Box::new(h.appender());
        let r = app.series_ref(&lbl("a")).unwrap();
        assert_eq!(app.append(r, 9_999_000, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            app.append(r, 10_000_000, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            app.append(r, 10_000_000, 1.0),
            Ok(()),
            "same value is a silent duplicate"
        );
        // Older than max - range/2 (1h): too old even for a new series.
        let r2 = app.series_ref(&lbl("b")).unwrap();
        assert_eq!(
            app.append(r2, 10_000_000 - 3_600_001, 1.0),
            Err(AppendError::TooOld)
        );
        app.append(r2, 10_000_000 - 3_600_000, 1.0).unwrap();
        let sum = app.commit().unwrap();
        assert_eq!(sum.accepted, 1);
    }

    #[test]
    fn interleaved_series_keep_their_own_order() {
        let h = head(0);
        let mut app = Box::new(h.appender());
        let (a, b) = (lbl("a"), lbl("b"));
        app.append_labels(&a, 1000, 1.0).unwrap();
        app.append_labels(&b, 1000, 1.0).unwrap();
        // a's newest buffered sample is 1000 although b's run came in between.
        assert_eq!(
            app.append_labels(&a, 500, 1.0),
            Err(AppendError::OutOfOrder)
        );
        assert_eq!(
            app.append_labels(&a, 1000, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        app.append_labels(&a, 2000, 2.0).unwrap();
        app.append_labels(&b, 1500, 2.0).unwrap();
        app.append_labels(&a, 3000, 3.0).unwrap();
        let sum = app.commit().unwrap();
        assert_eq!(sum.accepted, 5);
        let got: Vec<Vec<i64>> = h
            .select(&[])
            .iter()
            .map(|s| s.samples(0, i64::MAX).iter().map(|x| x.t).collect())
            .collect();
        assert_eq!(got, vec![vec![1000, 2000, 3000], vec![1000, 1500]]);
    }

    #[test]
    fn series_found_by_borrowed_pairs() {
        let h = head(0);
        let mut app = Box::new(h.appender());
        app.append_labels(&lbl("a"), 1, 1.0).unwrap();
        let pairs = [("__name__", "up"), ("job", "a")];
        assert_eq!(
            app.existing_series_ref(Labels::hash_pairs(&pairs), &pairs),
            None,
            "not committed yet"
        );
        app.commit().unwrap();
        let mut app = Box::new(h.appender());
        let r = app
            .existing_series_ref(Labels::hash_pairs(&pairs), &pairs)
            .unwrap();
        app.append(r, 2, 2.0).unwrap();
        app.commit().unwrap();
        assert_eq!(h.select(&[])[0].samples(0, 10).len(), 2);
    }

    #[test]
    fn out_of_order_window() {
        let h = head(60_000);
        let mut app = Box::new(h.appender());
        let l = lbl("a");
        app.append_labels(&l, 100_000, 1.0).unwrap();
        app.append_labels(&l, 50_000, 2.0).unwrap();
        assert_eq!(
            app.append_labels(&l, 30_000, 3.0),
            Err(AppendError::OutOfOrder)
        );
        app.append_labels(&l, 70_000, 4.0).unwrap();
        app.commit().unwrap();
        let got: Vec<(i64, f64)> = h.select(&[])[0]
            .samples(0, i64::MAX)
            .iter()
            .map(|s| (s.t, s.v))
            .collect();
        assert_eq!(got, vec![(50_000, 2.0), (70_000, 4.0), (100_000, 1.0)]);
    }

    #[test]
    fn concurrent_commit_conflict_is_reported() {
        let h = head(0);
        let l = lbl("a");
        let mut a = Box::new(h.appender());
        let mut b = Box::new(h.appender());
        a.append_labels(&l, 2000, 1.0).unwrap();
        b.append_labels(&l, 1000, 1.0).unwrap();
        a.commit().unwrap();
        let sum = b.commit().unwrap();
        assert_eq!(sum.accepted, 0);
        assert_eq!(sum.rejected[0].1, AppendError::OutOfOrder);
    }

    #[test]
    fn series_limit_rejects_new_series_only() {
        let h = Head::new(
            Options {
                max_series: 2,
                ..Options::default()
            },
            Metrics::default(),
        );
        let mut app = Box::new(h.appender());
        app.append_labels(&lbl("a"), 1, 1.0).unwrap();
        app.append_labels(&lbl("b"), 1, 1.0).unwrap();
        assert_eq!(
            app.append_labels(&lbl("c"), 1, 1.0),
            Err(AppendError::SeriesLimit { limit: 2 })
        );
        app.commit().unwrap();
        // Two transactions racing for the last place: the second loses at commit.
        let h = Head::new(
            Options {
                max_series: 1,
                ..Options::default()
            },
            Metrics::default(),
        );
        let mut x = Box::new(h.appender());
        let mut y = Box::new(h.appender());
        x.append_labels(&lbl("x"), 1, 1.0).unwrap();
        y.append_labels(&lbl("y"), 1, 1.0).unwrap();
        assert_eq!(x.commit().unwrap().accepted, 1);
        let sum = y.commit().unwrap();
        assert_eq!(sum.accepted, 0);
        assert_eq!(sum.rejected[0].1, AppendError::SeriesLimit { limit: 1 });
        // Existing series keep taking samples.
        let mut z = Box::new(h.appender());
        z.append_labels(&lbl("x"), 2, 2.0).unwrap();
        assert_eq!(z.commit().unwrap().accepted, 1);
        assert_eq!(h.num_series(), 1);
    }

    #[test]
    fn invalid_labels_are_rejected() {
        let h = head(0);
        let mut app = h.appender();
        let bad = Labels::from_pairs([("__name__", "a-b")]);
        assert!(matches!(
            app.series_ref(&bad),
            Err(AppendError::InvalidLabels(_))
        ));
        let bad = Labels::from_pairs([("1x", "a")]);
        assert!(matches!(
            app.series_ref(&bad),
            Err(AppendError::InvalidLabels(_))
        ));
        let long = Labels::from_pairs([("a", "x".repeat(5000))]);
        assert!(matches!(
            app.series_ref(&long),
            Err(AppendError::LabelTooLong { .. })
        ));
        let many = Labels::from_pairs((0..70).map(|i| (format!("l{i}"), "v")));
        assert!(matches!(
            app.series_ref(&many),
            Err(AppendError::TooManyLabels { .. })
        ));
        assert!(app.series_ref(&Labels::empty()).is_err());
    }

    #[test]
    fn truncate_drops_old_chunks_and_empty_series() {
        let h = head(0);
        let mut app = Box::new(h.appender());
        for t in 0..20 {
            app.append_labels(&lbl("a"), t * 1000, 1.0).unwrap();
        }
        app.append_labels(&lbl("old"), 1000, 1.0).unwrap();
        app.commit().unwrap();
        h.truncate(10_000);
        assert_eq!(h.num_series(), 1);
        let s = h.select(&[]);
        let got = s[0].samples(h.min_time(), i64::MAX);
        assert_eq!(got.first().unwrap().t, 10_000);
        assert_eq!(h.label_values("job"), vec!["a".to_string()]);
    }
}
