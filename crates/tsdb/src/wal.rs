//! The write-ahead log. Every commit is framed, checksummed and written to the current segment
//! before the head changes, so a crash loses nothing that was acknowledged. Segments are numbered
//! files in `wal/`; a checkpoint (`wal/checkpoint.N`) holds the head as it was when segment N
//! ended, so replay reads the newest checkpoint and only the segments after it. The byte layout
//! is in `docs/format/wal.md`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use medic_model::{Label, Labels, SeriesRef};

use crate::encoding::{crc32, put_bytes, put_uvarint, put_varint, Decoder};
use crate::metrics::Metrics;
use crate::{Error, FsyncPolicy};

/// Largest record accepted when reading, so a corrupt length cannot trigger a huge allocation.
const MAX_RECORD_BYTES: usize = 256 << 20;
const FRAME_HEADER: usize = 8;

const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;
const REC_SERIES_CHUNK: u8 = 3;
const REC_HISTOGRAMS: u8 = 4;

/// A sample addressed by series reference, as the WAL stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefSample {
    /// The series.
    pub r: SeriesRef,
    /// Timestamp (ms).
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// One logical WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series and their labels.
    Series(Vec<(SeriesRef, Labels)>),
    /// Samples of known series.
    Samples(Vec<RefSample>),
    /// Native histograms of known series: series, timestamp, histogram.
    Histograms(Vec<(SeriesRef, i64, medic_model::FloatHistogram)>),
    /// A checkpoint's copy of one series' samples, XOR-encoded.
    SeriesChunk {
        /// The series.
        r: SeriesRef,
        /// How many samples the bytes hold.
        count: u32,
        /// The XOR stream.
        bytes: Vec<u8>,
    },
}

/// Appends the framed encoding of a series record to `out`.
pub fn encode_series(out: &mut Vec<u8>, series: &[(SeriesRef, &Labels)]) {
    frame(out, |p| {
        p.push(REC_SERIES);
        put_uvarint(p, series.len() as u64);
        for (r, labels) in series {
            put_uvarint(p, *r);
            put_uvarint(p, labels.len() as u64);
            for l in labels.iter() {
                put_bytes(p, l.name.as_bytes());
                put_bytes(p, l.value.as_bytes());
            }
        }
    });
}

/// Appends the framed encoding of a samples record to `out`.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[RefSample]) {
    if samples.is_empty() {
        return;
    }
    frame(out, |p| {
        p.push(REC_SAMPLES);
        put_uvarint(p, samples.len() as u64);
        let base = samples[0].t;
        put_varint(p, base);
        for s in samples {
            put_uvarint(p, s.r);
            put_varint(p, s.t.wrapping_sub(base));
            p.extend_from_slice(&s.v.to_bits().to_be_bytes());
        }
    });
}

/// Appends the framed encoding of a native-histograms record to `out`.
pub fn encode_histograms(out: &mut Vec<u8>, hs: &[(SeriesRef, i64, &medic_model::FloatHistogram)]) {
    if hs.is_empty() {
        return;
    }
    frame(out, |p| {
        p.push(REC_HISTOGRAMS);
        put_uvarint(p, hs.len() as u64);
        let base = hs[0].1;
        put_varint(p, base);
        for (r, t, h) in hs {
            put_uvarint(p, *r);
            put_varint(p, t.wrapping_sub(base));
            crate::histogram_codec::put_histogram(p, h);
        }
    });
}

/// Appends the framed encoding of a checkpoint series chunk to `out`.
pub fn encode_series_chunk(out: &mut Vec<u8>, r: SeriesRef, count: u32, bytes: &[u8]) {
    frame(out, |p| {
        p.push(REC_SERIES_CHUNK);
        put_uvarint(p, r);
        put_uvarint(p, count as u64);
        put_bytes(p, bytes);
    });
}

fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    body(out);
    let payload = &out[start + FRAME_HEADER..];
    let len = payload.len() as u32;
    let crc = crc32(payload);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Decodes one record payload (without its frame).
