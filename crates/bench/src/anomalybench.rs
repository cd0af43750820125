//! The anomaly detector's cost (no peer runs medic's detector; figures are absolute, against
//! the goals of ≤ 1 µs per point and ≤ 2 KB per series):
//!
//! - **update**: every series of the NAB corpus fed point by point through a fresh detector,
//!   repeated; nanoseconds per update (median of the rounds);
//! - **state**: bytes each detector holds at the end (largest, and the mean);
//! - **snapshot**: the JSON a detector is saved as (mean bytes per series).
//!
//! The NAB scores themselves come from `medic anomaly nab` (see BENCHMARKS.md).

use std::path::PathBuf;
use std::time::Instant;

use medic_anomaly::{nab, Detector, Params};

use crate::ingest::median;

/// Arguments of `anomaly`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// NAB's data directory.
    #[arg(long, default_value = "testdata/nab/data")]
    data: PathBuf,
    /// Rounds over the whole corpus.
    #[arg(long, default_value_t = 9)]
    rounds: usize,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let corpus = nab::read_corpus(&a.data)?;
    let points: usize = corpus.iter().map(|s| s.values.len()).sum();
    let p = Params::default();
    let mut per_point: Vec<f64> = Vec::new();
    let mut sink = 0.0;
    let mut detectors = Vec::new();
    for round in 0..a.rounds {
        let mut ds: Vec<Detector> = corpus.iter().map(|_| Detector::new()).collect();
        let t = Instant::now();
        for (s, d) in corpus.iter().zip(ds.iter_mut()) {
            for (&t, &v) in s.times.iter().zip(&s.values) {
                if let Some(pt) = d.update(&p, t, v) {
                    sink += pt.score;
                }
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / points as f64;
        eprintln!("round {}: {ns:.1} ns per update", round + 1);
        per_point.push(ns);
        detectors = ds;
    }
    let bytes: Vec<usize> = detectors.iter().map(Detector::state_bytes).collect();
    let json: Vec<usize> = detectors
        .iter()
        .map(|d| serde_json::to_vec(d).map(|v| v.len()).unwrap_or(0))
        .collect();
    println!(
        "| series | points | ns per update (median of {}) | state bytes (max / mean) | snapshot JSON bytes (mean) |",
        a.rounds
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {points} | {:.1} | {} / {:.0} | {:.0} |",
        corpus.len(),
        median(per_point),
        bytes.iter().max().copied().unwrap_or(0),
        bytes.iter().sum::<usize>() as f64 / bytes.len().max(1) as f64,
        json.iter().sum::<usize>() as f64 / json.len().max(1) as f64,
    );
    // Keeps the scores alive so the loop is not optimised away.
    eprintln!("(checksum {sink:.3})");
    Ok(())
}
