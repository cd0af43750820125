//! The log store. A push is redacted, checked, written to the WAL (`wal`), fsynced, and only
//! then applied to the head (`head`) and acknowledged. The head is flushed to parts (`part`),
//! one per UTC hour it touched, when it holds `head_max_bytes` or its oldest push is
//! `flush_after` old; the WAL segments a flush covered are then deleted. Parts past `retention`,
//! or the oldest beyond `max_bytes`, are deleted. A part whose index fails its checks at open is
//! moved to `quarantine/` and the store opens without it.
//!
//! Layout under the store's directory: `wal/<n>.wal`, `parts/<hour>-<seq>.part`,
//! `quarantine/`. Formats: `wal.rs` and `part.rs`.

mod codec;
mod head;
mod part;
mod wal;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use medic_model::{Labels, Matcher};

use crate::entry::{Push, Stream};
use crate::logql::{EvalError, LogSource, Selection};
use crate::redact::{RedactError, RedactionConfig, Redactor};

use head::Head;
use part::{Part, PartError};
use wal::Wal;

pub use codec::{decode_push, encode_push};

const HOUR_NS: i64 = 3_600_000_000_000;

/// How the store behaves (`logs.storage` in medic.yml).
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    /// Entries older than this are deleted, and refused at push.
    pub retention: Duration,
    /// Parts beyond this many bytes are deleted, oldest first (0: no limit).
    pub max_bytes: u64,
    pub head_max_bytes: usize,
    pub flush_after: Duration,
    /// Bytes of lines one query may decode.
    pub max_query_bytes: u64,
    /// Longest line accepted.
    pub max_line_bytes: usize,
    pub zstd_level: i32,
    pub redaction: RedactionConfig,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            retention: Duration::from_secs(30 * 86400),
            max_bytes: 0,
            head_max_bytes: 64 << 20,
            flush_after: Duration::from_secs(15 * 60),
            max_query_bytes: 1 << 30,
            max_line_bytes: 256 << 10,
            zstd_level: 3,
            redaction: RedactionConfig::default(),
        }
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("log store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Part(#[from] PartError),
    #[error(transparent)]
    Redact(#[from] RedactError),
    /// Some entries of a push were refused; the rest were stored.
    #[error("{refused} of the pushed entries were refused: {first}")]
    Refused { refused: usize, first: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Counters the server exports as `medic_logs_*`.
#[derive(Default)]
pub struct Counters {
    pub entries_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub entries_refused: AtomicU64,
    pub entries_dropped_by_redaction: AtomicU64,
    pub flushes: AtomicU64,
    pub parts_deleted: AtomicU64,
    pub parts_quarantined: AtomicU64,
    pub wal_damaged_segments: AtomicU64,
}

/// A snapshot of the store's size.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub head_entries: usize,
    pub head_bytes: usize,
    pub head_streams: usize,
    pub parts: usize,
    pub part_bytes: u64,
    pub part_entries: u64,
}

/// The log store; cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Options,
    redactor: Redactor,
    wal: Wal,
    head: RwLock<Head>,
    /// A head being written to parts, still readable.
    /// The parts and the head being flushed, changed together so a reader sees either the
    /// head in flight or the parts it became, never both and never neither.
    view: RwLock<View>,
    flush_lock: Mutex<()>,
    /// When the head's first push since the last flush arrived (ns).
    head_since: Mutex<Option<i64>>,
    part_seq: AtomicU64,
    counters: Counters,
    /// The latest value of each checkpoint key (saved to `checkpoints.json` at each flush,
    /// before the WAL segments holding them are deleted).
    checkpoints: Mutex<BTreeMap<String, String>>,
}

impl LogStore {
    /// Opens (or creates) the store: checks the parts, quarantining damaged ones, and replays
    /// the WAL segments no part covers.
    pub fn open(opts: Options) -> Result<LogStore, Error> {
        let redactor = Redactor::new(&opts.redaction)?;
        let parts_dir = opts.dir.join("parts");
        let wal_dir = opts.dir.join("wal");
        fs::create_dir_all(&parts_dir).map_err(io_err(&parts_dir))?;
        let counters = Counters::default();
        let mut parts = Vec::new();
        let mut seq = 0;
        for e in fs::read_dir(&parts_dir).map_err(io_err(&parts_dir))? {
            let path = e.map_err(io_err(&parts_dir))?.path();
            match path.extension().and_then(|x| x.to_str()) {
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                Some("part") => {}
                _ => continue,
            }
            if let Some(n) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.rsplit('-').next())
                .and_then(|s| s.parse::<u64>().ok())
            {
                seq = seq.max(n);
            }
            match part::open(&path) {
                Ok(p) => parts.push(Arc::new(p)),
                Err(e) => {
                    tracing::error!(error = %e, "log store: quarantining a damaged part");
                    quarantine(&opts.dir, &path)?;
                    counters.parts_quarantined.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        parts.sort_by_key(|p| (p.min_ts, p.max_ts));
        let covered = parts.iter().map(|p| p.wal_through).max().unwrap_or(0);
        fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
        let (pushes, damaged) = wal::replay(&wal_dir, covered).map_err(io_err(&wal_dir))?;
        counters
            .wal_damaged_segments
            .fetch_add(damaged as u64, Ordering::Relaxed);
        let wal = Wal::open(&wal_dir).map_err(io_err(&wal_dir))?;
        wal.remove_below(covered).map_err(io_err(&wal_dir))?;
        let mut head = Head::default();
        let mut checkpoints = read_checkpoints(&opts.dir)?;
        let replayed = pushes.len();
        for (push, cps) in pushes {
            for s in push {
                head.append(s);
            }
            checkpoints.extend(cps);
        }
        let since = (head.entries > 0).then_some(i64::MIN);
        tracing::info!(
            parts = parts.len(),
            replayed_pushes = replayed,
            head_entries = head.entries,
            "log store open"
        );
        Ok(LogStore {
            inner: Arc::new(Inner {
                opts,
                redactor,
                wal,
                head: RwLock::new(head),
                view: RwLock::new(View {
                    parts,
                    flushing: None,
                }),
                flush_lock: Mutex::new(()),
                head_since: Mutex::new(since),
                part_seq: AtomicU64::new(seq + 1),
                counters,
                checkpoints: Mutex::new(checkpoints),
            }),
        })
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// Redacts, checks and stores a push; returns once it is durable. Entries that are too old,
    /// too far ahead, too long or badly labelled are refused (counted, reported in the error),
    /// and the rest stored.
    pub fn push(&self, push: Push, now_ns: i64) -> Result<usize, Error> {
        self.push_with_checkpoints(push, now_ns, &[])
    }

    /// [`LogStore::push`], with checkpoints made durable in the same WAL record: a reader of
    /// some source (a tailed file) records how far it read together with what it read, so a
    /// crash neither loses nor repeats lines. Refused entries do not stop the checkpoints.
    pub fn push_with_checkpoints(
        &self,
        mut push: Push,
        now_ns: i64,
        checkpoints: &[(String, String)],
    ) -> Result<usize, Error> {
        let inner = &self.inner;
        let received: usize = push.iter().map(|s| s.entries.len()).sum();
        let bytes: usize = push
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| e.line.len())
            .sum();
        inner
            .counters
            .entries_received
            .fetch_add(received as u64, Ordering::Relaxed);
        inner
            .counters
            .bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let (refused, first) = self.check(&mut push, now_ns);
        let dropped = inner.redactor.push(&mut push);
        inner
            .counters
            .entries_dropped_by_redaction
            .fetch_add(dropped as u64, Ordering::Relaxed);
        let stored: usize = push.iter().map(|s| s.entries.len()).sum();
        if stored > 0 || !checkpoints.is_empty() {
            let payload = codec::encode_record(&push, checkpoints);
            inner
                .wal
                .append(&payload, || {
                    let mut head = inner.head.write().expect("head lock");
                    for s in push {
                        head.append(s);
                    }
                    // Under the WAL lock, so checkpoints change in WAL order.
                    let mut cps = inner.checkpoints.lock().expect("checkpoints lock");
                    for (k, v) in checkpoints {
                        cps.insert(k.clone(), v.clone());
                    }
                })
                .map_err(io_err(&inner.opts.dir))?;
            inner.head_since.lock().expect("lock").get_or_insert(now_ns);
        }
        if refused > 0 {
            inner
                .counters
                .entries_refused
                .fetch_add(refused as u64, Ordering::Relaxed);
            return Err(Error::Refused { refused, first });
        }
        Ok(stored)
    }

    fn check(&self, push: &mut Push, now_ns: i64) -> (usize, String) {
        let opts = &self.inner.opts;
        let oldest = now_ns - opts.retention.as_nanos() as i64;
        let newest = now_ns + 10 * 60 * 1_000_000_000;
        let mut refused = 0;
        let mut first = String::new();
        let mut refuse = |why: String, n: usize| {
            if first.is_empty() {
                first = why;
            }
            refused += n;
        };
        push.retain_mut(|s| {
            if s.labels.is_empty() {
                refuse(
                    "a stream has no labels; at least one is required".into(),
                    s.entries.len(),
                );
                return false;
            }
            if let Some(l) = s
                .labels
                .iter()
                .find(|l| !medic_model::is_valid_label_name(&l.name))
            {
                refuse(format!("invalid label name {:?}", l.name), s.entries.len());
                return false;
            }
            s.entries.retain(|e| {
                let why = if e.ts < oldest {
                    "is older than the retention"
                } else if e.ts > newest {
                    "is more than 10m in the future"
                } else if e.line.len() > opts.max_line_bytes {
                    "is longer than logs.storage.max_line_bytes"
                } else {
                    return true;
                };
                refuse(
                    format!(
                        "entry of {} at {} {why}",
                        crate::logql::logs::format_labels(&labels_map(&s.labels)),
                        e.ts
                    ),
                    1,
                );
                false
            });
            !s.entries.is_empty()
        });
        (refused, first)
    }

    /// Flushes and applies retention when due; the server calls this every few seconds.
    pub fn maintain(&self, now_ns: i64) -> Result<(), Error> {
        let due = {
            let head = self.inner.head.read().expect("head lock");
            let since = *self.inner.head_since.lock().expect("lock");
            head.bytes >= self.inner.opts.head_max_bytes
                || since.is_some_and(|s| {
                    now_ns.saturating_sub(s) >= self.inner.opts.flush_after.as_nanos() as i64
                })
        };
        if due {
            self.flush()?;
        }
        self.apply_retention(now_ns)
    }

    /// Writes the head to parts and deletes the WAL segments it came from.
    pub fn flush(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let _one = inner.flush_lock.lock().expect("flush lock");
        // The swap happens with the WAL rotated under the head lock, so every push in the old
        // head is in a segment below `through`.
        if inner.head.read().expect("head lock").entries == 0 {
            return Ok(());
        }
        // Every push before the rotation is durable in a segment below `through`, and its
        // checkpoints are in the snapshot taken with the head.
        let (through, (old, cps)) = inner
            .wal
            .rotate(|| {
                let mut head = inner.head.write().expect("head lock");
                let old = Arc::new(std::mem::take(&mut *head));
                inner.view.write().expect("view lock").flushing = Some(old.clone());
                *inner.head_since.lock().expect("lock") = None;
                let cps = inner.checkpoints.lock().expect("checkpoints lock").clone();
                (old, cps)
            })
            .map_err(io_err(&inner.opts.dir))?;
        // `select` hands out each stream's entries sorted.
        // Each stream's entries in time order, borrowed from the head when they already are,
        // cut at hour boundaries.
        let sorted = old.sorted();
        let mut by_hour: BTreeMap<i64, Vec<(&Labels, &[crate::Entry])>> = BTreeMap::new();
        for (labels, entries) in &sorted {
            let mut rest: &[crate::Entry] = entries;
            while let Some(first) = rest.first() {
                let h = first.ts.div_euclid(HOUR_NS);
                let cut = rest.partition_point(|e| e.ts.div_euclid(HOUR_NS) == h);
                by_hour.entry(h).or_default().push((labels, &rest[..cut]));
                rest = &rest[cut..];
            }
        }
        let dir = inner.opts.dir.join("parts");
        let mut written = Vec::new();
        for (hour, streams) in by_hour {
            let seq = inner.part_seq.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{hour}-{seq:08}.part"));
            written.push(Arc::new(part::write(
                &path,
                &streams,
                through,
                inner.opts.zstd_level,
            )?));
        }
        {
            let mut view = inner.view.write().expect("view lock");
            view.parts.extend(written);
            view.parts.sort_by_key(|p| (p.min_ts, p.max_ts));
            view.flushing = None;
        }
        inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
        // The checkpoints of the segments about to go must outlive them.
        write_checkpoints(&inner.opts.dir, &cps)?;
        inner
            .wal
            .remove_below(through)
            .map_err(io_err(&inner.opts.dir))?;
        Ok(())
    }

    fn apply_retention(&self, now_ns: i64) -> Result<(), Error> {
        let inner = &self.inner;
        let cutoff = now_ns - inner.opts.retention.as_nanos() as i64;
        let doomed: Vec<Arc<Part>> = {
            let mut view = inner.view.write().expect("view lock");
            let parts = &mut view.parts;
            let mut total: u64 = parts.iter().map(|p| p.bytes).sum();
            let mut keep = Vec::new();
            let mut doomed = Vec::new();
            // Oldest first: by age, then by size.
            for p in parts.drain(..) {
                let over = inner.opts.max_bytes > 0 && total > inner.opts.max_bytes;
                if p.max_ts < cutoff || over {
                    total -= p.bytes;
                    doomed.push(p);
                } else {
                    keep.push(p);
                }
            }
            *parts = keep;
            doomed
        };
        for p in doomed {
            fs::remove_file(&p.path).map_err(io_err(&p.path))?;
            inner.counters.parts_deleted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// What to read: `head_part` runs on the head under its read lock, and the view is taken
    /// under that same lock, so no flush moves entries between the two.
    fn read_view(&self, head_part: impl FnOnce(&Head)) -> View {
        let head = self.inner.head.read().expect("head lock");
        head_part(&head);
        self.inner.view.read().expect("view lock").clone()
    }

    /// Streams matching `matchers` with entries in `[start, end)`, merged across parts and the
    /// head, each in time order.
    pub fn select_streams(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Stream>, Error> {
        self.select_with(&Selection {
            matchers,
            start,
            end,
            needles: Vec::new(),
            lines: true,
        })
    }

    /// [`LogStore::select_streams`] as a query asks: chunks lacking a needle are skipped, and
    /// lines left out when not needed.
    pub fn select_with(&self, sel: &Selection<'_>) -> Result<Vec<Stream>, Error> {
        let (start, end) = (sel.start, sel.end);
        let mut found = Vec::new();
        let view = self.read_view(|h| h.select(sel.matchers, start, end, &mut found));
        if let Some(f) = &view.flushing {
            f.select(sel.matchers, start, end, &mut found);
        }
        let mut budget = self.inner.opts.max_query_bytes;
        for p in view
            .parts
            .iter()
            .filter(|p| p.max_ts >= start && p.min_ts < end)
        {
            p.select(sel, &mut budget, &mut found)?;
        }
        Ok(merge(found))
    }

    /// Label names of streams with entries in `[start, end)`.
    pub fn label_names(&self, start: i64, end: i64) -> Vec<String> {
        let mut names = BTreeSet::new();
        for l in self.series(&[], start, end) {
            names.extend(l.iter().map(|l| l.name.to_string()));
        }
        names.into_iter().collect()
    }

    /// Values of label `name` among matching streams with entries in `[start, end)`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        let mut values = BTreeSet::new();
        for l in self.series(matchers, start, end) {
            if let Some(v) = l.get(name) {
                values.insert(v.to_string());
            }
        }
        values.into_iter().collect()
    }

    /// Label sets of matching streams with entries in `[start, end)` (from the index: no chunk
    /// is read).
    pub fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Labels> {
        let mut out = Vec::new();
        let view = self.read_view(|h| h.series(matchers, start, end, &mut out));
        if let Some(f) = &view.flushing {
            f.series(matchers, start, end, &mut out);
        }
        for p in view
            .parts
            .iter()
            .filter(|p| p.max_ts >= start && p.min_ts < end)
        {
            for s in p
                .streams
                .iter()
                .filter(|s| head::matches(&s.labels, matchers))
            {
                if s.chunks.iter().any(|c| c.max_ts >= start && c.min_ts < end) {
                    out.push(s.labels.clone());
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The latest value of a checkpoint written with [`LogStore::push_with_checkpoints`].
    pub fn checkpoint(&self, key: &str) -> Option<String> {
        self.inner
            .checkpoints
            .lock()
            .expect("checkpoints lock")
            .get(key)
            .cloned()
    }

    pub fn stats(&self) -> Stats {
        let head = self.inner.head.read().expect("head lock");
        let view = self.inner.view.read().expect("view lock");
        let parts = &view.parts;
        Stats {
            head_entries: head.entries,
            head_bytes: head.bytes,
            head_streams: head.stream_count(),
            parts: parts.len(),
            part_bytes: parts.iter().map(|p| p.bytes).sum(),
            part_entries: parts.iter().map(|p| p.entries).sum(),
        }
    }
}

impl LogSource for LogStore {
    fn select(&self, sel: &Selection<'_>) -> Result<Vec<Stream>, EvalError> {
        self.select_with(sel).map_err(|e| match e {
            Error::Part(PartError::OverBudget) => EvalError::Limit(format!(
                "the query would read more than logs.storage.max_query_bytes ({} bytes of lines); narrow the time range or the selector",
                self.inner.opts.max_query_bytes
            )),
            other => EvalError::Source(other.to_string()),
        })
    }
}

fn labels_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// The parts and the head being flushed.
#[derive(Clone)]
struct View {
    parts: Vec<Arc<Part>>,
    flushing: Option<Arc<Head>>,
}

/// Streams with the same labels joined, entries sorted by time (stable: entries of one time
/// keep their order).
fn merge(found: Vec<Stream>) -> Vec<Stream> {
    let mut by: BTreeMap<Labels, Vec<crate::Entry>> = BTreeMap::new();
    let mut multi = BTreeSet::new();
    for s in found {
        let slot = by.entry(s.labels.clone()).or_default();
        if !slot.is_empty() {
            multi.insert(s.labels.clone());
        }
        slot.extend(s.entries);
    }
    by.into_iter()
        .map(|(labels, mut entries)| {
            if multi.contains(&labels) {
                entries.sort_by_key(|e| e.ts);
            }
            Stream { labels, entries }
        })
        .collect()
}

const CHECKPOINTS: &str = "checkpoints.json";

fn read_checkpoints(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let path = dir.join(CHECKPOINTS);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Written to a temporary file, fsynced and renamed: whole or not at all.
fn write_checkpoints(dir: &Path, cps: &BTreeMap<String, String>) -> Result<(), Error> {
    use std::io::Write;
    let path = dir.join(CHECKPOINTS);
    let tmp = dir.join("checkpoints.json.tmp");
    let body = serde_json::to_vec(cps).expect("strings serialise");
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn quarantine(dir: &Path, path: &Path) -> Result<(), Error> {
    let q = dir.join("quarantine");
    fs::create_dir_all(&q).map_err(io_err(&q))?;
    let name = path.file_name().unwrap_or_default();
    fs::rename(path, q.join(name)).map_err(io_err(path))
}
