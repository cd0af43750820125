//! Tailing local files. Each poll reads the complete new lines of every file the configured
//! globs match and returns them with the positions they reach; the caller stores both in one
//! WAL record ([`LogStore::push_with_checkpoints`](crate::store::LogStore::push_with_checkpoints))
//! and only then calls [`Tailer::commit`]. So a crash loses nothing read and repeats nothing
//! stored: the next start resumes from the stored positions.
//!
//! Files are followed by identity (device and inode), not by name:
//! - renamed away (`app.log` → `app.log.1`, a new `app.log`): the old file is read to its end
//!   under its new name, then the new one from the start — also when the rename happened while
//!   medic was down;
//! - truncated in place (copytruncate): reading starts again at 0.
//!
//! A last line without its newline waits for it (up to `max_line_bytes`, then it is cut).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use medic_model::Labels;
use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Stream};

/// The checkpoint key the tailer's positions are stored under.
pub const CHECKPOINT_KEY: &str = "tail";

/// One `logs.files` entry: a glob and the labels of its streams (`filename` is added).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub path: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Where reading of one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    /// crc32 of the file's first bytes (up to 64) when last read: a file truncated and
    /// rewritten past the old offset between two polls is told apart by them changing.
    #[serde(default)]
    pub head: u32,
}

const HEAD_BYTES: u64 = 64;

/// crc32 of the first `min(n, 64)` bytes of `path`.
fn head_crc(path: &Path, n: u64) -> std::io::Result<u32> {
    let mut buf = Vec::new();
    File::open(path)?
        .take(n.min(HEAD_BYTES))
        .read_to_end(&mut buf)?;
    Ok(crc32fast::hash(&buf))
}

/// The positions of every followed file, by path as configured.
pub type Positions = BTreeMap<String, Position>;

/// The tailer's state: committed positions, and the ones a poll reached.
pub struct Tailer {
    specs: Vec<FileSpec>,
    committed: Positions,
    pending: Positions,
    max_line: usize,
    /// Most bytes read per poll, over all files.
    max_read: u64,
}

impl Tailer {
    /// A tailer starting from `positions` (as stored; empty on first start: files are read
    /// from their start).
    pub fn new(specs: Vec<FileSpec>, positions: Positions, max_line: usize, max_read: u64) -> Self {
        Tailer {
            specs,
            pending: positions.clone(),
            committed: positions,
            max_line,
            max_read,
        }
    }

    /// Positions as a checkpoint value.
    pub fn encode(p: &Positions) -> String {
        serde_json::to_string(p).expect("positions serialise")
    }

    pub fn decode(s: &str) -> Positions {
        serde_json::from_str(s).unwrap_or_default()
    }

    /// Reads what is new. Returns the streams and the positions after them (not yet
    /// committed). Unreadable files are skipped and reported.
    pub fn poll(&mut self, now_ns: i64) -> (Vec<Stream>, Positions, Vec<String>) {
        self.pending = self.committed.clone();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut budget = self.max_read;
        let mut seen = BTreeSet::new();
        for spec in self.specs.clone() {
            let paths = match glob::glob(&spec.path) {
                Ok(p) => p.filter_map(Result::ok).collect::<Vec<_>>(),
                Err(e) => {
                    errors.push(format!("{}: {e}", spec.path));
                    continue;
                }
            };
            for path in paths {
                let key = path.display().to_string();
                if !seen.insert(key.clone()) || budget == 0 {
                    continue;
                }
                match self.read_file(&path, &key, &spec, now_ns, &mut budget) {
                    Ok(Some(s)) => out.extend(s),
                    Ok(None) => {}
                    Err(e) => errors.push(format!("{key}: {e}")),
                }
            }
        }
        // Files that are gone are forgotten once their rotated copy is read.
        self.pending.retain(|k, _| seen.contains(k));
        (out, self.pending.clone(), errors)
    }

    /// The positions last committed.
    pub fn committed(&self) -> &Positions {
        &self.committed
    }

