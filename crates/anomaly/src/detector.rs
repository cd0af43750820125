//! The streaming detector: one per series, fed each point once, in time order.
//!
//! For every point it predicts the value from a seasonal baseline, measures how far the value
//! lies from the prediction in units of the series' own robust spread, and asks three
//! questions of the recent residuals:
//!
//! - **spike**: is this one point far outside the band? (robust z-score: the spread is a
//!   streaming median of absolute residuals, so outliers do not widen it);
//! - **shift**: has the level moved? (a short average of the z-scores, judged against how
//!   much that average normally wanders for this series);
//! - **spread**: has the variance changed, up or down? (the log of a short average of
//!   squared z-scores, judged the same way).
//!
//! Each answer is a tail probability, taken from the series' own history rather than from a
//! normal distribution: every statistic keeps a streaming 90th percentile and the mean excess
//! above it, and its tail beyond is modelled as exponential ("peaks over threshold"; the spike
//! statistic on a log scale, so heavy-tailed series such as traffic are judged by their own
//! tails). The score is the most surprising of the three answers, corrected for asking three
//! questions, on a log scale: `score = min(1, -log10(3·p_min) / 10)`. So a score of 0.3 means
//! "as unlikely as 1 in 1,000 under this series' normal behaviour", 0.5 means 1 in 100,000,
//! and 1.0 means 1 in 10^10 or rarer.
//!
//! Outliers never poison the baseline: updates of the level, the seasonal profiles and the
//! spread are clipped (Huber-style), and NaN, ±Inf and staleness markers are skipped. Repeat
//! suppression lives in [`Episode`]: one anomaly, one signal.
//!
//! State is a few hundred numbers per series (see [`Detector::state_bytes`]), and an update
//! costs a few dozen floating-point operations.

use serde::{Deserialize, Serialize};

use crate::stats::{Ewm, Tail};

const HOUR_MS: i64 = 3_600_000;
const DAY_BUCKETS: usize = 24;
const WEEK_BUCKETS: usize = 168;
/// Score scale: a score of 1 is a tail probability of 10^-SCORE_DECADES.
const SCORE_DECADES: f64 = 10.0;
/// The score corrects for asking three questions of every point.
const TESTS: f64 = 3.0;

/// Which seasonal profile the baseline may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Seasonality {
    /// Whichever of none, daily and weekly has predicted best recently.
    #[default]
    Auto,
    None,
    Daily,
    Weekly,
}

impl std::str::FromStr for Seasonality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Seasonality::Auto),
            "none" => Ok(Seasonality::None),
            "daily" => Ok(Seasonality::Daily),
            "weekly" => Ok(Seasonality::Weekly),
            other => Err(format!(
                "unknown seasonality {other:?} (want auto, none, daily or weekly)"
            )),
        }
    }
}

/// Detector settings, shared by every series of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub seasonality: Seasonality,
    /// Points a series must have before it is scored (its score is 0 until then).
    pub warmup: u32,
    /// The score at or above which an anomaly episode starts (see [`Episode`]).
    pub threshold: f64,
    /// An episode ends once the score has stayed below half the threshold this long (ms).
    pub settle_ms: i64,
    /// Weight of each point in the level (points-based: 0.1 ≈ the last 10 points).
    pub level_alpha: f64,
    /// Weight of each visit (an hour) of a seasonal bucket in its profile value, whatever
    /// the sampling interval.
    pub season_alpha: f64,
    /// Weight of each point in the short averages behind `shift` and `spread`.
    pub short_alpha: f64,
    /// Weight of each point in the long-run calibration of `shift` and `spread`.
    pub calib_alpha: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seasonality: Seasonality::Auto,
            warmup: 100,
            threshold: DEFAULT_THRESHOLD,
            settle_ms: HOUR_MS,
            level_alpha: 0.1,
            season_alpha: 0.25,
            short_alpha: 1.0 / 8.0,
            calib_alpha: 1.0 / 2000.0,
        }
    }
}

/// The default score threshold (sensitivity `medium`).
pub const DEFAULT_THRESHOLD: f64 = 0.3;

/// Named sensitivities and their score thresholds.
pub fn sensitivity_threshold(name: &str) -> Option<f64> {
    match name {
        "low" => Some(0.4),
        "medium" => Some(DEFAULT_THRESHOLD),
        "high" => Some(0.25),
        _ => None,
    }
}