pub fn decode_record(payload: &[u8]) -> Result<Record, Error> {
    let mut d = Decoder::new(payload);
    let max = payload.len();
    match d.u8("record type")? {
        REC_SERIES => {
            let n = d.len(max, "series count")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint("series ref")?;
                let nl = d.len(max, "label count")?;
                let mut labels = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = d.str("label name")?;
                    let value = d.str("label value")?;
                    labels.push(Label::new(name, value));
                }
                let labels = Labels::from_unsorted(labels)
                    .map_err(|n| Error::Decode(format!("series record repeats label {n:?}")))?;
                out.push((r, labels));
            }
            Ok(Record::Series(out))
        }
        REC_SAMPLES => {
            let n = d.len(max / 10, "sample count")?;
            let base = d.varint("base timestamp")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint("sample ref")?;
                let t = base.wrapping_add(d.varint("sample timestamp")?);
                let v = f64::from_bits(d.be_u64("sample value")?);
                out.push(RefSample { r, t, v });
            }
            Ok(Record::Samples(out))
        }
        REC_HISTOGRAMS => {
            let n = d.len(max / 40, "histogram count")?;
            let base = d.varint("base timestamp")?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint("histogram ref")?;
                let t = base.wrapping_add(d.varint("histogram timestamp")?);
                out.push((r, t, crate::histogram_codec::get_histogram(&mut d)?));
            }
            Ok(Record::Histograms(out))
        }
        REC_SERIES_CHUNK => {
            let r = d.uvarint("series ref")?;
            let count = d.len(u32::MAX as usize, "chunk count")? as u32;
            let bytes = d.bytes("chunk bytes")?.to_vec();
            Ok(Record::SeriesChunk { r, count, bytes })
        }
        t => Err(Error::Decode(format!("unknown WAL record type {t}"))),
    }
}

/// The records of one file, and where (if anywhere) it stops being readable.
#[derive(Debug, Default)]
pub struct FileRecords {
    /// Record payloads that passed their checksum, in order.
    pub payloads: Vec<Vec<u8>>,
    /// Byte offset of the first bad or incomplete frame, if any.
    pub corrupt_at: Option<(u64, String)>,
}

/// Reads every intact record of a WAL segment or checkpoint file.
pub fn read_file(path: &Path) -> Result<FileRecords, Error> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(Error::io("read", path))?;
    let mut out = FileRecords::default();
    let mut pos = 0usize;
    while pos < data.len() {
        if data.len() - pos < FRAME_HEADER {
            out.corrupt_at = Some((pos as u64, "torn frame header".into()));
            break;
        }
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4")) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().expect("4"));
        if len == 0 && crc == 0 {
            // Zeroed space (e.g. a pre-allocated or partially flushed page): the log ends here.
            out.corrupt_at = Some((pos as u64, "zeroed frame".into()));
            break;
        }
        if len > MAX_RECORD_BYTES || data.len() - pos - FRAME_HEADER < len {
            out.corrupt_at = Some((pos as u64, format!("torn record of {len} bytes")));
            break;
        }
        let payload = &data[pos + FRAME_HEADER..pos + FRAME_HEADER + len];
        if crc32(payload) != crc {
            out.corrupt_at = Some((pos as u64, "checksum mismatch".into()));
            break;
        }
        out.payloads.push(payload.to_vec());
        pos += FRAME_HEADER + len;
    }
    Ok(out)
}

/// Segment file name for sequence number `seq`.
fn segment_name(seq: u64) -> String {
    format!("{seq:08}")
}

/// The segments and checkpoints found in a WAL directory.
#[derive(Debug, Default)]
pub struct WalDir {
    /// Segment numbers in ascending order.
    pub segments: Vec<u64>,
    /// The newest complete checkpoint: (last segment it covers, path).
    pub checkpoint: Option<(u64, PathBuf)>,
    /// Older checkpoints and leftovers from interrupted checkpoints.
    pub stale: Vec<PathBuf>,
}

/// Lists a WAL directory.
pub fn scan_dir(dir: &Path) -> Result<WalDir, Error> {
    let mut out = WalDir::default();
    let mut checkpoints = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let entry = entry.map_err(Error::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(seq) = name.parse::<u64>() {
            out.segments.push(seq);
        } else if let Some(rest) = name.strip_prefix("checkpoint.") {
            match rest.parse::<u64>() {
                Ok(seq) => checkpoints.push((seq, entry.path())),
                Err(_) => out.stale.push(entry.path()),
            }
        }
    }
    out.segments.sort_unstable();
    checkpoints.sort_by_key(|(s, _)| *s);
    if let Some(last) = checkpoints.pop() {
        out.checkpoint = Some(last);
    }
    out.stale.extend(checkpoints.into_iter().map(|(_, p)| p));
    Ok(out)
}

struct Writer {
    file: Arc<File>,
    seq: u64,
    size: u64,
    dirty: bool,
    bytes_since_checkpoint: u64,
}

/// The WAL writer. Appends are serialised by an internal mutex; callers that need a total
/// order across series (the head's commit) hold their own lock around [`Wal::append`].
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    fsync: FsyncPolicy,
    writer: Mutex<Writer>,
    metrics: Metrics,
}