    /// The positions of a poll are durable: the next poll starts from them.
    pub fn commit(&mut self, positions: Positions) {
        self.committed = positions;
    }

    fn read_file(
        &mut self,
        path: &Path,
        key: &str,
        spec: &FileSpec,
        now_ns: i64,
        budget: &mut u64,
    ) -> std::io::Result<Option<Vec<Stream>>> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_file() {
            return Ok(None);
        }
        let id = (meta.dev(), meta.ino());
        let mut streams = Vec::new();
        let mut offset = 0;
        if let Some(p) = self.pending.get(key).copied() {
            if (p.dev, p.ino) == id {
                // Truncated in place (shorter, or its first bytes changed): start again.
                let same = meta.len() >= p.offset && head_crc(path, p.offset)? == p.head;
                offset = if same { p.offset } else { 0 };
            } else {
                // Rotated: finish the old file under its new name (its last line needs no
                // newline: none will come), then any generation rotated after it that was never
                // read (several rotations while medic was down), oldest first. Out of budget,
                // the position stays on the file being finished.
                let mut cur = p;
                let mut visited = BTreeSet::new();
                while let Some(old) = find_by_inode(path, cur.dev, cur.ino) {
                    visited.insert((cur.dev, cur.ino));
                    let read = ReadSpec {
                        max_line: self.max_line,
                        spec,
                        name: path,
                        now_ns,
                        last: true,
                    };
                    let (s, reached, done) = read_lines(&old, cur.offset, budget, &read)?;
                    streams.extend(s);
                    if !done {
                        self.pending.insert(
                            key.to_string(),
                            Position {
                                offset: reached,
                                ..cur
                            },
                        );
                        return Ok(Some(streams));
                    }
                    match next_generation(path, &old, id, &visited) {
                        Some((dev, ino)) => {
                            cur = Position {
                                dev,
                                ino,
                                offset: 0,
                                head: 0,
                            }
                        }
                        None => break,
                    }
                }
            }
        }
        let read = ReadSpec {
            max_line: self.max_line,
            spec,
            name: path,
            now_ns,
            last: false,
        };
        let (s, reached, _) = read_lines(path, offset, budget, &read)?;
        streams.extend(s);
        let head = head_crc(path, reached)?;
        self.pending.insert(
            key.to_string(),
            Position {
                dev: id.0,
                ino: id.1,
                offset: reached,
                head,
            },
        );
        Ok(Some(streams))
    }
}

/// The oldest rotated generation of `live` (a sibling named `<live name>.…` or `<live name>-…`,
/// not compressed) changed at or after `finished`, other than the live file and those already
/// read: what was rotated away after `finished` while nobody read it.
fn next_generation(
    live: &Path,
    finished: &Path,
    live_id: (u64, u64),
    visited: &BTreeSet<(u64, u64)>,
) -> Option<(u64, u64)> {
    let after = std::fs::metadata(finished)
        .and_then(|m| m.modified())
        .ok()?;
    let base = live.file_name()?.to_str()?;
    let mut found: Vec<(std::time::SystemTime, (u64, u64))> = std::fs::read_dir(live.parent()?)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(base)?;
            let compressed = [".gz", ".bz2", ".xz", ".zst", ".zip"]
                .iter()
                .any(|x| name.ends_with(x));
            if !(rest.starts_with('.') || rest.starts_with('-')) || compressed {
                return None;
            }
            let m = e.metadata().ok()?;
            let id = (m.dev(), m.ino());
            let t = m.modified().ok()?;
            (m.is_file() && id != live_id && !visited.contains(&id) && t >= after)
                .then_some((t, id))
        })
        .collect();
    found.sort();
    found.first().map(|f| f.1)
}

/// A file in `path`'s directory with the given identity (a rotated copy).
fn find_by_inode(path: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    let dir = path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.dev() == dev && m.ino() == ino && m.is_file())
        })
}