/// What the detector says about one point.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// The anomaly score in [0, 1] (see the module docs for its meaning).
    pub score: f64,
    /// The expected value.
    pub baseline: f64,
    /// The band of values that would score below the threshold as a single point.
    pub lower: f64,
    pub upper: f64,
    /// The robust z-score of the point.
    pub z: f64,
    /// `-log10` tail probabilities of the three questions.
    pub spike: f64,
    pub shift: f64,
    pub spread: f64,
    /// This point started an anomaly episode.
    pub signal: bool,
    /// An anomaly episode is under way.
    pub anomalous: bool,
}

/// Repeat suppression: an episode starts when the score reaches the threshold (a *signal*),
/// stays open while the score is at or above half the threshold, and ends once it has stayed
/// below that for the settle time. One anomaly, one signal.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Episode {
    pub active: bool,
    /// When it started (ms) and its highest score so far.
    pub start: i64,
    pub peak: f64,
    /// Since when the score has been below half the threshold (ms; 0 = it is not).
    calm_since: i64,
}

impl Episode {
    /// Advances with the score at `t`; returns whether this point starts an episode.
    pub fn step(&mut self, t: i64, score: f64, threshold: f64, settle_ms: i64) -> bool {
        if !self.active {
            if score >= threshold {
                *self = Episode {
                    active: true,
                    start: t,
                    peak: score,
                    calm_since: 0,
                };
                return true;
            }
            return false;
        }
        self.peak = self.peak.max(score);
        if score >= threshold * 0.5 {
            self.calm_since = 0;
        } else if self.calm_since == 0 {
            self.calm_since = t;
        }
        if self.calm_since != 0 && t - self.calm_since >= settle_ms {
            self.active = false;
        }
        false
    }
}

/// Linear and Holt-style trend estimates, for capacity questions ("full in N hours").
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Trend {
    /// Holt's smoothed level and slope (per hour).
    pub holt_level: f64,
    pub holt_slope: f64,
    /// Exponentially weighted least squares over time (hours since `origin`).
    origin: i64,
    s0: f64,
    st: f64,
    sv: f64,
    stt: f64,
    stv: f64,
    last_t: i64,
}

impl Trend {
    const HOLT_ALPHA: f64 = 0.05;
    const HOLT_BETA: f64 = 0.01;
    const LSQ_DECAY: f64 = 1.0 - 1.0 / 500.0;

    fn update(&mut self, t: i64, v: f64, first: bool) {
        if first {
            *self = Trend {
                holt_level: v,
                origin: t,
                last_t: t,
                ..Trend::default()
            };
        } else {
            let dh = (t - self.last_t) as f64 / HOUR_MS as f64;
            let predicted = self.holt_level + self.holt_slope * dh;
            let level = predicted + Self::HOLT_ALPHA * (v - predicted);
            if dh > 0.0 {
                let slope = (level - self.holt_level) / dh;
                self.holt_slope += Self::HOLT_BETA * (slope - self.holt_slope);
            }
            self.holt_level = level;
            self.last_t = t;
        }
        let x = (t - self.origin) as f64 / HOUR_MS as f64;
        let d = Self::LSQ_DECAY;
        self.s0 = d * self.s0 + 1.0;
        self.st = d * self.st + x;
        self.sv = d * self.sv + v;
        self.stt = d * self.stt + x * x;
        self.stv = d * self.stv + x * v;
    }

    /// The least-squares line's slope (per hour) and its value at `t` (ms).
    pub fn linear(&self, t: i64) -> Option<(f64, f64)> {
        let det = self.s0 * self.stt - self.st * self.st;
        if self.s0 < 2.0 || det.abs() < 1e-12 {
            return None;
        }
        let slope = (self.s0 * self.stv - self.st * self.sv) / det;
        let icept = (self.sv - slope * self.st) / self.s0;
        let x = (t - self.origin) as f64 / HOUR_MS as f64;
        Some((slope, icept + slope * x))
    }

    /// Holt's forecast at `t` (ms).
    pub fn holt(&self, t: i64) -> f64 {
        self.holt_level + self.holt_slope * (t - self.last_t) as f64 / HOUR_MS as f64
    }

