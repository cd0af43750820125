//! [`Db`]: the store as a whole. It owns the head, the WAL and the blocks, runs two background
//! threads (WAL fsync on an interval; maintenance: cut blocks from the head, compact, apply
//! retention, checkpoint the WAL), and answers queries by merging blocks and head.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use medic_model::{
    AppendError, Appendable, Appender, ChangeObserver, CommitSummary, Labels, Querier, Queryable,
    SeriesRef, StorageError,
};
use tracing::{error, info, warn};

#[path = "snapshot.rs"]
mod snapshot;
#[path = "tiers.rs"]
mod tiers;
pub use snapshot::SnapshotSummary;

use crate::block::{self, Block};
use crate::compact::{self, MergeIter, Span};
use crate::head::{Head, HeadAppender};
use crate::metrics::Metrics;
use crate::querier::DbQuerier;
use crate::wal::{self, Wal};
use crate::{Error, FsyncPolicy, Options};

/// How often maintenance runs when nothing asks for it sooner.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The embedded time-series store.
pub struct Db {
    dir: PathBuf,
    opts: Options,
    head: Arc<Head>,
    blocks: Arc<RwLock<Vec<Arc<Block>>>>,
    metrics: Metrics,
    /// Serialises maintenance (cut, compaction, retention, checkpoint, flush).
    maintenance: Mutex<()>,
    /// Lowest timestamp appended since the last truncation (cheap lower bound of head span).
    appended_min: AtomicI64,
    /// Told of every commit and every deletion (caches of query results).
    observers: RwLock<Vec<Arc<dyn ChangeObserver>>>,
    wake: Mutex<Option<SyncSender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    closed: AtomicBool,
    _lock: File,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.dir).finish()
    }
}

/// What [`Db::flush`] did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FlushSummary {
    /// Blocks written from the head.
    pub blocks_written: usize,
    /// Merges performed afterwards.
    pub compactions: usize,
}

/// A snapshot of the store's shape, for status APIs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbStats {
    /// Series in the head.
    pub head_series: usize,
    /// Oldest sample in the head (ms); `i64::MAX` when the head is empty, as Prometheus reports.
    pub head_min_time: i64,
    /// Newest timestamp in the head (ms); `i64::MIN` when the head is empty.
    pub head_max_time: i64,
    /// Blocks on disk.
    pub blocks: Vec<block::BlockMeta>,
    /// Bytes of blocks on disk.
    pub blocks_bytes: u64,
    /// Bytes of WAL on disk.
    pub wal_bytes: u64,
}

impl Db {
    /// Opens (or creates) a store in `dir`: loads blocks (quarantining unreadable ones), replays
    /// the WAL (truncating a torn tail), and starts the background threads.
    pub fn open(dir: &Path, opts: Options, metrics: Metrics) -> Result<Arc<Db>, Error> {
        opts.validate()?;
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let lock_path = dir.join("lock");
        let lock = File::create(&lock_path).map_err(Error::io("create", &lock_path))?;
        if lock.try_lock().is_err() {
            return Err(Error::Locked(dir.to_path_buf()));
        }

        let blocks = load_blocks(dir, &metrics)?;
        let head = Arc::new(Head::new(opts.clone(), metrics.clone()));
        if let Some(max) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_time(max);
        }

        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(Error::io("create", &wal_dir))?;
        let last_seq = replay_wal(&wal_dir, &head, &metrics)?;
        let wal = Wal::create(
            &wal_dir,
            last_seq,
            opts.wal_segment_bytes,
            opts.fsync,
            metrics.clone(),
        )?;
        head.set_wal(Arc::new(wal));

        let db = Arc::new(Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            blocks: Arc::new(RwLock::new(blocks)),
            metrics,
            maintenance: Mutex::new(()),
            appended_min: AtomicI64::new(i64::MAX),
            observers: RwLock::new(Vec::new()),
            wake: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            stop: Mutex::new(None),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        if let Some(t) = db.head.oldest_sample() {
            db.appended_min.store(t, Ordering::Release);
        }
        db.update_block_gauges();
        db.start_threads();
        Ok(db)
    }

