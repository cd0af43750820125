//! Parts: immutable files of flushed entries, one per UTC hour a flush touched.
//!
//! ```text
//! "MEDLOGP2"
//! chunk*        the entries of one stream (≤ 1 MiB of lines) in two zstd frames: times
//!               (count, timestamp deltas, line lengths) then text (lines and their
//!               metadata); `codec::put_columns`
//! index         uvarint streams; per stream: labels, uvarint chunks; per chunk: uvarint offset,
//!               uvarint length (both frames), uvarint length of the times frame, u32 crc32
//!               (of both compressed frames), varint min_ts, varint max_ts, uvarint entries,
//!               uvarint raw bytes of times, uvarint raw bytes of text;
//!               then uvarint wal_through (WAL segments below it are all in parts)
//! footer        u64 index offset, u32 index length, u32 crc32(index), "MEDLOGE1"
//! ```
//!
//! A part is written to `<name>.tmp`, fsynced and renamed, so a part either exists whole or not
//! at all. The index is read (and its checksum checked) when the store opens; a chunk's checksum
//! is checked each time it is read.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use medic_model::Labels;

use super::codec::{self, Reader};
use super::head::matches;
use crate::entry::{Entry, Stream};

const MAGIC: &[u8; 8] = b"MEDLOGP2";
const END: &[u8; 8] = b"MEDLOGE1";
const FOOTER: usize = 8 + 4 + 4 + 8;
/// Lines per chunk are cut at this many raw bytes.
const CHUNK_RAW: usize = 1 << 20;
/// A chunk or index larger than this is damage.
const MAX_BLOCK: u64 = 256 << 20;

pub struct ChunkMeta {
    offset: u64,
    /// Compressed bytes of both columns; the times column is the first `times_len`.
    len: u64,
    times_len: u64,
    crc: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub entries: u64,
    /// Decompressed sizes of the two columns.
    times_raw: u64,
    pub raw: u64,
}

pub struct PartStream {
    pub labels: Labels,
    pub chunks: Vec<ChunkMeta>,
}

/// An open part.
pub struct Part {
    pub path: PathBuf,
    file: File,
    pub streams: Vec<PartStream>,
    pub min_ts: i64,
    pub max_ts: i64,
    pub bytes: u64,
    pub entries: u64,
    pub wal_through: u64,
}

/// Why a part could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: damaged ({what})")]
    Damaged { path: String, what: &'static str },
    /// The query's byte budget is spent.
    #[error("the query would decode more than its byte budget")]
    OverBudget,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PartError + '_ {
    move |source| PartError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn damaged(path: &Path, what: &'static str) -> PartError {
    PartError::Damaged {
        path: path.display().to_string(),
        what,
    }
}

/// Writes `streams` (entries sorted) as the part `path`; returns it opened.
pub fn write(
    path: &Path,
    streams: &[(&Labels, &[Entry])],
    wal_through: u64,
    level: i32,
) -> Result<Part, PartError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    let mut offset = MAGIC.len() as u64;
    f.write_all(MAGIC).map_err(io(&tmp))?;
    let mut index = Vec::new();
    codec::put_uvarint(&mut index, streams.len() as u64);
    let (mut times, mut text) = (Vec::new(), Vec::new());
    for (labels, entries) in streams {
        codec::put_labels(&mut index, labels);
        let groups = chunk_groups(entries);
        codec::put_uvarint(&mut index, groups.len() as u64);
        for g in groups {
            times.clear();
            text.clear();
            codec::put_columns(g, &mut times, &mut text);
            let zt = zstd::bulk::compress(&times, level).map_err(io(&tmp))?;
            let zx = zstd::bulk::compress(&text, level).map_err(io(&tmp))?;
            f.write_all(&zt).map_err(io(&tmp))?;
            f.write_all(&zx).map_err(io(&tmp))?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&zt);
            crc.update(&zx);
            codec::put_uvarint(&mut index, offset);
            codec::put_uvarint(&mut index, (zt.len() + zx.len()) as u64);
            codec::put_uvarint(&mut index, zt.len() as u64);
            index.extend_from_slice(&crc.finalize().to_le_bytes());
            codec::put_varint(&mut index, g[0].ts);
            codec::put_varint(&mut index, g[g.len() - 1].ts);
            codec::put_uvarint(&mut index, g.len() as u64);
            codec::put_uvarint(&mut index, times.len() as u64);
            codec::put_uvarint(&mut index, text.len() as u64);
            offset += (zt.len() + zx.len()) as u64;
        }
    }
    codec::put_uvarint(&mut index, wal_through);
    f.write_all(&index).map_err(io(&tmp))?;
    let mut footer = Vec::with_capacity(FOOTER);
    footer.extend_from_slice(&offset.to_le_bytes());
    footer.extend_from_slice(&(index.len() as u32).to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
    footer.extend_from_slice(END);
    f.write_all(&footer).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    open(path)
}

