//! A transaction against the head: samples are checked as they are appended and again at
//! commit (other commits may have stored newer samples meanwhile), logged to the WAL, then
//! applied one lock per run of a series.

use super::*;

/// Consecutive buffered samples of one series. Remote write and most callers append a series'
/// samples together, so lookups and locks happen once per run, not once per sample.
struct Run {
    r: SeriesRef,
    /// `None` for a series this transaction creates.
    series: Option<Arc<MemSeries>>,
    /// Range of this run's samples in `HeadAppender::samples`.
    start: usize,
    /// Newest in-order sample so far (stored or buffered).
    last_t: i64,
    last_v: f64,
}

/// A transaction against the head.
pub struct HeadAppender<'a> {
    head: &'a Head,
    min_valid: i64,
    /// Newest timestamp accepted (the clock plus the future tolerance), fixed per transaction.
    max_valid: i64,
    /// Series this transaction creates, indexed by `ref & !PENDING`.
    new_series: Vec<Labels>,
    new_by_hash: HashMap<u64, Vec<usize>>,
    runs: Vec<Run>,
    samples: Vec<(i64, f64)>,
    /// Newest buffered sample of series whose run is closed, for a series that comes back.
    last: HashMap<SeriesRef, (i64, f64)>,
    /// The series most recently found by `series_ref`, so `append` need not look it up again.
    found: Option<Arc<MemSeries>>,
    /// Native histograms, checked and stored at commit.
    histograms: Vec<(SeriesRef, i64, Arc<FloatHistogram>)>,
}

impl<'a> HeadAppender<'a> {
    pub(super) fn new(head: &'a Head) -> HeadAppender<'a> {
        HeadAppender {
            head,
            min_valid: head.min_valid_time(),
            max_valid: head.max_valid_time(),
            new_series: Vec::new(),
            new_by_hash: HashMap::new(),
            runs: Vec::new(),
            samples: Vec::new(),
            last: HashMap::new(),
            found: None,
            histograms: Vec::new(),
        }
    }

    fn resolve(&mut self, r: SeriesRef) -> Option<Arc<MemSeries>> {
        if r & PENDING != 0 {
            return None;
        }
        match self.found.take() {
            Some(s) if s.r == r => Some(s),
            _ => self.head.get_series(r),
        }
    }

    fn found(&mut self, s: &Arc<MemSeries>) -> SeriesRef {
        self.found = Some(s.clone());
        s.r
    }
}

impl Appender for HeadAppender<'_> {
    fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, AppendError> {
        let hash = labels.stable_hash();
        if let Some(s) = self.head.index().get(hash, labels).cloned() {
            return Ok(self.found(&s));
        }
        self.head.validate_labels(labels).inspect_err(|e| {
            self.head.metrics.reject(e.reason());
        })?;
        let limit = self.head.opts.max_series;
        if limit > 0 && self.head.num_series() + self.new_series.len() >= limit {
            let e = AppendError::SeriesLimit { limit };
            self.head.metrics.reject(e.reason());
            return Err(e);
        }
        let pending = self.new_by_hash.entry(hash).or_default();
        if let Some(&i) = pending.iter().find(|&&i| self.new_series[i] == *labels) {
            return Ok(i as u64 | PENDING);
        }
        let i = self.new_series.len();
        self.new_series.push(labels.clone());
        pending.push(i);
        Ok(i as u64 | PENDING)
    }

    fn existing_series_ref(&mut self, hash: u64, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
        let s = self.head.index().get_pairs(hash, pairs).cloned()?;
        Some(self.found(&s))
    }