    fn start_threads(self: &Arc<Self>) {
        let (wake_tx, wake_rx) = mpsc::sync_channel::<()>(1);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(wake_tx);
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop_tx);
        let mut threads = Vec::new();

        let weak: Weak<Db> = Arc::downgrade(self);
        threads.push(
            std::thread::Builder::new()
                .name("tsdb-maintenance".into())
                .spawn(move || loop {
                    match wake_rx.recv_timeout(MAINTENANCE_INTERVAL) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let Some(db) = weak.upgrade() else { return };
                    if db.closed.load(Ordering::Acquire) {
                        return;
                    }
                    if let Err(e) = db.maintain() {
                        error!(error = %e, "storage maintenance failed");
                    }
                })
                .expect("spawn maintenance thread"),
        );

        if let FsyncPolicy::Interval(every) = self.opts.fsync {
            let weak: Weak<Db> = Arc::downgrade(self);
            threads.push(
                std::thread::Builder::new()
                    .name("tsdb-wal-fsync".into())
                    .spawn(move || loop {
                        match stop_rx.recv_timeout(every) {
                            Err(RecvTimeoutError::Timeout) => {}
                            _ => return,
                        }
                        let Some(db) = weak.upgrade() else { return };
                        if let Err(e) = db.head.sync_wal() {
                            error!(error = %e, "WAL fsync failed");
                        }
                    })
                    .expect("spawn fsync thread"),
            );
        }
        *self.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
    }

    /// Stops the background threads, fsyncs the WAL and writes a checkpoint so the next start
    /// replays little. Idempotent.
    pub fn close(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.wake.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        let _g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        self.head.sync_wal()?;
        self.head.checkpoint()?;
        info!(dir = %self.dir.display(), "storage closed");
        Ok(())
    }

    /// The store's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The head (for tests and status).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The blocks currently open, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Shape of the store.
    pub fn stats(&self) -> DbStats {
        let blocks = self.blocks();
        DbStats {
            head_series: self.head.num_series(),
            head_min_time: self.head.oldest_sample().unwrap_or(i64::MAX),
            head_max_time: self.head.max_time(),
            blocks_bytes: blocks.iter().map(|b| b.bytes()).sum(),
            blocks: blocks.iter().map(|b| b.meta().clone()).collect(),
            wal_bytes: self.head.wal_disk_bytes(),
        }
    }

    fn head_span_exceeds(&self, factor_x2: i64) -> bool {
        let max = self.head.max_time();
        let low = self
            .appended_min
            .load(Ordering::Acquire)
            .max(self.head.min_time());
        max != i64::MIN && low != i64::MAX && max - low > self.opts.block_range_ms * factor_x2 / 2
    }

    fn after_commit(&self, min_t: i64) {
        if min_t != i64::MAX {
            self.appended_min.fetch_min(min_t, Ordering::AcqRel);
            self.notify_changed(min_t);
        }
        let needs_checkpoint =
            self.head.wal_bytes_since_checkpoint() > self.opts.wal_checkpoint_bytes;
        if self.head_span_exceeds(3) || needs_checkpoint {
            if let Some(w) = self.wake.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                let _ = w.try_send(());
            }
        }
    }

    /// Hands every later commit's accepted samples to `tap` before the commit is logged and
    /// acknowledged (remote write out); a tap that fails fails the commit.
    pub fn set_commit_tap(&self, tap: Arc<dyn medic_model::CommitTap>) {
        self.head.set_tap(tap);
    }

    /// Registers `observer` to hear of every change to stored data from now on: each commit
    /// (with its oldest sample's timestamp) and each deletion by retention (`i64::MIN`).
    pub fn observe_changes(&self, observer: Arc<dyn ChangeObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    fn notify_changed(&self, from: i64) {
        for o in self
            .observers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            o.changed_from(from);
        }
    }

    /// One round of maintenance: cut blocks from the head while it spans more than 1.5 block
    /// ranges, compact, apply retention, checkpoint the WAL if it grew.
    pub fn maintain(&self) -> Result<(), Error> {
        let _g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let mut cut = 0;
        while self.head_span_exceeds(3) {
            let Some(oldest) = self.head.oldest_sample() else {
                break;
            };
            let max = self.head.max_time();
            if max - oldest <= self.opts.block_range_ms * 3 / 2 {
                self.appended_min.store(oldest, Ordering::Release);
                break;
            }
            let start = oldest.div_euclid(self.opts.block_range_ms) * self.opts.block_range_ms;
            self.cut(
                start.max(self.head.min_time()),
                start + self.opts.block_range_ms,
            )?;
            cut += 1;
        }
        self.compact(false)?;
        if self.downsample()? > 0 {
            self.compact(false)?;
        }
        self.apply_retention()?;
        if cut > 0 || self.head.wal_bytes_since_checkpoint() > self.opts.wal_checkpoint_bytes {
            self.checkpoint()?;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), Error> {
        self.head.checkpoint().inspect_err(|_| {
            self.metrics.checkpoints_failed.inc();
        })
    }

    /// Writes the head's samples in `[mint, maxt)` as a block and truncates the head at `maxt`.
    fn cut(&self, mint: i64, maxt: i64) -> Result<(), Error> {
        let series = self.head.select(&[]);
        let iter = series.iter().filter_map(|s| {
            let samples = s.samples(mint, maxt - 1);
            (!samples.is_empty()).then(|| (s.labels().clone(), samples))
        });
        let hists = self.head.histograms_of(&series, mint, maxt - 1);
        let spec = self.block_spec(mint, maxt, 1, Vec::new());
        let written = block::write_block(&self.dir, spec, iter, &hists)?;
        if let Some((path, meta)) = written {
            info!(block = %meta.ulid, mint, maxt, series = meta.stats.num_series,
                  samples = meta.stats.num_samples, "cut block from head");
            let b = Block::open(&path)?;
            self.metrics.blocks_written.inc();
            self.add_block(Arc::new(b));
        }
        self.head.truncate(maxt);
        self.appended_min.store(maxt, Ordering::Release);
        Ok(())
    }

    fn block_spec(
        &self,
        min_time: i64,
        max_time: i64,
        level: u32,
        parents: Vec<String>,
    ) -> block::BlockSpec {
        block::BlockSpec {
            min_time,
            max_time,
            codec: self.opts.block_codec,
            chunk_samples: self.opts.block_chunk_samples,
            level,
            parents,
            resolution_ms: 0,
        }
    }

    fn add_block(&self, b: Arc<Block>) {
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        blocks.push(b);
        blocks.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
        drop(blocks);
        self.update_block_gauges();
    }

    fn update_block_gauges(&self) {
        let blocks = self.blocks.read().unwrap_or_else(|e| e.into_inner());
        self.metrics.blocks_loaded.set(blocks.len() as i64);
        self.metrics
            .blocks_bytes
            .set(blocks.iter().map(|b| b.bytes() as i64).sum());
    }

    /// Merges blocks until the planner finds nothing to do. A window counts as complete once the
    /// head has moved past it; with `eager`, windows of the first level are merged even if not.
    fn compact(&self, eager: bool) -> Result<usize, Error> {
        let mut merges = 0;
        for res in self.resolutions() {
            merges += self.compact_at(res, eager)?;
        }
        Ok(merges)
    }

    /// [`Db::compact`] among the blocks of one resolution.
    fn compact_at(&self, resolution: i64, eager: bool) -> Result<usize, Error> {
        let ranges = compact::level_ranges(
            self.opts.block_range_ms,
            self.opts.max_block_ms_at(resolution),
        );
        let mut merges = 0;
        loop {
            let blocks: Vec<Arc<Block>> = self
                .blocks()
                .into_iter()
                .filter(|b| b.meta().resolution_ms == resolution)
                .collect();
            let spans: Vec<Span> = blocks
                .iter()
                .map(|b| Span {
                    min: b.meta().min_time,
                    max: b.meta().max_time,
                })
                .collect();
            let Some(pick) = compact::plan(&spans, &ranges, self.head.min_time(), eager) else {
                return Ok(merges);
            };
            let sources: Vec<Arc<Block>> = pick.iter().map(|&i| blocks[i].clone()).collect();
            let start = Instant::now();
            match self.merge(&sources) {
                Ok(()) => {
                    self.metrics.compactions.inc();
                    self.metrics
                        .compaction_duration
                        .observe(start.elapsed().as_secs_f64());
                    merges += 1;
                }
                Err(e) => {
                    self.metrics.compactions_failed.inc();
                    return Err(e);
                }
            }
        }
    }

    fn merge(&self, sources: &[Arc<Block>]) -> Result<(), Error> {
        let mint = sources.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
        let maxt = sources.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
        let level = sources
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(0)
            + 1;
        let parents: Vec<String> = sources.iter().map(|b| b.meta().ulid.clone()).collect();
        let mut iter = MergeIter::new(sources);
        let mut spec = self.block_spec(mint, maxt, level, parents);
        spec.resolution_ms = sources.first().map_or(0, |b| b.meta().resolution_ms);
        let hists = crate::block_histograms::merge(
            sources
                .iter()
                .map(|b| b.select_histograms(&[], i64::MIN, i64::MAX))
                .collect::<Result<_, _>>()?,
        );
        let written = block::write_block(&self.dir, spec, &mut iter, &hists);
        if let Some(e) = iter.take_error() {
            if let Ok(Some((path, _))) = &written {
                let _ = fs::remove_dir_all(path);
            }
            return Err(e);
        }
        let new_block = match written? {
            Some((path, meta)) => {
                info!(block = %meta.ulid, sources = sources.len(), mint, maxt, level, "compacted blocks");
                self.metrics.blocks_written.inc();
                Some(Arc::new(Block::open(&path)?))
            }
            None => None,
        };
        let mut blocks = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        blocks.retain(|b| !sources.iter().any(|s| Arc::ptr_eq(s, b)));
        if let Some(b) = new_block {
            blocks.push(b);
        }
        blocks.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
        drop(blocks);
        for s in sources {
            if let Err(e) = fs::remove_dir_all(s.dir()) {
                warn!(block = %s.dir().display(), error = %e, "could not remove compacted block");
            }
        }
        self.update_block_gauges();
        Ok(())
    }

    fn apply_retention(&self) -> Result<(), Error> {
        let blocks = self.blocks();
        let mut doomed: Vec<(Arc<Block>, &'static str)> = Vec::new();
        {
            // "Now" for retention is the newest sample stored, but never later than the clock
            // allows a sample to be: one sample from the far future (stored before the future
            // check existed, or restored from elsewhere) must not age out all history.
            let newest = blocks
                .iter()
                .map(|b| b.meta().max_time)
                .chain(std::iter::once(self.head.max_time()))
                .max()
                .unwrap_or(i64::MIN)
                .min(self.head.max_valid_time());
            // Each resolution has its own retention; a raw block goes only once every tier
            // holds its data.
            doomed.extend(
                blocks
                    .iter()
                    .filter(|b| {
                        let keep = self.retention_at(b.meta().resolution_ms);
                        keep > 0 && b.meta().max_time <= newest.saturating_sub(keep)
                    })
                    .filter(|b| self.downsampled_everywhere(&blocks, b))
                    .map(|b| (b.clone(), "time")),
            );
        }
        if self.opts.retention_bytes > 0 {
            let mut total: u64 =
                blocks.iter().map(|b| b.bytes()).sum::<u64>() + self.head.wal_disk_bytes();
            for b in &blocks {
                if total <= self.opts.retention_bytes {
                    break;
                }
                total = total.saturating_sub(b.bytes());
                if !doomed.iter().any(|(d, _)| Arc::ptr_eq(d, b)) {
                    doomed.push((b.clone(), "size"));
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.blocks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|b| !doomed.iter().any(|(d, _)| Arc::ptr_eq(d, b)));
        // Any result may have read what is now gone.
        self.notify_changed(i64::MIN);
        for (b, reason) in doomed {
            info!(block = %b.meta().ulid, reason, "retention deleted block");
            self.metrics
                .retention_deleted
                .get_or_create(&vec![("reason", reason)])
                .inc();
            fs::remove_dir_all(b.dir()).map_err(Error::io("remove", b.dir()))?;
        }
        self.update_block_gauges();
        Ok(())
    }

    /// Persists everything in the head as blocks, truncates the head, and compacts: every window
    /// the head has moved past, and the blocks of each first-level window (3× the block range)
    /// even if it is still open, so a flush leaves few, large blocks. New samples must then be newer than the newest flushed one.
    pub fn flush(&self) -> Result<FlushSummary, Error> {
        let _g = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let mut summary = FlushSummary::default();
        let before = self.metrics.blocks_written.get();
        while let Some(oldest) = self.head.oldest_sample() {
            let max = self.head.max_time();
            let start = oldest.div_euclid(self.opts.block_range_ms) * self.opts.block_range_ms;
            let end = (start + self.opts.block_range_ms).min(max + 1);
            self.cut(start.max(self.head.min_time()), end)?;
        }
        summary.blocks_written = (self.metrics.blocks_written.get() - before) as usize;
        summary.compactions = self.compact(true)?;
        if self.downsample()? > 0 {
            summary.compactions += self.compact(true)?;
        }
        self.apply_retention()?;
        self.checkpoint()?;
        Ok(summary)
    }

    /// A querier over `[mint, maxt]` (implements [`Queryable`]).
    pub fn db_querier(&self, mint: i64, maxt: i64) -> DbQuerier {
        DbQuerier {
            head: self.head.clone(),
            blocks: self.blocks.clone(),
            mint,
            maxt,
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Threads hold only weak references and exit when their channels close.
        self.wake.get_mut().map(|w| w.take()).ok();
        self.stop.get_mut().map(|s| s.take()).ok();
    }
}

fn load_blocks(dir: &Path, metrics: &Metrics) -> Result<Vec<Arc<Block>>, Error> {
    let mut blocks: Vec<Arc<Block>> = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if name.ends_with(".tmp") {
            // An interrupted block write: never renamed into place, so never acknowledged.
            warn!(dir = %path.display(), "removing incomplete block");
            let _ = fs::remove_dir_all(&path);
            continue;
        }
        if ulid::Ulid::from_string(&name).is_err() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) => {
                let qdir = dir.join("quarantine");
                let target = qdir.join(&name);
                error!(block = %path.display(), error = %e, quarantine = %target.display(),
                       "block is unreadable; moving it to quarantine");
                metrics.blocks_quarantined.inc();
                fs::create_dir_all(&qdir).map_err(Error::io("create", &qdir))?;
                fs::rename(&path, &target).map_err(Error::io("quarantine", &path))?;
            }
        }
    }
    // Finish compactions interrupted after their output was in place: remove the parents.
    let parents: Vec<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.clone())
        .collect();
    blocks.retain(|b| {
        if parents.contains(&b.meta().ulid) {
            info!(block = %b.meta().ulid, "removing block already merged into another");
            let _ = fs::remove_dir_all(b.dir());
            false
        } else {
            true
        }
    });
    blocks.sort_by_key(|b| (b.meta().min_time, b.meta().max_time));
    Ok(blocks)
}