    /// Hours from `now` until Holt's forecast reaches `limit`, if it is heading there.
    pub fn hours_until(&self, now: i64, limit: f64) -> Option<f64> {
        let current = self.holt(now);
        let gap = limit - current;
        if gap == 0.0 {
            return Some(0.0);
        }
        if self.holt_slope == 0.0 || gap.signum() != self.holt_slope.signum() {
            return None;
        }
        Some(gap / self.holt_slope)
    }
}

/// The per-series detector state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    /// Points seen (finite ones in time order).
    pub n: u64,
    pub last_t: i64,
    pub last_v: f64,
    /// Recent level (the predictor without season).
    level: f64,
    /// Recent offsets from the daily and weekly profiles, so a profile follows level shifts.
    offset: [f64; 2],
    /// Seasonal profiles: expected value by hour of day and hour of week (UTC).
    daily: Vec<f32>,
    weekly: Vec<f32>,
    /// Visits of each bucket (saturating), so a profile is only used once it is learned.
    daily_seen: Vec<u8>,
    weekly_seen: Vec<u8>,
    /// Recent mean absolute error of the predictors without, with daily, with weekly season.
    err: [f64; 3],
    /// Streaming median of absolute residuals (the MAD around the baseline).
    mad: f64,
    /// Mean absolute value, for a spread floor relative to the series' magnitude.
    magnitude: f64,
    /// Consecutive clipped points: lets a lasting level shift become the new normal.
    outliers: u32,
    shift: f64,
    spread: f64,
    shift_cal: Ewm,
    spread_cal: Ewm,
    spike_tail: Tail,
    shift_tail: Tail,
    spread_tail: Tail,
    pub trend: Trend,
    pub episode: Episode,
    /// What the last point scored.
    pub last: Point,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            n: 0,
            last_t: i64::MIN,
            last_v: f64::NAN,
            level: 0.0,
            offset: [0.0; 2],
            daily: vec![0.0; DAY_BUCKETS],
            weekly: vec![0.0; WEEK_BUCKETS],
            daily_seen: vec![0; DAY_BUCKETS],
            weekly_seen: vec![0; WEEK_BUCKETS],
            err: [0.0; 3],
            mad: 0.0,
            magnitude: 0.0,
            outliers: 0,
            shift: 0.0,
            spread: 1.0,
            shift_cal: Ewm::default(),
            spread_cal: Ewm::default(),
            spike_tail: Tail::default(),
            shift_tail: Tail::default(),
            spread_tail: Tail::default(),
            trend: Trend::default(),
            episode: Episode::default(),
            last: Point::default(),
        }
    }
}

/// A detector's current picture of its series' normal behaviour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// The seasonal profile in use now: `none`, `daily` or `weekly`.
    pub seasonality: &'static str,
    /// The deseasonalised level and the spread (a standard deviation, from the MAD).
    pub level: f64,
    pub spread: f64,
    /// Expected value by hour of day (UTC), where that hour has been seen at least 3 times.
    pub daily: Vec<Option<f64>>,
    /// Expected value by hour of week (0 = Thursday 00:00 UTC, as Unix time starts), where seen
    /// at least twice.
    pub weekly: Vec<Option<f64>>,
}

/// Normal deviation of a robust z-score from 1.4826 × MAD.
const MAD_TO_SD: f64 = 1.4826;

impl Detector {
    pub fn new() -> Self {
        Detector::default()
    }

