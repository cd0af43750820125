//! The whole-range evaluator against the step-by-step one: the same queries over the same
//! irregular data (gaps, counter resets, staleness markers, NaN, duplicate-after-rename series)
//! give the same series, timestamps and values, bit for bit.

use medic_model::{Labels, MemStorage, Sample, STALE_NAN};
use medic_promql::{Engine, EngineOptions, RangeSeries};

/// A deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

pub(crate) fn store() -> MemStorage {
    let s = MemStorage::new();
    let mut r = Lcg(7);
    for job in ["api", "db", "web"] {
        for i in 0..7 {
            let mut t = (r.next() % 30_000) as i64;
            let mut v = 0.0;
            let mut samples = Vec::new();
            while t < 3_600_000 {
                match r.next() % 40 {
                    0 => v = 0.0,                                 // counter reset
                    1 => samples.push(Sample::new(t, STALE_NAN)), // series went away
                    2 => samples.push(Sample::new(t, f64::NAN)),
                    3 => t += 600_000, // a long gap
                    _ => {
                        v += (r.next() % 1000) as f64 / 10.0;
                        samples.push(Sample::new(t, v));
                    }
                }
                t += 10_000 + (r.next() % 10_000) as i64;
            }
            for (name, scale) in [("requests_total", 1.0), ("errors_total", 0.1)] {
                let scaled: Vec<Sample> = samples
                    .iter()
                    .map(|x| Sample::new(x.t, x.v * scale))
                    .collect();
                s.add(
                    Labels::from_pairs([
                        ("__name__", name),
                        ("job", job),
                        ("instance", &format!("i{i}")),
                    ]),
                    &scaled,
                );
            }
        }
    }
    s
}

