//! One series in the head (its chunks, its out-of-order buffer) and the inverted index.

use super::*;

/// A closed, immutable head chunk.
#[derive(Debug)]
pub(super) struct ClosedChunk {
    pub(super) mint: i64,
    pub(super) maxt: i64,
    pub(super) count: u32,
    pub(super) bytes: Box<[u8]>,
}

/// The samples of one series in the head.
#[derive(Debug)]
pub(super) struct SeriesData {
    pub(super) closed: Vec<ClosedChunk>,
    pub(super) open: XorEncoder,
    pub(super) open_mint: i64,
    pub(super) open_maxt: i64,
    /// Newest in-order timestamp and its value, kept after the chunks holding them are
    /// truncated, so order checks stay exact.
    pub(super) last_t: i64,
    pub(super) last_v: f64,
    /// Accepted out-of-order samples (within the window), sorted by time.
    pub(super) ooo: Vec<Sample>,
    /// Native histograms.
    pub(super) histograms: super::histograms::HistogramStore,
}

impl SeriesData {
    pub(super) fn new() -> Self {
        Self {
            closed: Vec::new(),
            open: XorEncoder::default(),
            open_mint: i64::MAX,
            open_maxt: i64::MIN,
            last_t: i64::MIN,
            last_v: 0.0,
            ooo: Vec::new(),
            histograms: Default::default(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.closed.is_empty()
            && self.open.count() == 0
            && self.ooo.is_empty()
            && self.histograms.is_empty()
    }

    pub(super) fn append_in_order(&mut self, t: i64, v: f64, chunk_samples: u32) -> bool {
        let mut cut = false;
        if self.open.count() >= chunk_samples {
            let full = std::mem::replace(&mut self.open, XorEncoder::with_capacity(128));
            let count = full.count();
            self.closed.push(ClosedChunk {
                mint: self.open_mint,
                maxt: self.open_maxt,
                count,
                bytes: full.into_bytes().into_boxed_slice(),
            });
            self.open_mint = i64::MAX;
            cut = true;
        }
        if self.open.count() == 0 {
            self.open_mint = t;
        }
        self.open.append(t, v);
        self.open_maxt = t;
        self.last_t = t;
        self.last_v = v;
        cut
    }

    pub(super) fn insert_ooo(&mut self, s: Sample) {
        match self.ooo.binary_search_by_key(&s.t, |x| x.t) {
            Ok(_) => {} // already there (e.g. replayed twice): keep the first
            Err(i) => self.ooo.insert(i, s),
        }
    }

    /// Appends the samples in `[mint, maxt]` to `out`, in time order.
    pub(super) fn collect(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        for c in &self.closed {
            if c.maxt < mint || c.mint > maxt {
                continue;
            }
            out.extend(XorIter::new(&c.bytes, c.count).filter(|s| s.t >= mint && s.t <= maxt));
        }
        if self.open.count() > 0 && self.open_maxt >= mint && self.open_mint <= maxt {
            out.extend(
                XorIter::new(self.open.bytes(), self.open.count())
                    .filter(|s| s.t >= mint && s.t <= maxt),
            );
        }
        let ooo: Vec<Sample> = self
            .ooo
            .iter()
            .filter(|s| s.t >= mint && s.t <= maxt)
            .copied()
            .collect();
        if !ooo.is_empty() {
            merge_into(out, start, &ooo);
        }
    }

    pub(super) fn oldest(&self) -> Option<i64> {
        let chunk = self
            .closed
            .first()
            .map(|c| c.mint)
            .or((self.open.count() > 0).then_some(self.open_mint));
        [
            chunk,
            self.ooo.first().map(|s| s.t),
            self.histograms.oldest(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn chunk_count(&self) -> usize {
        self.closed.len() + usize::from(self.open.count() > 0)
    }

    /// Drops data older than `mint`. Returns how many chunks were dropped.
    pub(super) fn truncate(&mut self, mint: i64) -> usize {
        let before = self.closed.len();
        self.closed.retain(|c| c.maxt >= mint);
        let mut dropped = before - self.closed.len();
        if self.open.count() > 0 && self.open_maxt < mint {
            self.open = XorEncoder::default();
            self.open_mint = i64::MAX;
            dropped += 1;
        }
        self.ooo.retain(|s| s.t >= mint);
        self.histograms.truncate(mint);
        dropped
    }
}

/// Merges sorted `extra` into the sorted tail `out[start..]`; on equal timestamps the in-order
/// sample wins.
pub(super) fn merge_into(out: &mut Vec<Sample>, start: usize, extra: &[Sample]) {
    let base: Vec<Sample> = out.drain(start..).collect();
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < extra.len() {
        if j >= extra.len() || (i < base.len() && base[i].t <= extra[j].t) {
            if j < extra.len() && base[i].t == extra[j].t {
                j += 1;
            }
            out.push(base[i]);
            i += 1;
        } else {
            out.push(extra[j]);
            j += 1;
        }
    }
}

/// One series in the head.
#[derive(Debug)]
pub struct MemSeries {
    pub(super) r: SeriesRef,
    pub(super) labels: Labels,
    pub(super) data: Mutex<SeriesData>,
    /// Set (under the commit lock) when garbage collection removes the series from the index.
    pub(super) removed: std::sync::atomic::AtomicBool,
}

impl MemSeries {
    pub(super) fn lock(&self) -> MutexGuard<'_, SeriesData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The series' reference.
    pub fn series_ref(&self) -> SeriesRef {
        self.r
    }

    /// Samples in `[mint, maxt]`.
    pub fn samples(&self, mint: i64, maxt: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        self.lock().collect(mint, maxt, &mut out);
        out
    }

    /// Native histograms in `[mint, maxt]`.
    pub fn histograms(&self, mint: i64, maxt: i64) -> Vec<HistogramSample> {
        self.lock().histograms.range(mint, maxt)
    }
}

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Labels hash → series ref; collisions go to `collisions`.
    pub(super) by_hash: HashMap<u64, SeriesRef>,
    pub(super) collisions: HashMap<u64, Vec<SeriesRef>>,
    pub(super) series: HashMap<SeriesRef, Arc<MemSeries>>,
    pub(super) postings: Postings,
    pub(super) symbols: HashSet<Arc<str>>,
}

impl Index {
    pub(super) fn get(&self, hash: u64, labels: &Labels) -> Option<&Arc<MemSeries>> {
        let first = self.by_hash.get(&hash)?;
        let s = self.series.get(first)?;
        if s.labels == *labels {
            return Some(s);
        }
        self.collisions
            .get(&hash)?
            .iter()
            .filter_map(|r| self.series.get(r))
            .find(|s| s.labels == *labels)
    }

    pub(super) fn get_pairs(&self, hash: u64, pairs: &[(&str, &str)]) -> Option<&Arc<MemSeries>> {
        let first = self.by_hash.get(&hash)?;
        let s = self.series.get(first)?;
        if s.labels.eq_pairs(pairs) {
            return Some(s);
        }
        self.collisions
            .get(&hash)?
            .iter()
            .filter_map(|r| self.series.get(r))
            .find(|s| s.labels.eq_pairs(pairs))
    }

    pub(super) fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(x) = self.symbols.get(s) {
            return x.clone();
        }
        self.symbols.insert(s.clone());
        s.clone()
    }

    pub(super) fn insert(&mut self, r: SeriesRef, labels: &Labels) -> Arc<MemSeries> {
        let interned: Vec<Label> = labels
            .iter()
            .map(|l| Label {
                name: self.intern(&l.name),
                value: self.intern(&l.value),
            })
            .collect();
        let labels = Labels::from_sorted_unchecked(interned);
        let hash = labels.stable_hash();
        let s = Arc::new(MemSeries {
            r,
            labels,
            data: Mutex::new(SeriesData::new()),
            removed: std::sync::atomic::AtomicBool::new(false),
        });
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(hash).or_default().push(r);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
        }
        self.postings.add(r, &s.labels);
        self.series.insert(r, s.clone());
        s
    }

    pub(super) fn remove(&mut self, removed: &[(SeriesRef, Labels)]) {
        for (r, labels) in removed {
            self.series.remove(r);
            let hash = labels.stable_hash();
            if self.by_hash.get(&hash) == Some(r) {
                self.by_hash.remove(&hash);
                if let Some(mut c) = self.collisions.remove(&hash) {
                    let next = c.remove(0);
                    self.by_hash.insert(hash, next);
                    if !c.is_empty() {
                        self.collisions.insert(hash, c);
                    }
                }
            } else if let Some(c) = self.collisions.get_mut(&hash) {
                c.retain(|x| x != r);
                if c.is_empty() {
                    self.collisions.remove(&hash);
                }
            }
        }
        self.postings.remove(removed);
        // Symbols only the table still holds belong to no series any more.
        self.symbols.retain(|s| Arc::strong_count(s) > 1);
    }
}
