//! Downsampled tiers against raw data: 60 days of counters (with resets), gauges and histogram
//! buckets at a 1-minute scrape, stored in a real TSDB with 5m and 1h tiers; queries over 30
//! days answered from the tiers stay within stated tolerances of the raw answers, and once raw
//! retention drops the old raw blocks, queries across the boundary have no gap.

use medic_model::{Appendable, Labels, Queryable};
use medic_promql::{Engine, EngineOptions, Value};
use medic_tsdb::{Db, FsyncPolicy, Metrics, Options, Tier};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const END: i64 = T0 + 60 * DAY;

fn opts(raw_retention: i64) -> Options {
    Options {
        fsync: FsyncPolicy::Never,
        retention_ms: raw_retention,
        tiers: vec![
            Tier {
                resolution_ms: 5 * MIN,
                retention_ms: 0,
            },
            Tier {
                resolution_ms: HOUR,
                retention_ms: 0,
            },
        ],
        ..Options::default()
    }
}

/// A deterministic pseudo-random stream in [0, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const LE: [&str; 6] = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];

/// 60 days, one sample a minute: 4 counters that reset every ~3 days, 4 gauges, 6 buckets.
fn fill(db: &Db) {
    let mut rng = Lcg(7);
    let counters: Vec<Labels> = (0..4)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "requests_total".to_string()),
                ("instance", format!("i{i}")),
            ])
        })
        .collect();
    let gauges: Vec<Labels> = (0..4)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "temperature".to_string()),
                ("instance", format!("i{i}")),
            ])
        })
        .collect();
    let buckets: Vec<Labels> = LE
        .iter()
        .map(|le| Labels::from_pairs([("__name__", "latency_bucket"), ("le", le)]))
        .collect();
    let mut counter = [0.0f64; 4];
    let mut bucket = [0.0f64; 6];
    let mut t = T0;
    while t < END {
        let mut app = db.appender();
        for _ in 0..60 {
            for (i, l) in counters.iter().enumerate() {
                if rng.next() < 1.0 / (3.0 * 1440.0) {
                    counter[i] = 0.0;
                } else {
                    counter[i] += (rng.next() * 20.0).floor();
                }
                app.append_labels(l, t, counter[i]).unwrap();
            }
            for (i, l) in gauges.iter().enumerate() {
                let day = (t - T0) as f64 / DAY as f64;
                let v =
                    20.0 + 5.0 * (day * std::f64::consts::TAU).sin() + rng.next() * 2.0 + i as f64;
                app.append_labels(l, t, v).unwrap();
            }
            // 100 requests a minute, latency spread over the buckets.
            for _ in 0..100 {
                let x = rng.next() * rng.next();
                for (j, le) in LE.iter().enumerate() {
                    if *le == "+Inf" || x <= le.parse::<f64>().unwrap() {
                        bucket[j] += 1.0;
                    }
                }
            }
            for (j, l) in buckets.iter().enumerate() {
                app.append_labels(l, t, bucket[j]).unwrap();
            }
            t += MIN;
        }
        app.commit().unwrap();
    }
    db.flush().unwrap();
}

fn engine(max_resolution: Option<i64>) -> Engine {
    Engine::new(EngineOptions {
        max_source_resolution_ms: max_resolution,
        ..EngineOptions::default()
    })
}

/// The values of an instant query, by labels.
fn instant(store: &dyn Queryable, res: Option<i64>, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match engine(res).instant(store, q, t).unwrap() {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
        other => panic!("{q}: {other:?}"),
    }
}

fn within(q: &str, res: i64, raw: &[(Labels, f64)], down: &[(Labels, f64)], tol: f64) {
    assert_eq!(raw.len(), down.len(), "{q} at {res}ms: series differ");
    assert!(!raw.is_empty(), "{q}: no result");
    for ((l1, a), (l2, b)) in raw.iter().zip(down) {
        assert_eq!(l1, l2);
        let rel = ((a - b) / a).abs();
        assert!(
            rel <= tol,
            "{q} {l1} at {}ms: raw {a}, downsampled {b}: {:.3}% off (tolerance {}%)",
            res,
            rel * 100.0,
            tol * 100.0
        );
    }
}

