//! Chunk encodings. The head appends to XOR chunks ([`xor`]); persisted blocks store each chunk
//! with a codec chosen in the config ([`BlockCodec`]): XOR, or pco (pcodec), which compresses
//! timestamps and values as columns and wins on bytes per sample for the price of decoding a
//! whole chunk at once. `docs/format/chunks.md` describes the bytes; BENCHMARKS.md the
//! measurements behind the default.

pub mod bits;
pub mod histogram;
pub mod xor;

use medic_model::Sample;
use serde::{Deserialize, Serialize};

use crate::encoding::{put_uvarint, put_varint, Decoder};
use crate::Error;
pub use xor::{XorEncoder, XorIter};

/// How a persisted chunk is encoded; the first byte of every block chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockCodec {
    /// Gorilla XOR, as in the head.
    Xor,
    /// pcodec: timestamps and values compressed as two numeric columns.
    #[default]
    Pco,
}

impl BlockCodec {
    fn tag(self) -> u8 {
        match self {
            BlockCodec::Xor => 1,
            BlockCodec::Pco => 2,
        }
    }
}

/// Most samples one chunk may claim, so a corrupt count cannot make a decoder allocate without
/// bound.
pub const MAX_CHUNK_SAMPLES: usize = 1 << 20;

/// The pco compression level for block chunks. Measured on the benchmark workload
/// (`medic-bench codecs`): level 4 is within 0.5% of the default level 8 in bytes per sample and
/// encodes 35–55% faster, which matters because blocks are cut while ingest runs.
const PCO_LEVEL: usize = 4;

/// Encodes samples (sorted by time, non-empty) as one block chunk: `codec tag, count, payload`.
pub fn encode_chunk(codec: BlockCodec, samples: &[Sample]) -> Result<Vec<u8>, Error> {
    encode_chunk_level(codec, PCO_LEVEL, samples)
}

/// [`encode_chunk`] with an explicit pco compression level (0–12; ignored for XOR), for
/// measurements.
pub fn encode_chunk_level(
    codec: BlockCodec,
    level: usize,
    samples: &[Sample],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(16 + samples.len() * 2);
    out.push(codec.tag());
    put_uvarint(&mut out, samples.len() as u64);
    match codec {
        BlockCodec::Xor => {
            let mut e = XorEncoder::with_capacity(samples.len() * 2);
            for s in samples {
                e.append(s.t, s.v);
            }
            out.extend_from_slice(e.bytes());
        }
        BlockCodec::Pco if regular_step(samples).is_some() => {
            // Timestamps at a constant step (exact scrapes) need only the start and the step.
            out[0] = TAG_PCO_REGULAR;
            let step = regular_step(samples).unwrap_or(0);
            put_varint(&mut out, samples[0].t);
            put_varint(&mut out, step);
            let vs: Vec<f64> = samples.iter().map(|s| s.v).collect();
            let cfg = pco::ChunkConfig::default().with_compression_level(level);
            let vb = pco::standalone::simple_compress(&vs, &cfg)
                .map_err(|e| Error::Encode(format!("pco values: {e}")))?;
            out.extend_from_slice(&vb);
        }
        BlockCodec::Pco => {
            let ts: Vec<i64> = samples.iter().map(|s| s.t).collect();
            // Values as raw bits would lose pco's float modes; as f64 pco keeps every bit
            // pattern (NaN payloads included, which the stale marker needs).
            let vs: Vec<f64> = samples.iter().map(|s| s.v).collect();
            let cfg = pco::ChunkConfig::default().with_compression_level(level);
            let tb = pco::standalone::simple_compress(&ts, &cfg)
                .map_err(|e| Error::Encode(format!("pco timestamps: {e}")))?;
            let vb = pco::standalone::simple_compress(&vs, &cfg)
                .map_err(|e| Error::Encode(format!("pco values: {e}")))?;
            put_uvarint(&mut out, tb.len() as u64);
            out.extend_from_slice(&tb);
            out.extend_from_slice(&vb);
        }
    }
    Ok(out)
}

/// Tag of a pco chunk whose timestamps are `t0 + i × step`.
const TAG_PCO_REGULAR: u8 = 3;

/// The step, if the samples (at least two) are evenly spaced.
fn regular_step(samples: &[Sample]) -> Option<i64> {
    if samples.len() < 2 {
        return None;
    }
    let step = samples[1].t.checked_sub(samples[0].t)?;
    samples
        .windows(2)
        .all(|w| w[1].t.checked_sub(w[0].t) == Some(step))
        .then_some(step)
}

