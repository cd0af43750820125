//! medic's anomaly detection: streaming per-series detectors (seasonal baseline, robust
//! z-score, level-shift and variance-change tests, trend forecasts) combined into one score in
//! [0, 1] with repeat suppression, and the Numenta Anomaly Benchmark runner and scorer.
//!
//! The crate knows nothing of PromQL or storage: the rules engine feeds it one value per
//! series per evaluation, and snapshots its state with serde.

mod detector;
pub mod nab;
mod stats;

pub use detector::{
    sensitivity_threshold, Baseline, Detector, Episode, Params, Point, Seasonality, Trend,
    DEFAULT_THRESHOLD,
};