/// Replays checkpoint and segments into `head`; returns the last segment number seen.
fn replay_wal(wal_dir: &Path, head: &Head, metrics: &Metrics) -> Result<u64, Error> {
    let start = Instant::now();
    let listing = wal::scan_dir(wal_dir)?;
    let mut records = 0usize;
    let mut last_seq = 0u64;
    if let Some((seq, path)) = &listing.checkpoint {
        let recs = wal::read_file(path)?;
        if let Some((off, why)) = &recs.corrupt_at {
            // A checkpoint is renamed into place only when complete, so this is damage on disk.
            error!(checkpoint = %path.display(), offset = off, reason = %why,
                   "checkpoint is damaged; loading what precedes the damage");
            metrics.wal_truncations.inc();
        }
        records += head.replay(&recs.payloads)?;
        last_seq = *seq;
        info!(checkpoint = %path.display(), records, seconds = start.elapsed().as_secs_f64(), "WAL checkpoint loaded");
    }
    let segments: Vec<u64> = listing.segments.to_vec();
    for (i, &seq) in segments.iter().enumerate() {
        if seq <= last_seq {
            // Covered by the checkpoint; left behind by a crash before their removal.
            let _ = fs::remove_file(wal::segment_path(wal_dir, seq));
            continue;
        }
        let path = wal::segment_path(wal_dir, seq);
        let recs = wal::read_file(&path)?;
        records += head.replay(&recs.payloads)?;
        last_seq = seq;
        // Progress, as Prometheus logs it: one line per segment.
        info!(
            segment = seq,
            max_segment = segments.last().copied().unwrap_or(seq),
            records,
            "WAL segment loaded"
        );
        if let Some((offset, why)) = recs.corrupt_at {
            let later: Vec<u64> = segments[i + 1..].to_vec();
            warn!(segment = %path.display(), offset, reason = %why, dropped_segments = later.len(),
                  "WAL ends in a torn or damaged record; truncating at the last good record");
            metrics.wal_truncations.inc();
            wal::repair(wal_dir, seq, offset, &later)?;
            break;
        }
    }
    for p in &listing.stale {
        let _ = fs::remove_file(p);
    }
    let secs = start.elapsed().as_secs_f64();
    metrics.wal_replay_records.set(records as i64);
    metrics.wal_replay_seconds.set(secs);
    if records > 0 {
        info!(
            records,
            series = head.num_series(),
            seconds = secs,
            "replayed WAL"
        );
    }
    Ok(last_seq)
}

