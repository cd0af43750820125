//! The detector on synthetic series whose anomalies are known, and on NAB's series.

use medic_anomaly::{Detector, Params, Seasonality};

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// A deterministic pseudo-random stream in [-1, 1] (xorshift), so tests are repeatable.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Feeds `values` at one-minute steps from t=0; returns the indices that signalled.
fn run(d: &mut Detector, p: &Params, values: &[f64]) -> Vec<usize> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &v)| {
            d.update(p, i as i64 * MIN, v)
                .filter(|pt| pt.signal)
                .map(|_| i)
        })
        .collect()
}

fn noisy(n: usize, level: f64, amp: f64, seed: u64) -> Vec<f64> {
    let mut r = Noise(seed);
    (0..n).map(|_| level + amp * r.next()).collect()
}

#[test]
fn a_spike_signals_once_and_does_not_poison_the_baseline() {
    let p = Params::default();
    let mut d = Detector::new();
    let mut v = noisy(2000, 100.0, 2.0, 7);
    for x in &mut v[1500..1503] {
        *x = 400.0;
    }
    let signals = run(&mut d, &p, &v);
    assert_eq!(signals, vec![1500], "one anomaly, one signal");
    // The baseline after the spike is where it was before it.
    assert!((d.last.baseline - 100.0).abs() < 1.0, "{:?}", d.last);
    assert!(d.last.lower < 100.0 && d.last.upper > 100.0 && d.last.upper < 130.0);
}

#[test]
fn quiet_noise_raises_almost_nothing() {
    let p = Params::default();
    let mut total = 0;
    for seed in 1..6 {
        let mut d = Detector::new();
        total += run(&mut d, &p, &noisy(5000, 50.0, 5.0, seed)).len();
    }
    // The default threshold is a tail probability near 1e-3 per point, and alerts are
    // episodes: 25,000 points of noise give at most a couple.
    assert!(total <= 2, "{total} alerts in 25,000 points of noise");
}

#[test]
fn a_level_shift_is_detected_and_becomes_the_new_normal() {
    let p = Params::default();
    let mut d = Detector::new();
    let mut v = noisy(3000, 100.0, 2.0, 11);
    for x in &mut v[1500..] {
        *x += 6.0;
    }
    let signals = run(&mut d, &p, &v);
    assert!(
        !signals.is_empty() && (1500..1520).contains(&signals[0]),
        "{signals:?}"
    );
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert!((d.last.baseline - 106.0).abs() < 1.5, "{:?}", d.last);
}

#[test]
fn a_variance_change_is_detected() {
    let p = Params::default();
    let mut d = Detector::new();
    let mut v = noisy(3000, 100.0, 1.0, 5);
    let mut r = Noise(99);
    for x in &mut v[2000..] {
        *x = 100.0 + 6.0 * r.next();
    }
    let signals = run(&mut d, &p, &v);
    assert!(
        !signals.is_empty() && (2000..2050).contains(&signals[0]),
        "{signals:?}"
    );
}

#[test]
fn a_daily_pattern_is_learned_and_a_break_in_it_is_caught() {
    let p = Params::default();
    let mut d = Detector::new();
    let mut r = Noise(3);
    // Ten days at 5-minute steps: a square-ish daily cycle, 20 by day and 80 by night.
    let step = 5 * MIN;
    let mut signals = Vec::new();
    let mut feed = |d: &mut Detector, from_day: i64, to_day: i64, broken: bool| {
        for i in (from_day * 288)..(to_day * 288) {
            let t = i * step;
            let hour = (t / HOUR) % 24;
            let day = t / (24 * HOUR);
            let daytime = (8..20).contains(&hour);
            // When broken, the daytime rise does not come.
            let v = if daytime && !broken { 80.0 } else { 20.0 } + r.next();
            if let Some(pt) = d.update(&p, t, v) {
                if pt.signal {
                    signals.push((day, hour));
                }
            }
        }
    };
    feed(&mut d, 0, 9, false);
    let b = d.baseline(&p, 9 * 24 * HOUR + 10 * HOUR);
    assert_eq!(b.seasonality, "daily", "{b:?}");
    // Learned: about 80 at 10:00 and 20 at 02:00.
    assert!((b.daily[10].unwrap() - 80.0).abs() < 3.0, "{b:?}");
    assert!((b.daily[2].unwrap() - 20.0).abs() < 3.0, "{b:?}");
    feed(&mut d, 9, 10, true);
    // Days 4..9 (after learning) raise nothing; day 9's missing rise does, early.
    assert!(
        signals.iter().all(|(day, _)| *day < 4 || *day == 9),
        "{signals:?}"
    );
    assert!(signals.contains(&(9, 8)), "{signals:?}");
}