    /// Bytes of state this detector holds (struct and heap).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.daily.capacity() * 4
            + self.weekly.capacity() * 4
            + self.daily_seen.capacity()
            + self.weekly_seen.capacity()
    }

    /// The current baseline; `t` (ms) picks the seasonal profile in use.
    pub fn baseline(&self, p: &Params, t: i64) -> Baseline {
        let (d, w) = Self::buckets(t);
        let floor = 1e-6 * self.magnitude.max(1e-300) + f64::MIN_POSITIVE;
        Baseline {
            seasonality: ["none", "daily", "weekly"][self.choose(p, d, w)],
            level: self.level,
            spread: (MAD_TO_SD * self.mad).max(floor),
            daily: (0..DAY_BUCKETS)
                .map(|i| (self.daily_seen[i] >= 3).then_some(self.daily[i] as f64))
                .collect(),
            weekly: (0..WEEK_BUCKETS)
                .map(|i| (self.weekly_seen[i] >= 2).then_some(self.weekly[i] as f64))
                .collect(),
        }
    }

    fn buckets(t: i64) -> (usize, usize) {
        let h = t.div_euclid(HOUR_MS);
        (
            h.rem_euclid(DAY_BUCKETS as i64) as usize,
            h.rem_euclid(WEEK_BUCKETS as i64) as usize,
        )
    }

    /// Which predictor to use: 0 none, 1 daily, 2 weekly.
    fn choose(&self, p: &Params, d: usize, w: usize) -> usize {
        let daily_ok = self.daily_seen[d] >= 3;
        let weekly_ok = self.weekly_seen[w] >= 2;
        match p.seasonality {
            Seasonality::None => 0,
            Seasonality::Daily => usize::from(daily_ok),
            Seasonality::Weekly => {
                if weekly_ok {
                    2
                } else {
                    0
                }
            }
            Seasonality::Auto => {
                let mut best = 0;
                if daily_ok && self.err[1] < 0.8 * self.err[0] {
                    best = 1;
                }
                if weekly_ok && self.err[2] < 0.8 * self.err[best] {
                    best = 2;
                }
                best
            }
        }
    }

    /// Feeds one point. Points that are not finite (NaN, ±Inf, staleness markers) or not
    /// after the last one are skipped and return `None`.
    pub fn update(&mut self, p: &Params, t: i64, v: f64) -> Option<Point> {
        if !v.is_finite() || (self.n > 0 && t <= self.last_t) {
            return None;
        }
        let (d, w) = Self::buckets(t);
        if self.n == 0 {
            return Some(self.first(t, v, d, w));
        }

        let preds = [
            self.level,
            self.daily[d] as f64 + self.offset[0],
            self.weekly[w] as f64 + self.offset[1],
        ];
        let sel = self.choose(p, d, w);
        let pred = preds[sel];
        let r = v - pred;

        self.magnitude += 0.01 * (v.abs() - self.magnitude);
        let floor = 1e-6 * self.magnitude.max(1e-300) + f64::MIN_POSITIVE;
        if self.n < 10 {
            // Start the spread from the data: the mean absolute residual so far.
            self.mad += (r.abs() - self.mad) / self.n as f64;
        }
        let sd = (MAD_TO_SD * self.mad).max(floor);
        let z = r / sd;

        let (spike, shift, spread, score) = self.judge(p, z);

        self.learn(p, t, v, (d, w), &preds, sel, r, sd, floor);

        self.n += 1;
        self.last_t = t;
        self.last_v = v;
        // The band: values whose spike evidence alone stays under the threshold.
        let zt = self
            .spike_tail
            .level_for(p.threshold * SCORE_DECADES + TESTS.log10());
        let signal = self.episode.step(t, score, p.threshold, p.settle_ms);
        self.last = Point {
            score,
            baseline: pred,
            lower: pred - zt * sd,
            upper: pred + zt * sd,
            z,
            spike,
            shift,
            spread,
            signal,
            anomalous: self.episode.active,
        };
        Some(self.last)
    }

    /// The first point: every estimate starts from it.
    fn first(&mut self, t: i64, v: f64, d: usize, w: usize) -> Point {
        self.level = v;
        self.daily[d] = v as f32;
        self.weekly[w] = v as f32;
        self.daily_seen[d] = 1;
        self.weekly_seen[w] = 1;
        self.magnitude = v.abs();
        self.trend.update(t, v, true);
        self.n = 1;
        self.last_t = t;
        self.last_v = v;
        self.last = Point {
            baseline: v,
            lower: v,
            upper: v,
            ..Point::default()
        };
        self.last
    }

    /// The evidence of a residual of `z` spreads: spike, shift and spread in decades (0 while
    /// warming up), and the score; the calibrations learn from it.
    fn judge(&mut self, p: &Params, z: f64) -> (f64, f64, f64, f64) {
        // Short averages of the residuals, clipped so one wild point cannot dominate.
        let zc = z.clamp(-6.0, 6.0);
        self.shift += p.short_alpha * (zc - self.shift);
        self.spread += p.short_alpha * (zc * zc - self.spread);
        let log_spread = (self.spread + 1e-3).ln();

        let warm = self.n >= p.warmup as u64;
        // On a log scale, so heavy-tailed series (traffic, counts) are judged by their own tails.
        let x_spike = z.abs().ln_1p();
        let x_shift = (self.shift - self.shift_cal.mean).abs();
        let x_spread = (log_spread - self.spread_cal.mean).abs();
        let (spike, shift, spread) = if warm {
            (
                self.spike_tail.decades(x_spike),
                self.shift_tail.decades(x_shift),
                self.spread_tail.decades(x_spread),
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        let evidence = spike.max(shift).max(spread) - TESTS.log10();
        let score = (evidence / SCORE_DECADES).clamp(0.0, 1.0);

        // Calibrate: the centres of the short averages, and the tails of all three.
        self.shift_cal.update(self.shift, p.calib_alpha);
        self.spread_cal.update(log_spread, p.calib_alpha);
        self.spike_tail.update(x_spike, p.calib_alpha);
        self.shift_tail.update(x_shift, p.calib_alpha);
        self.spread_tail.update(x_spread, p.calib_alpha);
        (spike, shift, spread, score)
    }

    /// Learns from the point: the predictors' errors, the spread, the level and the seasonal
    /// profiles, each from the value clipped around its own prediction.
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &mut self,
        p: &Params,
        t: i64,
        v: f64,
        (d, w): (usize, usize),
        preds: &[f64; 3],
        sel: usize,
        r: f64,
        sd: f64,
        floor: f64,
    ) {
        // Learn: clip the residual (Huber), loosening while a shift persists.
        let clip = 4.0 * sd * (1.0 + self.outliers as f64 / 4.0);
        if r.abs() > clip {
            self.outliers += 1;
        } else {
            self.outliers = 0;
        }
        // Each predictor judges (and learns from) the value clipped around its own prediction.
        let learn = |i: usize| preds[i] + (v - preds[i]).clamp(-clip, clip);
        let v_learn = learn(sel);
        // Which predictor is better is judged on errors capped at 10 spreads: a recurring
        // jump counts (that is what a profile is for), a one-off wild value does not dominate.
        for (i, e) in self.err.iter_mut().enumerate() {
            let ae = (v - preds[i]).abs().min(10.0 * sd);
            *e += 0.02 * (ae - *e);
        }
        // The spread: a streaming median of |r|, moving 2% of itself per point.
        if self.n >= 10 {
            if r.abs() > self.mad {
                self.mad = (self.mad * 1.02).max(floor);
            } else {
                self.mad *= 0.98;
            }
        }
        let a = p.level_alpha;
        self.level += a * (v_learn - self.level);
        // A bucket learns `season_alpha` per hour spent in it, however often it is sampled.
        let dt = (t - self.last_t).clamp(0, HOUR_MS) as f64 / HOUR_MS as f64;
        let g = 1.0 - (1.0 - p.season_alpha).powf(dt);
        for (i, (profile, seen, b)) in [
            (&mut self.daily, &self.daily_seen, d),
            (&mut self.weekly, &self.weekly_seen, w),
        ]
        .into_iter()
        .enumerate()
        {
            if seen[b] == 0 && Self::buckets(self.last_t) != (d, w) {
                // First visit: start from the value, not from zero.
                profile[b] = v as f32;
            }
            // The profile is the plain average of its hour; the offset, how far recent
            // values sit from it (it follows a level shift until the profile has learned it).
            let x = learn(i + 1);
            self.offset[i] += a * (x - profile[b] as f64 - self.offset[i]);
            profile[b] += (g * (x - profile[b] as f64)) as f32;
        }
        // A visit counts once per hour: mark the bucket on entry.
        if Self::buckets(self.last_t) != (d, w) {
            self.daily_seen[d] = self.daily_seen[d].saturating_add(1);
            self.weekly_seen[w] = self.weekly_seen[w].saturating_add(1);
        }
        self.trend.update(t, v, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_signal_once() {
        let mut e = Episode::default();
        let scores = [0.1, 0.6, 0.9, 0.3, 0.7, 0.1, 0.1, 0.1, 0.6];
        let signals: Vec<bool> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| e.step(i as i64 * 1000, *s, 0.5, 2000))
            .collect();
        assert_eq!(
            signals,
            [false, true, false, false, false, false, false, false, true]
        );
    }
}