fn chunk_groups(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, e) in entries.iter().enumerate() {
        size += e.line.len() + 8;
        if size >= CHUNK_RAW {
            out.push(&entries[start..=i]);
            start = i + 1;
            size = 0;
        }
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// Opens a part, reading and checking its index.
pub fn open(path: &Path) -> Result<Part, PartError> {
    let file = File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len < (MAGIC.len() + FOOTER) as u64 {
        return Err(damaged(path, "too short"));
    }
    let mut footer = [0u8; FOOTER];
    file.read_exact_at(&mut footer, len - FOOTER as u64)
        .map_err(io(path))?;
    if &footer[16..] != END {
        return Err(damaged(path, "no end marker"));
    }
    let index_at = u64::from_le_bytes(footer[..8].try_into().expect("8"));
    let index_len = u64::from(u32::from_le_bytes(footer[8..12].try_into().expect("4")));
    let crc = u32::from_le_bytes(footer[12..16].try_into().expect("4"));
    if index_len > MAX_BLOCK || index_at + index_len + FOOTER as u64 != len {
        return Err(damaged(path, "index out of bounds"));
    }
    let mut index = vec![0u8; index_len as usize];
    file.read_exact_at(&mut index, index_at).map_err(io(path))?;
    if crc32fast::hash(&index) != crc {
        return Err(damaged(path, "index checksum"));
    }
    let bad = |_| damaged(path, "index");
    let mut r = Reader::new(&index);
    let n = r.uvarint().map_err(bad)? as usize;
    let mut streams = Vec::with_capacity(n.min(1 << 16));
    let (mut min_ts, mut max_ts, mut entries) = (i64::MAX, i64::MIN, 0);
    for _ in 0..n {
        let labels = codec::read_labels(&mut r).map_err(bad)?;
        let c = r.uvarint().map_err(bad)? as usize;
        let mut chunks = Vec::with_capacity(c.min(1 << 16));
        for _ in 0..c {
            let m = ChunkMeta {
                offset: r.uvarint().map_err(bad)?,
                len: r.uvarint().map_err(bad)?,
                times_len: r.uvarint().map_err(bad)?,
                crc: r.u32().map_err(bad)?,
                min_ts: r.varint().map_err(bad)?,
                max_ts: r.varint().map_err(bad)?,
                entries: r.uvarint().map_err(bad)?,
                times_raw: r.uvarint().map_err(bad)?,
                raw: r.uvarint().map_err(bad)?,
            };
            if m.len > MAX_BLOCK
                || m.raw > MAX_BLOCK
                || m.times_raw > MAX_BLOCK
                || m.times_len > m.len
                || m.offset + m.len > index_at
            {
                return Err(damaged(path, "chunk out of bounds"));
            }
            min_ts = min_ts.min(m.min_ts);
            max_ts = max_ts.max(m.max_ts);
            entries += m.entries;
            chunks.push(m);
        }
        streams.push(PartStream { labels, chunks });
    }
    let wal_through = r.uvarint().map_err(bad)?;
    Ok(Part {
        path: path.to_path_buf(),
        file,
        streams,
        min_ts,
        max_ts,
        bytes: len,
        entries,
        wal_through,
    })
}

impl Part {
    /// Appends the matching streams' entries in `[start, end)`; `budget` is the raw bytes the
    /// query may still decode, spent here.
    pub fn select(
        &self,
        sel: &crate::logql::Selection<'_>,
        budget: &mut u64,
        out: &mut Vec<Stream>,
    ) -> Result<(), PartError> {
        let (matchers, start, end) = (sel.matchers, sel.start, sel.end);
        if end <= self.min_ts || start > self.max_ts {
            return Ok(());
        }
        for s in self.streams.iter().filter(|s| matches(&s.labels, matchers)) {
            let mut entries = Vec::new();
            let mut chunk = Vec::new();
            for c in s
                .chunks
                .iter()
                .filter(|c| c.max_ts >= start && c.min_ts < end)
            {
                let cost = if sel.lines {
                    c.times_raw + c.raw
                } else {
                    c.times_raw
                };
                *budget = budget.checked_sub(cost).ok_or(PartError::OverBudget)?;
                if c.min_ts >= start && c.max_ts < end {
                    self.read_chunk(c, sel, &mut entries)?;
                } else {
                    chunk.clear();
                    self.read_chunk(c, sel, &mut chunk)?;
                    entries.extend(chunk.drain(..).filter(|e| e.ts >= start && e.ts < end));
                }
            }
            if !entries.is_empty() {
                out.push(Stream {
                    labels: s.labels.clone(),
                    entries,
                });
            }
        }
        Ok(())
    }

    /// Decodes a chunk: only its times when lines are not wanted. One whose text cannot hold
    /// every needle (searched in the decompressed text, where each line lies whole) adds
    /// nothing. Both columns are read for the checksum; the text is decompressed only when
    /// needed.
    fn read_chunk(
        &self,
        c: &ChunkMeta,
        sel: &crate::logql::Selection<'_>,
        out: &mut Vec<Entry>,
    ) -> Result<(), PartError> {
        let mut z = vec![0u8; c.len as usize];
        self.file
            .read_exact_at(&mut z, c.offset)
            .map_err(io(&self.path))?;
        if crc32fast::hash(&z) != c.crc {
            return Err(damaged(&self.path, "chunk checksum"));
        }
        let (zt, zx) = z.split_at(c.times_len as usize);
        let bad = |_| damaged(&self.path, "chunk compression");
        let times = zstd::bulk::decompress(zt, c.times_raw as usize).map_err(bad)?;
        let text = if sel.lines || !sel.needles.is_empty() {
            Some(zstd::bulk::decompress(zx, c.raw as usize).map_err(bad)?)
        } else {
            None
        };
        if let Some(t) = &text {
            if !sel
                .needles
                .iter()
                .all(|n| memchr::memmem::find(t, n.as_bytes()).is_some())
            {
                return Ok(());
            }
        }
        let text = if sel.lines { text.as_deref() } else { None };
        codec::read_columns(&times, text, out).map_err(|_| damaged(&self.path, "chunk entries"))
    }
}