impl Wal {
    /// Opens the WAL for writing in a new segment after `last_seq`.
    pub fn create(
        dir: &Path,
        last_seq: u64,
        segment_bytes: u64,
        fsync: FsyncPolicy,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let seq = last_seq + 1;
        let file = open_segment(dir, seq)?;
        metrics.wal_segments_created.inc();
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            fsync,
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                seq,
                size: 0,
                dirty: false,
                bytes_since_checkpoint: 0,
            }),
            metrics,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes framed records; returns once the bytes are with the OS (and on disk, under
    /// [`FsyncPolicy::Always`]).
    pub fn append(&self, framed: &[u8]) -> Result<(), Error> {
        if framed.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if w.size > 0 && w.size + framed.len() as u64 > self.segment_bytes {
            self.rotate_locked(&mut w)?;
        }
        let path = self.dir.join(segment_name(w.seq));
        (&*w.file)
            .write_all(framed)
            .map_err(Error::io("write", &path))?;
        w.size += framed.len() as u64;
        w.bytes_since_checkpoint += framed.len() as u64;
        w.dirty = true;
        self.metrics.wal_bytes_written.inc_by(framed.len() as u64);
        if self.fsync == FsyncPolicy::Always {
            let file = w.file.clone();
            w.dirty = false;
            self.sync_file(&file, &path)?;
        }
        Ok(())
    }

    fn sync_file(&self, file: &File, path: &Path) -> Result<(), Error> {
        let start = Instant::now();
        file.sync_data().map_err(Error::io("fsync", path))?;
        self.metrics.wal_fsyncs.inc();
        self.metrics
            .wal_fsync_duration
            .observe(start.elapsed().as_secs_f64());
        Ok(())
    }

    fn rotate_locked(&self, w: &mut Writer) -> Result<(), Error> {
        let old_path = self.dir.join(segment_name(w.seq));
        if self.fsync != FsyncPolicy::Never {
            self.sync_file(&w.file, &old_path)?;
        }
        let seq = w.seq + 1;
        let file = open_segment(&self.dir, seq)?;
        w.file = Arc::new(file);
        w.seq = seq;
        w.size = 0;
        w.dirty = false;
        self.metrics.wal_segments_created.inc();
        Ok(())
    }

    /// Closes the current segment and starts a new one; returns the number of the closed one.
    /// Everything logged before this call is in segments up to the returned number.
    pub fn rotate(&self) -> Result<u64, Error> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let closed = w.seq;
        self.rotate_locked(&mut w)?;
        w.bytes_since_checkpoint = 0;
        Ok(closed)
    }

    /// Bytes logged since the last [`Wal::rotate`] for a checkpoint.
    pub fn bytes_since_checkpoint(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes_since_checkpoint
    }

    /// fsyncs the current segment if anything was written since the last sync. Called by the
    /// background flusher under [`FsyncPolicy::Interval`] and at close.
    pub fn sync(&self) -> Result<(), Error> {
        let (file, seq) = {
            let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if !w.dirty {
                return Ok(());
            }
            w.dirty = false;
            (w.file.clone(), w.seq)
        };
        // Outside the lock, so writers are not held up by the disk.
        self.sync_file(&file, &self.dir.join(segment_name(seq)))
    }

    /// The fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.fsync
    }

    /// Starts a checkpoint covering segments up to `last_seq`. Records are streamed to a
    /// temporary file; [`CheckpointWriter::finish`] makes it the checkpoint and removes the
    /// segments it covers. A checkpoint that is never finished is removed at the next start.
    pub fn begin_checkpoint(&self, last_seq: u64) -> Result<CheckpointWriter<'_>, Error> {
        let tmp = self.dir.join(format!("checkpoint.{last_seq:08}.tmp"));
        let f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        Ok(CheckpointWriter {
            wal: self,
            last_seq,
            out: std::io::BufWriter::with_capacity(1 << 20, f),
            tmp,
        })
    }

    /// Total bytes of the WAL directory.
    pub fn disk_bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// A checkpoint being written; see [`Wal::begin_checkpoint`].
pub struct CheckpointWriter<'a> {
    wal: &'a Wal,
    last_seq: u64,
    out: std::io::BufWriter<File>,
    tmp: PathBuf,
}

