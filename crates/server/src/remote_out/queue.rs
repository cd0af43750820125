//! The on-disk queue of one remote write destination. Each commit to medic's store appends
//! one record (its samples as a `WriteRequest`) to numbered segment files, in commit order,
//! before the commit is acknowledged. The sender reads records in the same order from a
//! cursor it saves only after the destination accepted them, and deletes segments it has
//! passed. A restart — `kill -9` included — resumes from the saved cursor: nothing medic
//! acknowledged is lost on the way out; a batch may be sent twice (remote write is
//! idempotent for the same samples).
//!
//! Record framing: length (u32 LE), CRC-32 of the payload (u32 LE), payload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Segments are cut at this size.
pub(super) const SEGMENT_BYTES: u64 = 16 << 20;
/// A record larger than this is corrupt (medic writes one commit per record).
const MAX_RECORD: u32 = 256 << 20;

/// Where the sender is: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub seq: u64,
    pub offset: u64,
}

/// The queue's files.
pub struct Queue {
    dir: PathBuf,
    writer: Mutex<Writer>,
    max_bytes: u64,
}

struct Writer {
    seq: u64,
    file: File,
    size: u64,
    /// Bytes written since the last fsync.
    unsynced: bool,
}

fn segment(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.seg"))
}

/// The segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// The length of the valid prefix of a segment: whole records with good checksums.
fn valid_prefix(path: &Path) -> io::Result<u64> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut at = 0usize;
    while let Some((len, _)) = frame_at(&data, at) {
        at += 8 + len;
    }
    Ok(at as u64)
}

/// The record at `at` in `data` when it is whole and its checksum holds: (length, payload).
fn frame_at(data: &[u8], at: usize) -> Option<(usize, &[u8])> {
    let head = data.get(at..at + 8)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = data.get(at + 8..at + 8 + len as usize)?;
    (crc32fast::hash(payload) == crc).then_some((len as usize, payload))
}

impl Queue {
    /// Opens the queue in `dir` (creating it). A torn record at the end of the newest segment
    /// — a write cut by a crash, never acknowledged — is cut off. `max_bytes` bounds the
    /// queue on disk: beyond it the oldest segments are dropped (and counted by the caller).
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Queue> {
        fs::create_dir_all(dir)?;
        let seqs = segments(dir)?;
        let seq = seqs.last().copied().unwrap_or(1);
        let path = segment(dir, seq);
        let size = if path.exists() {
            let valid = valid_prefix(&path)?;
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(valid)?;
            valid
        } else {
            0
        };
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Queue {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer {
                seq,
                file,
                size,
                unsynced: false,
            }),
            max_bytes,
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record, handed to the OS before it returns (it survives `kill -9`);
    /// `sync` makes it survive a power loss too.
    pub fn append(&self, payload: &[u8]) -> io::Result<()> {
        let mut w = self.writer();
        if w.size >= SEGMENT_BYTES {
            w.file.sync_all()?;
            let seq = w.seq + 1;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment(&self.dir, seq))?;
            *w = Writer {
                seq,
                file,
                size: 0,
                unsynced: false,
            };
        }
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        w.file.write_all(&frame)?;
        w.size += frame.len() as u64;
        w.unsynced = true;
        Ok(())
    }

    /// Flushes what was appended to stable storage.
    pub fn sync(&self) -> io::Result<()> {
        let mut w = self.writer();
        if w.unsynced {
            w.file.sync_data()?;
            w.unsynced = false;
        }
        Ok(())
    }

    /// The end of what has been written: every record before it is whole.
    pub fn end(&self) -> Cursor {
        let w = self.writer();
        Cursor {
            seq: w.seq,
            offset: w.size,
        }
    }

    /// The cursor the sender saved last (the start of the oldest segment when none).
    pub fn saved_cursor(&self) -> io::Result<Cursor> {
        match fs::read_to_string(self.dir.join("cursor")) {
            Ok(s) => {
                let (seq, offset) = s
                    .trim()
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .ok_or_else(|| io::Error::other(format!("bad cursor file: {s:?}")))?;
                Ok(Cursor { seq, offset })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Cursor {
                seq: segments(&self.dir)?.first().copied().unwrap_or(1),
                offset: 0,
            }),
            Err(e) => Err(e),
        }
    }

    /// Saves the sender's position (atomically) and deletes the segments before it.
    pub fn save_cursor(&self, c: Cursor) -> io::Result<()> {
        let tmp = self.dir.join("cursor.tmp");
        {
            let mut f = File::create(&tmp)?;
            write!(f, "{}:{}", c.seq, c.offset)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join("cursor"))?;
        for s in segments(&self.dir)? {
            if s < c.seq {
                fs::remove_file(segment(&self.dir, s))?;
            }
        }
        Ok(())
    }

