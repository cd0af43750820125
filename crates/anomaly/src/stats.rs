//! Small numeric helpers: exponentially weighted moments and tails.

use serde::{Deserialize, Serialize};

/// An exponentially weighted mean and variance with weight `alpha` per update.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Ewm {
    pub mean: f64,
    pub var: f64,
    /// Updates seen, saturating: the first ones use a larger weight so the estimate starts
    /// from the data rather than from zero.
    pub n: u32,
}

impl Ewm {
    /// Adds `x` with weight at least `alpha` (1/n while fewer than 1/alpha values were seen).
    pub fn update(&mut self, x: f64, alpha: f64) {
        self.n = self.n.saturating_add(1);
        let a = alpha.max(1.0 / self.n as f64);
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }
}

/// The upper tail of a non-negative statistic, by "peaks over threshold": a streaming 90th
/// percentile `u` and the mean excess `beta` of values above it. Above `u` the tail is taken
/// as exponential, so `P(X > x) ≈ 0.1 · exp(-(x - u) / beta)`. This follows the series' own
/// tails, heavy or light, instead of assuming a normal distribution.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Tail {
    pub u: f64,
    pub beta: f64,
    pub n: u32,
}

impl Tail {
    const Q: f64 = 0.9;
    const WARM: u32 = 50;

    /// `-log10 P(X > x)` under the tail model (0 while fewer than 50 values were seen).
    pub fn decades(&self, x: f64) -> f64 {
        if self.n < Self::WARM || self.beta <= 0.0 {
            return 0.0;
        }
        (1.0 + (x - self.u) / (self.beta * std::f64::consts::LN_10)).max(0.0)
    }

    /// The value whose `decades` is `d` (infinite while the tail is not yet known).
    pub fn level_for(&self, d: f64) -> f64 {
        if self.n < Self::WARM || self.beta <= 0.0 {
            return f64::INFINITY;
        }
        self.u + (d - 1.0) * self.beta * std::f64::consts::LN_10
    }

    /// Adds `x` with weight `alpha`; excesses are capped at ten mean excesses, so one wild
    /// value cannot fatten the tail.
    pub fn update(&mut self, x: f64, alpha: f64) {
        self.n = self.n.saturating_add(1);
        if self.n <= Self::WARM {
            // Start from the data: u from the running mean, beta from the mean deviation.
            let a = 1.0 / self.n as f64;
            self.u += a * (x - self.u);
            self.beta += a * ((x - self.u).abs() - self.beta);
            return;
        }
        let step = 0.02 * self.beta.max(1e-12);
        if x > self.u {
            self.u += step * Self::Q;
            let excess = (x - self.u).min(10.0 * self.beta);
            self.beta += alpha * 10.0 * (excess - self.beta);
        } else {
            self.u -= step * (1.0 - Self::Q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewm_tracks_mean_and_variance() {
        let mut e = Ewm::default();
        for i in 0..10_000 {
            e.update(if i % 2 == 0 { 1.0 } else { -1.0 }, 0.01);
        }
        assert!(e.mean.abs() < 0.02, "{e:?}");
        assert!((e.var - 1.0).abs() < 0.04, "{e:?}");
    }
}