pub(crate) fn same(a: &[RangeSeries], b: &[RangeSeries]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} series against {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        if x.labels != y.labels || x.samples.len() != y.samples.len() {
            return Err(format!(
                "{:?} ({}) against {:?} ({})",
                x.labels,
                x.samples.len(),
                y.labels,
                y.samples.len()
            ));
        }
        for (p, q) in x.samples.iter().zip(&y.samples) {
            if p.t != q.t || p.v.to_bits() != q.v.to_bits() && !(p.v.is_nan() && q.v.is_nan()) {
                return Err(format!(
                    "{:?} at {}: {} against {} (at {})",
                    x.labels, p.t, p.v, q.v, q.t
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn whole_range_results_equal_step_by_step_results() {
    let s = store();
    let fast = Engine::new(EngineOptions::default());
    let slow = Engine::new(EngineOptions {
        whole_range: false,
        ..Default::default()
    });
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in [
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "deriv",
        "resets",
        "changes",
        "avg_over_time",
        "sum_over_time",
        "count_over_time",
        "min_over_time",
        "max_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "present_over_time",
    ] {
        for range in ["1m", "5m", "17s"] {
            let inner = format!("{f}(requests_total[{range}])");
            let mut queries = vec![
                inner.clone(),
                format!("{f}(requests_total[{range}] offset 3m)"),
                // Both names: dropping them makes duplicates (the step evaluator's error).
                format!("{f}({{__name__=~\".*_total\"}}[{range}])"),
            ];
            for agg in [
                "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
            ] {
                queries.push(format!("{agg}({inner})"));
                queries.push(format!("{agg} by (job) ({inner})"));
                queries.push(format!("{agg} without (instance) ({inner})"));
                queries.push(format!(
                    "{agg} by (job) ({f}({{__name__=~\".*_total\"}}[{range}]))"
                ));
            }
            if f == "rate" && range == "1m" {
                // Aggregations of a plain instant selector (staleness and lookback per step).
                for agg in [
                    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
                ] {
                    queries.push(format!("{agg}(requests_total)"));
                    queries.push(format!("{agg} by (job) (requests_total)"));
                    queries.push(format!("{agg} without (instance) (requests_total)"));
                    queries.push(format!("{agg} by (job) (requests_total offset 2m)"));
                    queries.push(format!("{agg} by (job) ({{__name__=~\".*_total\"}})"));
                    queries.push(format!("{agg} without (job) ({{__name__=~\".*_total\"}})"));
                    // The experimental modifiers take the step-by-step path inside an aggregation.
                    queries.push(format!("{agg} by (job) (requests_total smoothed)"));
                    queries.push(format!(
                        "{agg} by (job) (increase(requests_total[5m] anchored))"
                    ));
                    queries.push(format!("{agg} (rate(requests_total[2m] smoothed))"));
                }
            }
            for q in queries {
                for (start, end, step) in [
                    (0, 3_600_000, 15_000),
                    (120_000, 1_800_000, 60_000),
                    (7, 900_007, 11_000),
                ] {
                    checked += 1;
                    let a = fast.range(&s, &q, start, end, step);
                    let b = slow.range(&s, &q, start, end, step);
                    let r = match (&a, &b) {
                        (Ok(a), Ok(b)) => same(a, b),
                        (Err(x), Err(y)) if x.to_string() == y.to_string() => Ok(()),
                        _ => Err(format!(
                            "{:?} against {:?}",
                            a.as_ref().map(Vec::len),
                            b.as_ref().map(Vec::len)
                        )),
                    };
                    if let Err(e) = r {
                        failures.push(format!("{q} [{start}, {end}, {step}]: {e}"));
                    }
                }
            }
        }
    }
    assert!(checked > 2000, "{checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

/// Instant queries compute their subqueries' inner steps over the subquery grid at once; the
/// answers must be those of evaluating each inner step on its own.
#[test]
fn instant_subqueries_computed_at_once_equal_step_by_step_results() {
    use medic_promql::Value;
    let s = store();
    let fast = Engine::new(EngineOptions::default());
    let slow = Engine::new(EngineOptions {
        whole_range: false,
        ..Default::default()
    });
    let bits = |v: Value| -> Vec<(String, u64)> {
        let Value::Vector(v) = v else {
            panic!("a vector: {v:?}")
        };
        let mut out: Vec<(String, u64)> = v
            .into_iter()
            .map(|x| {
                (
                    x.labels.to_string(),
                    if x.v.is_nan() { 1 } else { x.v.to_bits() },
                )
            })
            .collect();
        out.sort();
        out
    };
    let mut checked = 0;
    for q in [
        "max_over_time(sum by (job) (rate(requests_total[1m]))[30m:1m])",
        "avg_over_time(rate(requests_total[5m])[10m:17s])",
        "min_over_time(sum(increase(requests_total[2m]))[20m:30s] offset 3m)",
        "max_over_time(max_over_time(rate(requests_total[1m])[5m:1m])[15m:2m])",
        "sum_over_time(requests_total[10m:45s]) / count_over_time(requests_total[10m:45s])",
        "quantile_over_time(0.9, deriv(requests_total[5m])[20m:])",
    ] {
        for t in [600_000, 1_234_567, 3_000_000, 3_599_999] {
            checked += 1;
            let a = bits(fast.instant(&s, q, t).unwrap());
            let b = bits(slow.instant(&s, q, t).unwrap());
            assert_eq!(a, b, "{q} at {t}");
            assert!(!a.is_empty(), "{q} at {t} has no answer");
        }
    }
    assert_eq!(checked, 24);
}

/// The whole-range path notes what the step-by-step path notes: `rate` of a series not named
/// like a counter carries Prometheus's info, a counter's carries none, either way.
#[test]
fn whole_range_annotations_equal_step_by_step_annotations() {
    let s = store();
    let gauge: Vec<Sample> = (0..360)
        .map(|k| Sample::new(k * 10_000, k as f64))
        .collect();
    s.add(
        Labels::from_pairs([("__name__", "load1"), ("job", "api")]),
        &gauge,
    );
    let fast = Engine::new(EngineOptions::default());
    let slow = Engine::new(EngineOptions {
        whole_range: false,
        ..Default::default()
    });
    let info = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"load1\"";
    for (q, noted) in [
        ("rate(load1[5m])", true),
        ("sum by (job) (increase(load1[1m]))", true),
        ("rate(load1[5m] offset 2h)", false),
        ("rate(requests_total[1m])", false),
        ("sum(rate(requests_total[5m])) / sum(rate(load1[5m]))", true),
        ("delta(load1[5m])", false),
    ] {
        let (_, a) = fast.range_annotated(&s, q, 0, 3_600_000, 60_000).unwrap();
        let (_, b) = slow.range_annotated(&s, q, 0, 3_600_000, 60_000).unwrap();
        assert_eq!(a, b, "{q}");
        let infos: Vec<&str> = a.infos().collect();
        assert_eq!(infos == [info], noted, "{q}: {infos:?}");
        assert_eq!(a.warnings().count(), 0, "{q}");
    }
}