/// Decodes a block chunk written by [`encode_chunk`], appending its samples to `out`.
pub fn decode_chunk(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), Error> {
    let mut d = Decoder::new(bytes);
    let tag = d.u8("chunk codec")?;
    let count = d.len(MAX_CHUNK_SAMPLES, "chunk sample count")?;
    let payload = &bytes[d.position()..];
    match tag {
        1 => {
            let start = out.len();
            let mut it = XorIter::new(payload, count as u32);
            out.extend(it.by_ref());
            if it.corrupted() || out.len() - start != count {
                return Err(Error::Decode("XOR chunk ends early".into()));
            }
        }
        2 => {
            let tlen = d.len(d.remaining(), "pco timestamp length")?;
            let tb = d.take(tlen, "pco timestamps")?;
            let vb = &bytes[d.position()..];
            let ts: Vec<i64> = pco::standalone::simple_decompress(tb)
                .map_err(|e| Error::Decode(format!("pco timestamps: {e}")))?;
            let vs: Vec<f64> = pco::standalone::simple_decompress(vb)
                .map_err(|e| Error::Decode(format!("pco values: {e}")))?;
            if ts.len() != count || vs.len() != count {
                return Err(Error::Decode(format!(
                    "pco chunk holds {} timestamps and {} values, header says {count}",
                    ts.len(),
                    vs.len()
                )));
            }
            out.extend(ts.into_iter().zip(vs).map(|(t, v)| Sample::new(t, v)));
        }
        TAG_PCO_REGULAR => {
            let t0 = d.varint("first timestamp")?;
            let step = d.varint("timestamp step")?;
            let vs: Vec<f64> = pco::standalone::simple_decompress(&bytes[d.position()..])
                .map_err(|e| Error::Decode(format!("pco values: {e}")))?;
            if vs.len() != count {
                return Err(Error::Decode(format!(
                    "pco chunk holds {} values, header says {count}",
                    vs.len()
                )));
            }
            let mut t = t0;
            for v in vs {
                out.push(Sample::new(t, v));
                t = t.wrapping_add(step);
            }
        }
        other => return Err(Error::Decode(format!("unknown chunk codec {other}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_model::STALE_NAN;

    fn samples() -> Vec<Sample> {
        let mut v = 100.0;
        (0..500)
            .map(|i| {
                v += (i % 7) as f64 * 0.25;
                let val = match i {
                    17 => STALE_NAN,
                    18 => f64::NAN,
                    19 => f64::INFINITY,
                    _ => v,
                };
                Sample::new(1_700_000_000_123 + i * 15_000 + (i % 3), val)
            })
            .collect()
    }

    #[test]
    fn both_codecs_round_trip_bit_exact() {
        let s = samples();
        for codec in [BlockCodec::Xor, BlockCodec::Pco] {
            let bytes = encode_chunk(codec, &s).unwrap();
            let mut got = Vec::new();
            decode_chunk(&bytes, &mut got).unwrap();
            assert_eq!(got.len(), s.len(), "{codec:?}");
            for (a, b) in got.iter().zip(&s) {
                assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()), "{codec:?}");
            }
        }
    }

    #[test]
    fn regular_timestamps_take_the_short_path() {
        let regular: Vec<Sample> = (0..500)
            .map(|i| Sample::new(1_000 + i * 15_000, (i % 17) as f64))
            .collect();
        let bytes = encode_chunk(BlockCodec::Pco, &regular).unwrap();
        assert_eq!(bytes[0], TAG_PCO_REGULAR);
        let mut got = Vec::new();
        decode_chunk(&bytes, &mut got).unwrap();
        assert_eq!(got, regular);
        for cut in [1, 4, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_chunk(&bytes[..cut], &mut Vec::new()).is_err(),
                "cut {cut}"
            );
        }
        // One sample off the grid: the general path.
        let mut irregular = regular.clone();
        irregular[7].t += 1;
        assert_eq!(encode_chunk(BlockCodec::Pco, &irregular).unwrap()[0], 2);
        let single = [Sample::new(5, 1.0)];
        let mut got = Vec::new();
        decode_chunk(&encode_chunk(BlockCodec::Pco, &single).unwrap(), &mut got).unwrap();
        assert_eq!(got, single);
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let s = samples();
        for codec in [BlockCodec::Xor, BlockCodec::Pco] {
            let bytes = encode_chunk(codec, &s).unwrap();
            for cut in [1, 3, bytes.len() / 2, bytes.len() - 1] {
                let mut got = Vec::new();
                assert!(
                    decode_chunk(&bytes[..cut], &mut got).is_err(),
                    "{codec:?} cut {cut}"
                );
            }
        }
        assert!(decode_chunk(&[9, 1, 0], &mut Vec::new()).is_err());
        assert!(decode_chunk(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut Vec::new()).is_err());
    }
}
