//! The log WAL: numbered segment files `wal/<n>.wal`, each a sequence of frames
//! `[u32 length][u32 crc32(payload)][payload]` (little-endian), the payload one redacted push
//! and the checkpoints written with it (`codec::encode_record`).
//! A push is acknowledged only after its frame is fsynced; concurrent pushes share one fsync
//! (group commit). Replay stops at the first torn or damaged frame of a segment and truncates it
//! there, so a crash mid-write loses only what was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::codec;
use crate::entry::Push;

/// A frame larger than this is damage, not data.
const MAX_FRAME: usize = 512 << 20;

pub struct Wal {
    dir: PathBuf,
    /// The open segment: its number, the file and how many frames were written to it.
    current: Mutex<Segment>,
    /// Serialises fsyncs; holds the highest write sequence known durable.
    synced: Mutex<u64>,
}

struct Segment {
    n: u64,
    file: File,
    written: u64,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}.wal"))
}

/// The segment numbers present, in order.
pub fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".wal"))
            .and_then(|s| s.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads every intact push of `dir`'s segments numbered `>= from`, truncating a damaged tail.
/// Returns the pushes with their checkpoints, and the segments found damaged.
pub fn replay(dir: &Path, from: u64) -> std::io::Result<(Vec<(Push, codec::Checkpoints)>, usize)> {
    let mut out = Vec::new();
    let mut damaged = 0;
    for n in segments(dir)?.into_iter().filter(|n| *n >= from) {
        let path = seg_path(dir, n);
        let mut buf = Vec::new();
        File::open(&path)?.read_to_end(&mut buf)?;
        let mut pos = 0;
        while pos + 8 <= buf.len() {
            let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes"));
            let Some(payload) = buf.get(pos + 8..pos + 8 + len).filter(|_| len <= MAX_FRAME) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            match codec::decode_record(payload) {
                Ok((p, c)) => out.push((p, c)),
                Err(_) => break,
            }
            pos += 8 + len;
        }
        if pos < buf.len() {
            damaged += 1;
            tracing::warn!(segment = %path.display(), at = pos, dropped_bytes = buf.len() - pos, "log WAL: truncating a torn or damaged tail");
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(pos as u64)?;
        }
    }
    Ok((out, damaged))
}

impl Wal {
    /// Opens `dir`, starting a new segment after the highest present.
    pub fn open(dir: &Path) -> std::io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let n = segments(dir)?.last().copied().unwrap_or(0) + 1;
        let file = create(dir, n)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            current: Mutex::new(Segment {
                n,
                file,
                written: 0,
            }),
            synced: Mutex::new(0),
        })
    }

    /// Writes one record (`codec::encode_record`) and returns once it is durable. `apply` runs under the write lock after
    /// the frame is written, so the head sees pushes in WAL order.
    pub fn append(&self, payload: &[u8], apply: impl FnOnce()) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let (n, seq, file) = {
            let mut seg = self.current.lock().expect("wal lock");
            seg.file.write_all(&frame)?;
            seg.written += 1;
            apply();
            (seg.n, (seg.n << 32) | seg.written, seg.file.try_clone()?)
        };
        let mut synced = self.synced.lock().expect("wal sync lock");
        if *synced < seq {
            // Whatever was written to this segment before this fsync is durable after it (a
            // rotation fsyncs the segment it closes).
            let upto = {
                let seg = self.current.lock().expect("wal lock");
                if seg.n == n {
                    (seg.n << 32) | seg.written
                } else {
                    seq
                }
            };
            file.sync_data()?;
            *synced = upto.max(seq);
        }
        Ok(())
    }

    /// Starts a new segment; returns its number. Pushes before the call are in lower segments.
    /// `then` runs under the WAL lock once the closed segment is durable, so no push can come
    /// between (the lock order everywhere is WAL, then head).
    pub fn rotate<T>(&self, then: impl FnOnce() -> T) -> std::io::Result<(u64, T)> {
        let mut seg = self.current.lock().expect("wal lock");
        seg.file.sync_data()?;
        let n = seg.n + 1;
        seg.file = create(&self.dir, n)?;
        seg.n = n;
        seg.written = 0;
        Ok((n, then()))
    }

    /// Deletes segments numbered below `n` (their pushes are in parts now).
    pub fn remove_below(&self, n: u64) -> std::io::Result<()> {
        for s in segments(&self.dir)?.into_iter().filter(|s| *s < n) {
            fs::remove_file(seg_path(&self.dir, s))?;
        }
        Ok(())
    }
}

fn create(dir: &Path, n: u64) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(seg_path(dir, n))?;
    File::open(dir)?.sync_all()?;
    Ok(f)
}