    fn append(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        if t > self.max_valid {
            let e = AppendError::TooFarInFuture;
            self.head.metrics.reject(e.reason());
            return Err(e);
        }
        let same_run = self.runs.last().is_some_and(|run| run.r == r);
        let mut new_run = None;
        let (last_t, last_v) = if same_run {
            let run = self.runs.last().expect("checked");
            (run.last_t, run.last_v)
        } else if let Some(&x) = self.last.get(&r) {
            new_run = Some(self.resolve(r));
            x
        } else {
            let series = self.resolve(r);
            let last = match &series {
                Some(s) => {
                    let d = s.lock();
                    (d.last_t, d.last_v)
                }
                None => (i64::MIN, 0.0),
            };
            new_run = Some(series);
            last
        };
        let in_order = match self.head.classify(t, v, last_t, last_v, self.min_valid) {
            Verdict::InOrder => true,
            Verdict::OutOfOrder => false,
            Verdict::Duplicate => return Ok(()),
            Verdict::Rejected(e) => {
                self.head.metrics.reject(e.reason());
                return Err(e);
            }
        };
        if let Some(series) = new_run {
            if let Some(prev) = self.runs.last() {
                self.last.insert(prev.r, (prev.last_t, prev.last_v));
            }
            self.runs.push(Run {
                r,
                series,
                start: self.samples.len(),
                last_t,
                last_v,
            });
        }
        if in_order {
            let run = self.runs.last_mut().expect("a run exists");
            run.last_t = t;
            run.last_v = v;
        }
        self.samples.push((t, v));
        Ok(())
    }

    fn append_histogram(
        &mut self,
        r: SeriesRef,
        t: i64,
        h: Arc<FloatHistogram>,
    ) -> Result<(), AppendError> {
        let e = if t > self.max_valid {
            AppendError::TooFarInFuture
        } else if t < self.min_valid {
            AppendError::TooOld
        } else {
            self.histograms.push((r, t, h));
            return Ok(());
        };
        self.head.metrics.reject(e.reason());
        Err(e)
    }

    /// Commits in four steps under the commit lock: create the new series, check every sample
    /// again against what other commits stored since `append`, log to the WAL, apply.
    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        let head = self.head;
        let mut buf = head.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        buf.clear();
        let (resolved, created) = self.create_series();
        let mut checked = self.recheck(&resolved);
        let histograms = self.check_histograms(&resolved, &mut checked.rejected);
        self.tap(&checked)?;
        // Log to the WAL before the head changes.
        if !created.is_empty() {
            let refs: Vec<(SeriesRef, &Labels)> =
                created.iter().map(|s| (s.r, &s.labels)).collect();
            wal::encode_series(&mut buf, &refs);
        }
        wal::encode_samples(&mut buf, &checked.to_log);
        let logged: Vec<_> = histograms.iter().map(|(s, t, h)| (s.r, *t, &**h)).collect();
        wal::encode_histograms(&mut buf, &logged);
        if let Some(w) = head.wal.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if let Err(e) = w.append(&buf) {
                // Series created above stay (empty) in the index; the samples are not applied
                // and the caller learns that nothing was stored.
                return Err(e.into());
            }
        }
        self.apply(&checked);
        apply_histograms(head, &histograms);
        let accepted = checked.to_log.len() + histograms.len();
        head.metrics.samples_appended.inc_by(accepted as u64);
        Ok(CommitSummary {
            accepted,
            accepted_histograms: histograms.len(),
            rejected: checked.rejected,
        })
    }

    fn rollback(self: Box<Self>) {}
}

/// The samples of a transaction as checked at commit.
struct Checked {
    /// Per sample: where it goes (`None`: nowhere).
    placement: Vec<Option<Placement>>,
    /// Runs with their series, as ranges of the transaction's samples.
    runs: Vec<(Arc<MemSeries>, usize, usize)>,
    to_log: Vec<RefSample>,
    rejected: Vec<(SeriesRef, AppendError)>,
}

/// Where an accepted sample goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    InOrder,
    OutOfOrder,
}

