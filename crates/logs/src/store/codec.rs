//! Byte encodings shared by the WAL and the parts: unsigned LEB128 varints, zigzag for signed
//! deltas, length-prefixed strings, and a push (streams with entries) as one record.

use medic_model::Labels;

use crate::entry::{Entry, Push, Stream};

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads what the `put_*` functions wrote; every read checks bounds, so damaged bytes give an
/// error, never a panic or a huge allocation.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Damaged or truncated bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn uvarint(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(Corrupt)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    pub fn varint(&mut self) -> Result<i64, Corrupt> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.pos.checked_add(n).ok_or(Corrupt)?;
        let b = self.buf.get(self.pos..end).ok_or(Corrupt)?;
        self.pos = end;
        Ok(b)
    }

    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Corrupt)
    }

    pub fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(
            self.bytes(4)?.try_into().map_err(|_| Corrupt)?,
        ))
    }
}

pub fn put_labels(out: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(out, labels.len() as u64);
    for l in labels.iter() {
        put_str(out, &l.name);
        put_str(out, &l.value);
    }
}

pub fn read_labels(r: &mut Reader<'_>) -> Result<Labels, Corrupt> {
    let n = r.uvarint()? as usize;
    let mut pairs = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        pairs.push((r.str()?.to_string(), r.str()?.to_string()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Entries of one stream, timestamps as deltas from the previous one.
pub fn put_entries(out: &mut Vec<u8>, entries: &[Entry]) {
    put_uvarint(out, entries.len() as u64);
    let mut prev = 0i64;
    for e in entries {
        put_varint(out, e.ts.wrapping_sub(prev));
        prev = e.ts;
        put_str(out, &e.line);
        put_uvarint(out, e.metadata.len() as u64);
        for (k, v) in &e.metadata {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

pub fn read_entries(r: &mut Reader<'_>, out: &mut Vec<Entry>) -> Result<(), Corrupt> {
    let n = r.uvarint()? as usize;
    out.reserve(n.min(1 << 16));
    let mut prev = 0i64;
    for _ in 0..n {
        let ts = prev.wrapping_add(r.varint()?);
        prev = ts;
        let line = r.str()?.to_string();
        let m = r.uvarint()? as usize;
        let mut metadata = Vec::with_capacity(m.min(64));
        for _ in 0..m {
            metadata.push((r.str()?.to_string(), r.str()?.to_string()));
        }
        out.push(Entry { ts, line, metadata });
    }
    Ok(())
}

/// A chunk's two columns: `times` (uvarint count, varint timestamp deltas, uvarint line
/// lengths) and `text` (the lines back to back, each followed by its metadata: uvarint count,
/// then names and values). A count reads only `times`.
pub fn put_columns(entries: &[Entry], times: &mut Vec<u8>, text: &mut Vec<u8>) {
    put_uvarint(times, entries.len() as u64);
    let mut prev = 0i64;
    for e in entries {
        put_varint(times, e.ts.wrapping_sub(prev));
        prev = e.ts;
    }
    for e in entries {
        put_uvarint(times, e.line.len() as u64);
        text.extend_from_slice(e.line.as_bytes());
        put_uvarint(text, e.metadata.len() as u64);
        for (k, v) in &e.metadata {
            put_str(text, k);
            put_str(text, v);
        }
    }
}

/// Reads what [`put_columns`] wrote; without `text`, entries have empty lines and no metadata.
pub fn read_columns(
    times: &[u8],
    text: Option<&[u8]>,
    out: &mut Vec<Entry>,
) -> Result<(), Corrupt> {
    let mut t = Reader::new(times);
    let n = t.uvarint()? as usize;
    if n > times.len() {
        return Err(Corrupt);
    }
    let mut ts = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        prev = prev.wrapping_add(t.varint()?);
        ts.push(prev);
    }
    out.reserve(n);
    let Some(text) = text else {
        out.extend(ts.into_iter().map(|ts| Entry::new(ts, String::new())));
        return Ok(());
    };
    let mut b = Reader::new(text);
    for ts in ts {
        let len = t.uvarint()? as usize;
        let line = std::str::from_utf8(b.bytes(len)?)
            .map_err(|_| Corrupt)?
            .to_string();
        let m = b.uvarint()? as usize;
        let mut metadata = Vec::with_capacity(m.min(64));
        for _ in 0..m {
            metadata.push((b.str()?.to_string(), b.str()?.to_string()));
        }
        out.push(Entry { ts, line, metadata });
    }
    Ok(())
}

pub fn encode_push(push: &Push) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, push.len() as u64);
    for s in push {
        put_labels(&mut out, &s.labels);
        put_entries(&mut out, &s.entries);
    }
    out
}

/// Checkpoints written with a push: `(key, value)`, e.g. a file tailer's offsets, so that the
/// lines and how far they were read are durable together.
pub type Checkpoints = Vec<(String, String)>;

/// A WAL record: a push, then its checkpoints.
pub fn encode_record(push: &Push, checkpoints: &[(String, String)]) -> Vec<u8> {
    let mut out = encode_push(push);
    put_uvarint(&mut out, checkpoints.len() as u64);
    for (k, v) in checkpoints {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

pub fn decode_record(buf: &[u8]) -> Result<(Push, Checkpoints), Corrupt> {
    let mut r = Reader::new(buf);
    let push = read_push(&mut r)?;
    let n = r.uvarint()? as usize;
    let mut cps = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        cps.push((r.str()?.to_string(), r.str()?.to_string()));
    }
    Ok((push, cps))
}

pub fn decode_push(buf: &[u8]) -> Result<Push, Corrupt> {
    read_push(&mut Reader::new(buf))
}

fn read_push(r: &mut Reader<'_>) -> Result<Push, Corrupt> {
    let n = r.uvarint()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let labels = read_labels(r)?;
        let mut entries = Vec::new();
        read_entries(r, &mut entries)?;
        out.push(Stream { labels, entries });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_with_and_without_text() {
        let entries = vec![
            Entry::new(10, "a"),
            Entry {
                ts: 7,
                line: "bé".into(),
                metadata: vec![("k".into(), "v".into())],
            },
        ];
        let (mut t, mut x) = (Vec::new(), Vec::new());
        put_columns(&entries, &mut t, &mut x);
        let mut out = Vec::new();
        read_columns(&t, Some(&x), &mut out).unwrap();
        assert_eq!(out, entries);
        out.clear();
        read_columns(&t, None, &mut out).unwrap();
        assert_eq!(out.iter().map(|e| e.ts).collect::<Vec<_>>(), [10, 7]);
        assert!(read_columns(&t[..t.len() - 1], Some(&x), &mut out).is_err());
    }

    #[test]
    fn a_push_round_trips_and_damage_is_an_error() {
        let push = vec![Stream {
            labels: Labels::from_pairs([("app", "a")]),
            entries: vec![
                Entry::new(5, "x"),
                Entry {
                    ts: -3,
                    line: "é".into(),
                    metadata: vec![("k".into(), "v".into())],
                },
            ],
        }];
        let b = encode_push(&push);
        assert_eq!(decode_push(&b).unwrap(), push);
        for cut in 0..b.len() {
            assert!(decode_push(&b[..cut]).is_err() || cut == b.len());
        }
    }
}
