//! Which block codec, at which chunk size: bytes per sample and decode ns per sample on the
//! benchmark workload.

use std::time::Instant;

use medic_tsdb::chunkenc::{decode_chunk, encode_chunk_level};
use medic_tsdb::BlockCodec;

use crate::workload;

/// Arguments of `codecs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Series to generate.
    #[arg(long, default_value_t = 2000)]
    series: usize,
    /// Hours of 15 s samples per series.
    #[arg(long, default_value_t = 6)]
    hours: i64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let specs = workload::series(a.series, 42);
    let end = 1_700_000_000_000i64;
    let start = end - a.hours * 3_600_000;
    let data: Vec<Vec<medic_model::Sample>> = specs.iter().map(|s| s.samples(start, end)).collect();
    let total: usize = data.iter().map(Vec::len).sum();
    println!("{} series, {} samples, 15 s interval\n", data.len(), total);
    println!(
        "| codec | level | samples/chunk | bytes/sample | encode ns/sample | decode ns/sample |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut cases: Vec<(BlockCodec, usize, usize)> = [120usize, 480, 960, 1920]
        .iter()
        .map(|&c| (BlockCodec::Xor, 0, c))
        .collect();
    for level in [2usize, 4, 6, 8] {
        cases.extend(
            [240usize, 480, 960, 1920]
                .iter()
                .map(|&c| (BlockCodec::Pco, level, c)),
        );
    }
    {
        for (codec, level, chunk) in cases {
            let t0 = Instant::now();
            let mut chunks = Vec::new();
            for s in &data {
                for part in s.chunks(chunk) {
                    chunks.push(encode_chunk_level(codec, level, part)?);
                }
            }
            let enc = t0.elapsed().as_nanos() as f64 / total as f64;
            // Each chunk also costs its frame (length, CRC) and index entry: ~10 bytes.
            let bytes: usize = chunks.iter().map(|c| c.len() + 10).sum();
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t0 = Instant::now();
                let mut out = Vec::with_capacity(chunk);
                let mut n = 0;
                for c in &chunks {
                    out.clear();
                    decode_chunk(c, &mut out)?;
                    n += out.len();
                }
                assert_eq!(n, total);
                best = best.min(t0.elapsed().as_nanos() as f64 / total as f64);
            }
            println!(
                "| {codec:?} | {level} | {chunk} | {:.3} | {enc:.1} | {best:.1} |",
                bytes as f64 / total as f64
            );
        }
    }
    Ok(())
}