/// How to read: the limits, the labels, and whether the file is finished (rotated away).
struct ReadSpec<'a> {
    max_line: usize,
    spec: &'a FileSpec,
    name: &'a Path,
    now_ns: i64,
    last: bool,
}

/// The complete lines of `file` from `offset`; the offset after the last one read, and
/// whether that is the end of the file.
fn read_lines(
    file: &Path,
    offset: u64,
    budget: &mut u64,
    r: &ReadSpec<'_>,
) -> std::io::Result<(Vec<Stream>, u64, bool)> {
    let (max_line, spec, name, now_ns) = (r.max_line, r.spec, r.name, r.now_ns);
    let mut f = File::open(file)?;
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok((Vec::new(), offset, true));
    }
    let want = (len - offset).min(*budget);
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut buf)?;
    let mut entries = Vec::new();
    let mut consumed = 0usize;
    let mut start = 0usize;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            let line = &buf[start..i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            entries.push(Entry::new(
                now_ns + entries.len() as i64,
                String::from_utf8_lossy(line).into_owned(),
            ));
            start = i + 1;
            consumed = start;
        }
    }
    let whole = offset + buf.len() as u64 == len;
    if r.last && whole && consumed < buf.len() {
        // The end of a rotated file: its last line is complete.
        entries.push(Entry::new(
            now_ns + entries.len() as i64,
            String::from_utf8_lossy(&buf[consumed..]).into_owned(),
        ));
        consumed = buf.len();
    } else if consumed == 0 && buf.len() >= max_line {
        // A line longer than the limit without its newline is cut rather than held forever.
        entries.push(Entry::new(
            now_ns,
            String::from_utf8_lossy(&buf[..max_line]).into_owned(),
        ));
        consumed = max_line;
    }
    *budget = budget.saturating_sub(consumed as u64);
    let mut labels = spec.labels.clone();
    labels.insert("filename".into(), name.display().to_string());
    let streams = if entries.is_empty() {
        Vec::new()
    } else {
        vec![Stream {
            labels: Labels::from_pairs(labels),
            entries,
        }]
    };
    let reached = offset + consumed as u64;
    Ok((streams, reached, reached == len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(streams: &[Stream]) -> Vec<String> {
        streams
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.line.clone()))
            .collect()
    }

    fn append(p: &Path, s: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
            .write_all(s.as_bytes())
            .unwrap();
    }

    #[test]
    fn follows_rename_and_truncation_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let spec = FileSpec {
            path: dir.path().join("*.log").display().to_string(),
            labels: BTreeMap::from([("job".into(), "app".into())]),
        };
        let mut t = Tailer::new(vec![spec.clone()], Positions::new(), 1 << 16, 1 << 20);
        append(&log, "a\nb\npartial");
        let (s, p, e) = t.poll(1);
        assert!(e.is_empty());
        assert_eq!(lines(&s), ["a", "b"]);
        assert_eq!(
            s[0].labels.get("filename"),
            Some(log.display().to_string().as_str())
        );
        // Not committed: the same lines come again.
        assert_eq!(lines(&t.poll(2).0), ["a", "b"]);
        t.commit(p);
        append(&log, " line\nc\n");
        let (s, p, _) = t.poll(3);
        assert_eq!(lines(&s), ["partial line", "c"]);
        t.commit(p.clone());
        // Rotation by rename while "down": a new tailer from the stored positions.
        append(&log, "d\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "e\n");
        let mut t = Tailer::new(
            vec![spec.clone()],
            Tailer::decode(&Tailer::encode(&p)),
            1 << 16,
            1 << 20,
        );
        let (s, p, _) = t.poll(4);
        assert_eq!(lines(&s), ["d", "e"]);
        t.commit(p);
        // copytruncate.
        std::fs::write(&log, "").unwrap();
        append(&log, "f\n");
        let (s, p, _) = t.poll(5);
        assert_eq!(lines(&s), ["f"]);
        t.commit(p);
        assert!(t.poll(6).0.is_empty());
    }
}
