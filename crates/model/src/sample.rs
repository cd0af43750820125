//! Samples and the staleness marker.

use serde::{Deserialize, Serialize};

/// One value of a series at a timestamp in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; may be the [`STALE_NAN`] marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }
}

/// The bit pattern Prometheus uses to mark a series stale: a NaN distinct from ordinary NaNs.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the staleness marker (and not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_distinct_from_nan() {
        assert!(is_stale_nan(STALE_NAN));
        assert!(STALE_NAN.is_nan());
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(1.0));
    }
}