impl CheckpointWriter<'_> {
    /// Appends framed records.
    pub fn write(&mut self, framed: &[u8]) -> Result<(), Error> {
        self.out
            .write_all(framed)
            .map_err(Error::io("write", &self.tmp))
    }

    /// fsyncs and renames the checkpoint into place, then removes the segments it covers and
    /// older checkpoints.
    pub fn finish(self) -> Result<(), Error> {
        let dir = &self.wal.dir;
        let f = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write", &self.tmp)(e.into_error()))?;
        f.sync_all().map_err(Error::io("fsync", &self.tmp))?;
        let final_path = dir.join(format!("checkpoint.{:08}", self.last_seq));
        fs::rename(&self.tmp, &final_path).map_err(Error::io("rename", &self.tmp))?;
        sync_dir(dir)?;
        let listing = scan_dir(dir)?;
        for seq in listing.segments.into_iter().filter(|s| *s <= self.last_seq) {
            let p = dir.join(segment_name(seq));
            fs::remove_file(&p).map_err(Error::io("remove", &p))?;
        }
        for p in listing.stale {
            let _ = fs::remove_file(&p);
        }
        self.wal.metrics.checkpoints.inc();
        Ok(())
    }
}

fn open_segment(dir: &Path, seq: u64) -> Result<File, Error> {
    let path = dir.join(segment_name(seq));
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(Error::io("create", &path))?;
    sync_dir(dir)?;
    Ok(f)
}

/// fsyncs a directory so that created and renamed entries survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync", dir))
}

/// Truncates segment `seq` at `offset` and deletes every later segment (their records come after
/// a gap and cannot be applied safely).
pub fn repair(dir: &Path, seq: u64, offset: u64, later: &[u64]) -> Result<(), Error> {
    let path = dir.join(segment_name(seq));
    let f = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    f.set_len(offset).map_err(Error::io("truncate", &path))?;
    f.sync_all().map_err(Error::io("fsync", &path))?;
    for s in later {
        let p = dir.join(segment_name(*s));
        fs::remove_file(&p).map_err(Error::io("remove", &p))?;
    }
    Ok(())
}

/// Path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(segment_name(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let mut buf = Vec::new();
        encode_series(&mut buf, &[(7, &l)]);
        let samples = vec![
            RefSample {
                r: 7,
                t: 1000,
                v: 1.5,
            },
            RefSample {
                r: 7,
                t: 500,
                v: f64::NAN,
            },
        ];
        encode_samples(&mut buf, &samples);
        encode_series_chunk(&mut buf, 7, 2, &[1, 2, 3]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("00000001");
        fs::write(&p, &buf).unwrap();
        let recs = read_file(&p).unwrap();
        assert!(recs.corrupt_at.is_none());
        let decoded: Vec<Record> = recs
            .payloads
            .iter()
            .map(|p| decode_record(p).unwrap())
            .collect();
        assert_eq!(decoded[0], Record::Series(vec![(7, l)]));
        match &decoded[1] {
            Record::Samples(s) => {
                assert_eq!(s[0], samples[0]);
                assert!(s[1].v.is_nan() && s[1].t == 500);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decoded[2],
            Record::SeriesChunk {
                r: 7,
                count: 2,
                bytes: vec![1, 2, 3]
            }
        );
    }

    #[test]
    fn torn_tail_is_found_at_the_last_good_record() {
        let mut buf = Vec::new();
        for i in 0..10 {
            encode_samples(
                &mut buf,
                &[RefSample {
                    r: 1,
                    t: i,
                    v: i as f64,
                }],
            );
        }
        let one = buf.len() / 10;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("00000001");
        for cut in [buf.len() - 1, buf.len() - one + 3, one * 4 + 2] {
            fs::write(&p, &buf[..cut]).unwrap();
            let recs = read_file(&p).unwrap();
            assert_eq!(recs.payloads.len(), cut / one);
            assert_eq!(recs.corrupt_at.unwrap().0, (cut / one * one) as u64);
        }
        // A flipped bit in the middle stops reading there.
        let mut bad = buf.clone();
        bad[one * 6 + FRAME_HEADER + 2] ^= 0x10;
        fs::write(&p, &bad).unwrap();
        let recs = read_file(&p).unwrap();
        assert_eq!(recs.payloads.len(), 6);
        assert!(recs.corrupt_at.unwrap().1.contains("checksum"));
    }

    #[test]
    fn garbage_payload_does_not_panic() {
        for seed in 0..200u32 {
            let junk: Vec<u8> = (0..64)
                .map(|i| (seed.wrapping_mul(31) ^ (i * 7)) as u8)
                .collect();
            for t in 1..=3u8 {
                let mut p = vec![t];
                p.extend_from_slice(&junk);
                let _ = decode_record(&p);
            }
        }
    }
}