#[test]
fn nan_inf_stale_and_old_points_are_skipped() {
    let p = Params::default();
    let mut d = Detector::new();
    run(&mut d, &p, &noisy(500, 10.0, 1.0, 1));
    let before = d.clone();
    let t = 600 * MIN;
    for v in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::from_bits(0x7ff0000000000002), // Prometheus's staleness marker
    ] {
        assert!(d.update(&p, t, v).is_none());
    }
    // A point not after the last one (a repeated timestamp, clock going back).
    assert!(d.update(&p, 10 * MIN, 10.0).is_none());
    assert_eq!(d, before, "skipped points changed the state");
    // And a gap of a day is just a gap.
    let pt = d.update(&p, 2000 * MIN, 10.2).unwrap();
    assert!(!pt.signal, "{pt:?}");
}

#[test]
fn trends_forecast_when_a_limit_is_reached() {
    let p = Params::default();
    let mut d = Detector::new();
    // A disk filling at 2 GB per hour from 100 GB, with noise.
    let mut r = Noise(42);
    for i in 0..(48 * 60) {
        let t = i as i64 * MIN;
        d.update(
            &p,
            t,
            100.0 + 2.0 * (t as f64 / HOUR as f64) + 0.5 * r.next(),
        );
    }
    let now = d.last_t;
    let current = 100.0 + 2.0 * now as f64 / HOUR as f64;
    let (slope, at) = d.trend.linear(now).unwrap();
    assert!((slope - 2.0).abs() < 0.05, "linear slope {slope}");
    assert!((at - current).abs() < 1.0, "linear value {at} vs {current}");
    assert!((d.trend.holt_slope - 2.0).abs() < 0.2, "{:?}", d.trend);
    // 500 GB is (500 - current) / 2 hours away.
    let want = (500.0 - current) / 2.0;
    let got = d.trend.hours_until(now, 500.0).unwrap();
    assert!((got - want).abs() / want < 0.1, "{got} vs {want}");
    assert_eq!(d.trend.hours_until(now, 0.0), None, "not heading there");
}

#[test]
fn state_is_small_and_survives_a_snapshot() {
    let p = Params {
        seasonality: Seasonality::Auto,
        ..Params::default()
    };
    let mut d = Detector::new();
    let v = noisy(3000, 100.0, 3.0, 9);
    run(&mut d, &p, &v[..2000]);
    assert!(d.state_bytes() <= 2048, "{} bytes", d.state_bytes());
    let json = serde_json::to_string(&d).unwrap();
    let mut back: Detector = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    // Both continue identically.
    for (i, &x) in v[2000..].iter().enumerate() {
        let t = (2000 + i) as i64 * MIN;
        assert_eq!(d.update(&p, t, x), back.update(&p, t, x));
    }
}

#[test]
fn sensitivity_names_map_to_thresholds() {
    use medic_anomaly::sensitivity_threshold as s;
    assert!(s("high").unwrap() < s("medium").unwrap());
    assert!(s("medium").unwrap() < s("low").unwrap());
    assert_eq!(s("medium"), Some(medic_anomaly::DEFAULT_THRESHOLD));
    assert_eq!(s("extreme"), None);
}
