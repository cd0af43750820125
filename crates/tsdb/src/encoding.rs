//! Byte-level helpers shared by the WAL, index and chunk formats: LEB128 varints, zig-zag
//! signed varints, a bounds-checked reader, and CRC-32 (IEEE).

use crate::Error;

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` zig-zag encoded as an unsigned varint.
pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// Reads the formats above from a byte slice; every read is bounds-checked and a short or
/// malformed input becomes [`Error::Decode`] naming what was being read.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn short(&self, what: &str) -> Error {
        Error::Decode(format!(
            "unexpected end of data reading {what} at byte {}",
            self.pos
        ))
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, Error> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.short(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// A big-endian u32.
    pub fn be_u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    /// A big-endian u64.
    pub fn be_u64(&mut self, what: &str) -> Result<u64, Error> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// An unsigned varint.
    pub fn uvarint(&mut self, what: &str) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Error::Decode(format!("varint overflow reading {what}")))
    }

    /// A zig-zag signed varint.
    pub fn varint(&mut self, what: &str) -> Result<i64, Error> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// An unsigned varint that must fit in `usize` and not exceed `max`, for counts and lengths
    /// that size allocations (so corrupt input cannot ask for gigabytes).
    pub fn len(&mut self, max: usize, what: &str) -> Result<usize, Error> {
        let v = self.uvarint(what)?;
        if v > max as u64 {
            return Err(Error::Decode(format!(
                "{what} is {v}, more than the {max} possible here"
            )));
        }
        Ok(v as usize)
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(self.short(what));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], Error> {
        let n = self.len(self.remaining(), what)?;
        self.take(n, what)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, what: &str) -> Result<&'a str, Error> {
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|_| Error::Decode(format!("{what} is not valid UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut buf = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for v in vals {
            put_varint(&mut buf, v);
            put_uvarint(&mut buf, v as u64);
        }
        let mut d = Decoder::new(&buf);
        for v in vals {
            assert_eq!(d.varint("v").unwrap(), v);
            assert_eq!(d.uvarint("u").unwrap(), v as u64);
        }
        assert!(d.is_empty());
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut d = Decoder::new(&[0x80, 0x80]);
        assert!(d.uvarint("x").is_err());
        let mut d = Decoder::new(&[10, 1, 2]);
        let e = d.bytes("name").unwrap_err().to_string();
        assert!(e.contains("name"), "{e}");
    }
}