/// An appender that also tells the store when the head has grown enough to cut a block.
pub struct DbAppender<'a> {
    db: &'a Db,
    inner: HeadAppender<'a>,
    min_t: i64,
}

impl Appender for DbAppender<'_> {
    fn series_ref(&mut self, labels: &Labels) -> Result<SeriesRef, AppendError> {
        self.inner.series_ref(labels)
    }

    fn existing_series_ref(&mut self, hash: u64, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
        self.inner.existing_series_ref(hash, pairs)
    }

    fn append(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        self.inner.append(series, t, v)?;
        self.min_t = self.min_t.min(t);
        Ok(())
    }

    fn append_histogram(
        &mut self,
        series: SeriesRef,
        t: i64,
        h: Arc<medic_model::FloatHistogram>,
    ) -> Result<(), AppendError> {
        self.inner.append_histogram(series, t, h)?;
        self.min_t = self.min_t.min(t);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<CommitSummary, StorageError> {
        if self.db.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let db = self.db;
        let min_t = self.min_t;
        let summary = Box::new(self.inner).commit()?;
        db.after_commit(min_t);
        Ok(summary)
    }

    fn rollback(self: Box<Self>) {}
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(DbAppender {
            db: self,
            inner: self.head.appender(),
            min_t: i64::MAX,
        })
    }
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(self.db_querier(mint, maxt)))
    }
}
