//! Bit streams for the XOR chunk encoding, most significant bit first.

/// Appends bits to a byte vector. The vector's last byte may be partly filled; readers see
/// every bit written so far, which lets queries read a chunk that is still being appended to.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    /// Unused bits in the last byte (0 when the last byte is full or there is none).
    free: u32,
}

impl BitWriter {
    /// An empty stream with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
            free: 0,
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    #[inline]
    pub fn write_bits(&mut self, v: u64, mut n: u32) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let bits = (v >> (n - take)) & ((1u64 << take) - 1);
            let last = self.buf.last_mut().expect("pushed above");
            *last |= (bits << (self.free - take)) as u8;
            self.free -= take;
            n -= take;
        }
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(bit as u64, 1);
    }

    /// The bytes written so far (the last may be partial).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Trims spare capacity and returns the bytes.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf.shrink_to_fit();
        self.buf
    }
}

/// Reads bits from a byte slice; reading past the end is an error, not a panic.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    buf: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of the result.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let end = self.pos + n as usize;
        if end > self.buf.len() * 8 {
            return None;
        }
        let byte = self.pos / 8;
        if let Some(word) = self.buf.get(byte..byte + 8) {
            // Eight bytes at once: the bits from `pos` on, aligned to the top of a word (what
            // the decoders spend their time in; the byte loop below serves the stream's tail).
            let off = (self.pos % 8) as u32;
            let mut x = u64::from_be_bytes(word.try_into().expect("eight bytes")) << off;
            if n + off > 64 {
                // The last bits are in the ninth byte, which `end` proves is there.
                x |= u64::from(self.buf[byte + 8]) >> (8 - off);
            }
            self.pos = end;
            return Some(x >> (64 - n));
        }
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = self.buf[self.pos / 8];
            let bit_off = (self.pos % 8) as u32;
            let avail = 8 - bit_off;
            let take = left.min(avail);
            let bits = ((byte as u64) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 { bits } else { (v << take) | bits };
            self.pos += take as usize;
            left -= take;
        }
        Some(v)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        if self.pos >= self.buf.len() * 8 {
            return None;
        }
        let byte = self.buf[self.pos / 8];
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(bit == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_mixed_widths() {
        let mut w = BitWriter::default();
        let items: Vec<(u64, u32)> = (0..200)
            .map(|i| {
                let n = (i * 7 % 64 + 1) as u32;
                let v = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1);
                (if n == 64 { v } else { v & ((1 << n) - 1) }, n)
            })
            .collect();
        for &(v, n) in &items {
            w.write_bits(v, n);
        }
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &items {
            assert_eq!(r.read_bits(n), Some(v), "width {n}");
        }
    }

    /// Every width at every bit offset, near the end of the buffer and far from it (the word
    /// path and the byte path), against the bits read one at a time.
    #[test]
    fn every_width_at_every_offset_reads_the_same_bits() {
        let bytes: Vec<u8> = (0..40u32)
            .map(|i| (i.wrapping_mul(0x9D) ^ 0x5A) as u8)
            .collect();
        let bit = |p: usize| u64::from((bytes[p / 8] >> (7 - p % 8)) & 1);
        for start in 0..(bytes.len() * 8) {
            for n in 1..=64u32 {
                let mut r = BitReader::new(&bytes);
                r.read_bits((start % 64) as u32).unwrap();
                r.pos = start;
                let got = r.read_bits(n);
                if start + n as usize > bytes.len() * 8 {
                    assert_eq!(got, None);
                    continue;
                }
                let want = (start..start + n as usize).fold(0u64, |v, p| (v << 1) | bit(p));
                assert_eq!(got, Some(want), "{n} bits at {start}");
                assert_eq!(r.pos, start + n as usize);
            }
        }
    }

    #[test]
    fn reading_past_end_is_none() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.read_bits(3), None);
    }
}
