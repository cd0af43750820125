//! The Gorilla encoding (Pelkonen et al., VLDB 2015) as Prometheus uses it: timestamps as
//! delta-of-delta in variable-width buckets, values as XOR against the previous value with a
//! reused leading/trailing-zero window. Regular scrapes cost about 1 bit per timestamp; slowly
//! changing values a few bits each.
//!
//! The sample count is kept outside the bit stream (by the head and by the block chunk header),
//! so that an open chunk can be read while it is still being appended to.

use medic_model::Sample;

use super::bits::{BitReader, BitWriter};

/// Delta-of-delta buckets: (prefix bits, prefix length, value bits).
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

fn fits_signed(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    (-lim..lim).contains(&v)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Appends samples to a XOR bit stream.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    w: BitWriter,
    count: u32,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl XorEncoder {
    /// An empty chunk with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            w: BitWriter::with_capacity(cap),
            count: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: u32::MAX,
            trailing: 0,
        }
    }

    /// Samples appended so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The stream so far; decode it with [`XorIter::new`] and [`XorEncoder::count`].
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Finishes the chunk, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// Appends a sample. The caller keeps timestamps increasing.
    pub fn append(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        match self.count {
            0 => {
                self.w.write_bits(t as u64, 64);
                self.w.write_bits(bits, 64);
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(if self.count == 1 { 0 } else { self.delta });
                self.write_dod(dod);
                self.write_value(bits);
                self.delta = delta;
            }
        }
        self.t = t;
        self.v = bits;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.write_bit(false);
            return;
        }
        for (prefix, plen, vbits) in DOD_BUCKETS {
            if fits_signed(dod, vbits) {
                self.w.write_bits(prefix, plen);
                self.w
                    .write_bits((dod as u64) & ((1u64 << vbits) - 1), vbits);
                return;
            }
        }
        self.w.write_bits(0b1111, 4);
        self.w.write_bits(dod as u64, 64);
    }

    fn write_value(&mut self, bits: u64) {
        let xor = bits ^ self.v;
        if xor == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        let leading = xor.leading_zeros().min(31);
        let trailing = xor.trailing_zeros();
        if self.leading != u32::MAX && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.w.write_bits(xor >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - leading - trailing;
        self.w.write_bit(true);
        self.w.write_bits(leading as u64, 5);
        // 64 significant bits do not fit in 6 bits; 0 stands for 64 (0 itself never occurs).
        self.w.write_bits((sig & 63) as u64, 6);
        self.w.write_bits(xor >> trailing, sig);
    }
}

/// Decodes `count` samples from a XOR bit stream. Yields `None` early (and sets
/// [`XorIter::corrupted`]) if the stream ends before `count` samples.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    count: u32,
    i: u32,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
    corrupted: bool,
}

impl<'a> XorIter<'a> {
    /// An iterator over the first `count` samples of `bytes`.
    pub fn new(bytes: &'a [u8], count: u32) -> Self {
        Self {
            r: BitReader::new(bytes),
            count,
            i: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            corrupted: false,
        }
    }

    /// Whether the stream ended before the promised count.
    pub fn corrupted(&self) -> bool {
        self.corrupted
    }

    fn read_dod(&mut self) -> Option<i64> {
        if !self.r.read_bit()? {
            return Some(0);
        }
        // Each further 1 bit moves to the next, wider bucket; a 0 ends the prefix.
        for (_, _, vbits) in DOD_BUCKETS {
            if !self.r.read_bit()? {
                return Some(sign_extend(self.r.read_bits(vbits)?, vbits));
            }
        }
        Some(self.r.read_bits(64)? as i64)
    }

    fn read_value(&mut self) -> Option<()> {
        if !self.r.read_bit()? {
            return Some(());
        }
        if self.r.read_bit()? {
            self.leading = self.r.read_bits(5)? as u32;
            let mut sig = self.r.read_bits(6)? as u32;
            if sig == 0 {
                sig = 64;
            }
            if self.leading + sig > 64 {
                return None;
            }
            self.trailing = 64 - self.leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let bits = self.r.read_bits(sig)?;
        self.v ^= bits << self.trailing;
        Some(())
    }

    fn step(&mut self) -> Option<Sample> {
        if self.i == 0 {
            self.t = self.r.read_bits(64)? as i64;
            self.v = self.r.read_bits(64)?;
        } else {
            let dod = self.read_dod()?;
            let base = if self.i == 1 { 0 } else { self.delta };
            self.delta = base.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.delta);
            self.read_value()?;
        }
        self.i += 1;
        Some(Sample::new(self.t, f64::from_bits(self.v)))
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.i >= self.count || self.corrupted {
            return None;
        }
        let s = self.step();
        if s.is_none() {
            self.corrupted = true;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::STALE_NAN;

    fn round_trip(samples: &[Sample]) -> Vec<u8> {
        let mut e = XorEncoder::default();
        for s in samples {
            e.append(s.t, s.v);
        }
        let bytes = e.into_bytes();
        let got: Vec<Sample> = XorIter::new(&bytes, samples.len() as u32).collect();
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert_eq!(a.t, b.t);
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "at t={}", a.t);
        }
        bytes
    }

    #[test]
    fn regular_scrape_costs_little() {
        let samples: Vec<Sample> = (0..120)
            .map(|i| Sample::new(1_700_000_000_000 + i * 15_000, 42.0))
            .collect();
        let bytes = round_trip(&samples);
        // 16 bytes for the first sample, then 2 bits per sample.
        assert!(bytes.len() < 16 + 120 * 2 / 8 + 4, "{} bytes", bytes.len());
    }

    #[test]
    fn round_trips_awkward_values_and_gaps() {
        let vals = [
            0.0,
            -0.0,
            1.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            STALE_NAN,
            1e-300,
            123456.789,
            -7.25,
        ];
        let mut t = -5_000i64;
        let mut samples = Vec::new();
        for (i, v) in vals.iter().cycle().take(300).enumerate() {
            // Gaps from 1 ms to days, so every delta-of-delta bucket is used.
            t += [1, 15_000, 15_001, 3_600_000, 86_400_000 * 40, 7][i % 6];
            samples.push(Sample::new(t, *v));
        }
        round_trip(&samples);
    }

    #[test]
    fn extreme_timestamps() {
        round_trip(&[
            Sample::new(i64::MIN / 2, 1.0),
            Sample::new(0, 2.0),
            Sample::new(i64::MAX / 2, 3.0),
        ]);
    }

    #[test]
    fn truncated_stream_is_reported() {
        let mut e = XorEncoder::default();
        for i in 0..50 {
            e.append(i * 1000, i as f64 * 1.37);
        }
        let bytes = e.into_bytes();
        let mut it = XorIter::new(&bytes[..bytes.len() / 2], 50);
        let n = it.by_ref().count();
        assert!(n < 50);
        assert!(it.corrupted());
    }

    #[test]
    fn open_chunk_is_readable_while_appending() {
        let mut e = XorEncoder::default();
        for i in 0..10 {
            e.append(i, i as f64);
            let got: Vec<Sample> = XorIter::new(e.bytes(), e.count()).collect();
            assert_eq!(got.len() as i64, i + 1);
            assert_eq!(got.last().unwrap().v, i as f64);
        }
    }
}