/// The tolerance each query is held to (relative to the raw answer).
const QUERIES: &[(&str, f64)] = &[
    ("increase(requests_total[30d])", 0.005),
    ("rate(requests_total[30d])", 0.005),
    ("avg_over_time(temperature[30d])", 0.001),
    ("max_over_time(temperature[30d])", 0.0),
    ("min_over_time(temperature[30d])", 0.0),
    (
        "histogram_quantile(0.95, sum by (le) (rate(latency_bucket[30d])))",
        0.005,
    ),
];

#[test]
fn thirty_day_queries_on_tiers_stay_within_tolerance_and_no_gap_remains_after_raw_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0), Metrics::default()).unwrap();
    fill(&db);
    let tiers: Vec<i64> = db
        .blocks()
        .iter()
        .map(|b| b.meta().resolution_ms)
        .filter(|r| *r > 0)
        .collect();
    assert!(
        tiers.contains(&(5 * MIN)) && tiers.contains(&HOUR),
        "no tier blocks: {tiers:?}"
    );

    // Evaluated 10 days before the end: the 30 days before are all downsampled.
    let at = END - 10 * DAY;
    let mut raw_answers = Vec::new();
    for (q, tol) in QUERIES {
        let raw = instant(&*db, Some(0), q, at);
        for res in [5 * MIN, HOUR] {
            let down = instant(&*db, Some(res), q, at);
            within(q, res, &raw, &down, *tol);
        }
        raw_answers.push(raw);
    }
    // A tier was really read: the plain selector's value differs (an hourly average).
    let raw = instant(&*db, Some(0), "temperature", at);
    let avg = instant(&*db, Some(HOUR), "temperature", at);
    assert_ne!(raw, avg, "the 1h tier answered as raw data");

    // A range query over 30 days at a 1-day step picks the 1h tier by itself (a fifth of the
    // step is 4.8h) and stays within 2% of raw at every step: each 1-day window holds 24
    // hourly points, so where its ends fall moves the extrapolation by up to 1/24 at worst.
    let q = "rate(requests_total[1d])";
    let auto = engine(None).range(&*db, q, at - 30 * DAY, at, DAY).unwrap();
    let raw = engine(Some(0))
        .range(&*db, q, at - 30 * DAY, at, DAY)
        .unwrap();
    assert_eq!(auto.len(), raw.len());
    let mut differ = 0;
    let mut worst: f64 = 0.0;
    for (a, r) in auto.iter().zip(&raw) {
        assert_eq!(a.samples.len(), 31, "{}", a.labels);
        for (x, y) in a.samples.iter().zip(&r.samples) {
            assert_eq!(x.t, y.t);
            let rel = ((x.v - y.v) / y.v).abs();
            worst = worst.max(rel);
            assert!(
                rel <= 0.02,
                "{} at {}: {} vs raw {}",
                a.labels,
                x.t,
                x.v,
                y.v
            );
            differ += (x.v != y.v) as usize;
        }
    }
    assert!(differ > 0, "auto read raw data, not the tier");
    eprintln!(
        "rate over 1d windows from the 1h tier: worst {:.3}% off raw",
        worst * 100.0
    );
    drop(db);

    // Raw kept 7 days: older raw blocks go once downsampled; queries join the tiers.
    let db = Db::open(dir.path(), opts(7 * DAY), Metrics::default()).unwrap();
    db.flush().unwrap();
    let oldest_raw = db
        .blocks()
        .iter()
        .filter(|b| b.meta().resolution_ms == 0)
        .map(|b| b.meta().min_time)
        .min()
        .unwrap();
    assert!(
        oldest_raw >= END - 9 * DAY,
        "raw blocks from {oldest_raw} still kept"
    );
    for ((q, tol), raw) in QUERIES.iter().zip(&raw_answers) {
        let now = instant(&*db, None, q, at);
        within(q, 0, raw, &now, *tol);
    }
    // Across the boundary, hourly averages every hour of the last 30 days: no step missing.
    let r = engine(None)
        .range(
            &*db,
            "avg_over_time(temperature[1h])",
            END - 30 * DAY,
            END - HOUR,
            HOUR,
        )
        .unwrap();
    assert_eq!(r.len(), 4);
    for s in &r {
        assert_eq!(
            s.samples.len(),
            30 * 24,
            "{}: a gap at the tier boundary",
            s.labels
        );
    }
}