impl HeadAppender<'_> {
    /// Creates the transaction's new series (another transaction may have created some
    /// meanwhile). Per new series, the series, or `None` when the series limit was reached
    /// meanwhile; and the series created here.
    fn create_series(&self) -> (Vec<Option<Arc<MemSeries>>>, Vec<Arc<MemSeries>>) {
        let head = self.head;
        let mut resolved = Vec::with_capacity(self.new_series.len());
        let mut created = Vec::new();
        let limit = head.opts.max_series;
        if !self.new_series.is_empty() {
            let mut idx = head.index_mut();
            for labels in &self.new_series {
                let hash = labels.stable_hash();
                let s = match idx.get(hash, labels) {
                    Some(s) => Some(s.clone()),
                    None if limit > 0 && idx.series.len() >= limit => None,
                    None => {
                        let r = head.next_ref.fetch_add(1, Ordering::AcqRel);
                        let s = idx.insert(r, labels);
                        created.push(s.clone());
                        Some(s)
                    }
                };
                resolved.push(s);
            }
            head.metrics.head_series.set(idx.series.len() as i64);
        }
        head.metrics
            .head_series_created
            .inc_by(created.len() as u64);
        (resolved, created)
    }

    /// Checks every sample again against what other commits stored since `append`, one lock per
    /// run.
    fn recheck(&self, resolved: &[Option<Arc<MemSeries>>]) -> Checked {
        let head = self.head;
        let mut out = Checked {
            placement: vec![None; self.samples.len()],
            runs: Vec::with_capacity(self.runs.len()),
            to_log: Vec::with_capacity(self.samples.len()),
            rejected: Vec::new(),
        };
        let mut batch_last: HashMap<SeriesRef, (i64, f64)> = HashMap::new();
        let min_time = head.min_time();
        for (i, run) in self.runs.iter().enumerate() {
            let end = self.runs.get(i + 1).map_or(self.samples.len(), |n| n.start);
            let found =
                match &run.series {
                    Some(s) => Ok(s.clone()),
                    None => resolved[(run.r & !PENDING) as usize].clone().ok_or(
                        AppendError::SeriesLimit {
                            limit: head.opts.max_series,
                        },
                    ),
                };
            // A series garbage-collected since append() held data older than the head.
            let found = found.and_then(|s| {
                if s.removed.load(Ordering::Acquire) {
                    Err(AppendError::TooOld)
                } else {
                    Ok(s)
                }
            });
            let s = match found {
                Ok(s) => s,
                Err(e) => {
                    for _ in run.start..end {
                        head.metrics.reject(e.reason());
                        out.rejected.push((run.r, e.clone()));
                    }
                    continue;
                }
            };
            let (mut lt, mut lv) = match batch_last.get(&s.r) {
                Some(&x) => x,
                None => {
                    let d = s.lock();
                    (d.last_t, d.last_v)
                }
            };
            for (k, &(t, v)) in self.samples[run.start..end].iter().enumerate() {
                let place = match head.classify(t, v, lt, lv, min_time) {
                    Verdict::InOrder => {
                        (lt, lv) = (t, v);
                        Placement::InOrder
                    }
                    Verdict::OutOfOrder => Placement::OutOfOrder,
                    Verdict::Duplicate => continue,
                    Verdict::Rejected(e) => {
                        head.metrics.reject(e.reason());
                        out.rejected.push((s.r, e));
                        continue;
                    }
                };
                out.placement[run.start + k] = Some(place);
                out.to_log.push(RefSample { r: s.r, t, v });
            }
            batch_last.insert(s.r, (lt, lv));
            out.runs.push((s, run.start, end));
        }
        out
    }

    /// Checks the transaction's histograms against what the head holds and against each other
    /// (one histogram per series and timestamp; order within the out-of-order window).
    fn check_histograms(
        &self,
        resolved: &[Option<Arc<MemSeries>>],
        rejected: &mut Vec<(SeriesRef, AppendError)>,
    ) -> Vec<(Arc<MemSeries>, i64, Arc<FloatHistogram>)> {
        let head = self.head;
        let (min_time, window) = (head.min_time(), head.opts.out_of_order_window_ms);
        let mut accepted = Vec::new();
        let mut batch: HashMap<SeriesRef, Vec<(i64, Arc<FloatHistogram>)>> = HashMap::new();
        for (r, t, h) in &self.histograms {
            let series = if r & PENDING != 0 {
                resolved[(r & !PENDING) as usize]
                    .clone()
                    .ok_or(AppendError::SeriesLimit {
                        limit: head.opts.max_series,
                    })
            } else {
                head.get_series(*r).ok_or(AppendError::TooOld)
            };
            let verdict = series.and_then(|s| {
                if s.removed.load(Ordering::Acquire) {
                    return Err(AppendError::TooOld);
                }
                let pending = batch.entry(s.r).or_default();
                if let Some((_, prev)) = pending.iter().find(|(pt, _)| pt == t) {
                    return if super::histograms::identical(prev, h) {
                        Ok(None)
                    } else {
                        Err(AppendError::DuplicateTimestamp)
                    };
                }
                let fresh = s.lock().histograms.check(*t, h, min_time, window)?;
                let newest = pending.iter().map(|x| x.0).max().unwrap_or(i64::MIN);
                if fresh && *t < newest && !(window > 0 && *t >= newest.saturating_sub(window)) {
                    return Err(AppendError::OutOfOrder);
                }
                if fresh {
                    pending.push((*t, h.clone()));
                }
                Ok(fresh.then_some(s))
            });
            match verdict {
                Ok(Some(s)) => accepted.push((s, *t, h.clone())),
                Ok(None) => {}
                Err(e) => {
                    head.metrics.reject(e.reason());
                    rejected.push((*r, e));
                }
            }
        }
        accepted
    }

    /// Hands the accepted samples, by series, to the head's tap (when there is one).
    fn tap(&self, checked: &Checked) -> Result<(), StorageError> {
        let tap = self
            .head
            .tap
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some(tap) = tap else {
            return Ok(());
        };
        let series: Vec<(&Labels, Vec<(i64, f64)>)> = checked
            .runs
            .iter()
            .filter_map(|(s, start, end)| {
                let samples: Vec<(i64, f64)> = self.samples[*start..*end]
                    .iter()
                    .zip(&checked.placement[*start..*end])
                    .filter(|(_, p)| p.is_some())
                    .map(|(&x, _)| x)
                    .collect();
                (!samples.is_empty()).then_some((&s.labels, samples))
            })
            .collect();
        if series.is_empty() {
            return Ok(());
        }
        tap.committed(&series)
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))
    }

    /// Applies the checked samples, one lock per run.
    fn apply(&self, checked: &Checked) {
        let head = self.head;
        let mut max_t = i64::MIN;
        let mut new_chunks = 0i64;
        for (s, start, end) in &checked.runs {
            let mut d = s.lock();
            let samples = &self.samples[*start..*end];
            for (&(t, v), place) in samples.iter().zip(&checked.placement[*start..*end]) {
                match place {
                    Some(Placement::InOrder) => {
                        if d.append_in_order(t, v, head.opts.head_chunk_samples)
                            || d.open.count() == 1
                        {
                            new_chunks += 1;
                        }
                    }
                    Some(Placement::OutOfOrder) => d.insert_ooo(Sample::new(t, v)),
                    None => continue,
                }
                max_t = max_t.max(t);
            }
        }
        if max_t != i64::MIN {
            head.note_time(max_t);
            head.metrics.head_max_time.set(head.max_time());
        }
        head.metrics.head_chunks.inc_by(new_chunks);
    }
}

/// Stores the checked histograms of a commit.
fn apply_histograms(head: &Head, hs: &[(Arc<MemSeries>, i64, Arc<FloatHistogram>)]) {
    let mut max_t = i64::MIN;
    for (s, t, h) in hs {
        s.lock().histograms.insert(HistogramSample {
            t: *t,
            h: h.clone(),
        });
        max_t = max_t.max(*t);
    }
    if max_t != i64::MIN {
        head.has_histograms.store(true, Ordering::Release);
        head.note_time(max_t);
        head.metrics.head_max_time.set(head.max_time());
    }
}