    /// Bytes on disk not yet sent, from `from`.
    pub fn pending_bytes(&self, from: Cursor) -> u64 {
        let end = self.end();
        let mut total = 0;
        for s in segments(&self.dir).unwrap_or_default() {
            if s < from.seq {
                continue;
            }
            let size = if s == end.seq {
                end.offset
            } else {
                fs::metadata(segment(&self.dir, s)).map_or(0, |m| m.len())
            };
            total += size.saturating_sub(if s == from.seq { from.offset } else { 0 });
        }
        total
    }

    /// When the queue holds more than its bound: the cursor just past the oldest segments
    /// that must go (the caller counts their samples as dropped). `None` when within bounds.
    pub fn over_bound(&self, from: Cursor) -> Option<Cursor> {
        if self.pending_bytes(from) <= self.max_bytes {
            return None;
        }
        let end = self.end();
        (from.seq < end.seq).then_some(Cursor {
            seq: from.seq + 1,
            offset: 0,
        })
    }

    /// Reads whole records from `from`, up to `max_bytes` of payload (at least one record when
    /// there is one) and not past `end()`. Returns them with the cursor after the last.
    pub fn read(&self, from: Cursor, max_bytes: usize) -> io::Result<(Vec<Vec<u8>>, Cursor)> {
        let end = self.end();
        let mut at = from;
        let mut out = Vec::new();
        let mut taken = 0usize;
        loop {
            let limit = if at.seq == end.seq {
                end.offset
            } else if at.seq < end.seq {
                match fs::metadata(segment(&self.dir, at.seq)) {
                    Ok(m) => m.len(),
                    // Dropped (over the bound) or never written: go on with the next one.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => u64::MAX,
                    Err(e) => return Err(e),
                }
            } else {
                return Ok((out, at));
            };
            if at.offset >= limit || limit == u64::MAX {
                if at.seq >= end.seq {
                    return Ok((out, at));
                }
                at = Cursor {
                    seq: at.seq + 1,
                    offset: 0,
                };
                continue;
            }
            let mut data = Vec::new();
            let mut f = File::open(segment(&self.dir, at.seq))?;
            f.seek(SeekFrom::Start(at.offset))?;
            f.take(limit - at.offset).read_to_end(&mut data)?;
            let mut pos = 0usize;
            while let Some((len, payload)) = frame_at(&data, pos) {
                if !out.is_empty() && taken + len > max_bytes {
                    at.offset += pos as u64;
                    return Ok((out, at));
                }
                out.push(payload.to_vec());
                taken += len;
                pos += 8 + len;
            }
            if pos < data.len() {
                // A damaged record inside a finished segment: the rest of it is skipped.
                tracing::warn!(
                    segment = %segment(&self.dir, at.seq).display(),
                    offset = at.offset + pos as u64,
                    "remote write queue: damaged record; skipping the rest of the segment"
                );
            }
            at.offset = limit;
            if taken >= max_bytes {
                return Ok((out, at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_across_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), u64::MAX).unwrap();
        for i in 0..10u8 {
            q.append(&[i; 100]).unwrap();
        }
        let start = q.saved_cursor().unwrap();
        let (got, after) = q.read(start, 350).unwrap();
        assert_eq!(got.len(), 3, "stops at the byte budget");
        assert_eq!(got[2], vec![2u8; 100]);
        q.save_cursor(after).unwrap();
        drop(q);
        // A torn record at the end, as a crash mid-write leaves it.
        let seg = segment(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        let q = Queue::open(dir.path(), u64::MAX).unwrap();
        q.append(&[99; 10]).unwrap();
        let (got, end) = q.read(q.saved_cursor().unwrap(), usize::MAX).unwrap();
        assert_eq!(got.len(), 8);
        assert_eq!(got[0], vec![3u8; 100]);
        assert_eq!(got[7], vec![99u8; 10]);
        assert_eq!(end, q.end());
        assert_eq!(q.pending_bytes(end), 0);
    }

    #[test]
    fn segments_roll_and_are_deleted_once_passed() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), u64::MAX).unwrap();
        let big = vec![7u8; 5 << 20];
        for _ in 0..8 {
            q.append(&big).unwrap();
        }
        assert!(segments(dir.path()).unwrap().len() >= 2);
        let mut at = q.saved_cursor().unwrap();
        let mut n = 0;
        loop {
            let (got, next) = q.read(at, 1).unwrap();
            if got.is_empty() {
                break;
            }
            n += got.len();
            at = next;
            q.save_cursor(at).unwrap();
        }
        assert_eq!(n, 8);
        assert_eq!(segments(dir.path()).unwrap(), vec![q.end().seq]);
    }

    #[test]
    fn over_its_bound_the_oldest_segment_goes() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), 20 << 20).unwrap();
        let big = vec![1u8; 5 << 20];
        for _ in 0..6 {
            q.append(&big).unwrap();
        }
        let from = q.saved_cursor().unwrap();
        let next = q.over_bound(from).expect("30 MiB is over 20");
        assert_eq!(next, Cursor { seq: 2, offset: 0 });
    }
}
