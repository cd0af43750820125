//! Comparing a query's result with an eval's expectation, as Prometheus's runner does.

use std::collections::BTreeMap;

use medic_model::histogram::format_test_expression;
use medic_model::{format_duration, FloatHistogram, Labels, MemStorage, Sample};

use super::notation::{expand_points, parse_labels, parse_number, Point};
use super::{AnnotationsExpected, Eval, FailText, Outcome};
use crate::value::{Value, VectorSample};
use crate::{Engine, RangeSeries};

fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPS * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPS
}

pub(super) fn check(engine: &Engine, store: &MemStorage, ev: &Eval) -> Outcome {
    let result = match ev.range {
        Some((s, e, st)) => engine
            .range_annotated(store, &ev.expr, s, e, st)
            .map(|(r, a)| (RangeOrValue::Range(r), a)),
        None => engine
            .instant_annotated(store, &ev.expr, ev.at)
            .map(|(v, a)| (RangeOrValue::Value(v), a)),
    };
    let result = match result {
        Ok((got, notes)) => {
            let checked = check_annotations("warning", &ev.warnings, notes.warnings())
                .and_then(|()| check_annotations("info", &ev.infos, notes.infos()));
            if let Err(e) = checked {
                return Outcome::Failed(e);
            }
            Ok(got)
        }
        Err(e) => Err(e),
    };
    let got = match (result, ev.expect_fail) {
        (Err(e), true) => {
            let text = e.to_string();
            return match &ev.fail_text {
                None | Some(FailText::Any) => Outcome::Passed,
                Some(FailText::Exact(m)) if &text != m => {
                    Outcome::Failed(format!("expected error {m:?}, got {text:?}"))
                }
                Some(FailText::Regex(r)) => match regex::Regex::new(r) {
                    Ok(re) if re.is_match(&text) => Outcome::Passed,
                    Ok(_) => {
                        Outcome::Failed(format!("expected an error matching {r:?}, got {text:?}"))
                    }
                    Err(err) => Outcome::Failed(format!("bad regex in the script: {err}")),
                },
                Some(FailText::Exact(_)) => Outcome::Passed,
            };
        }
        (Ok(_), true) => return Outcome::Failed("expected the query to fail, it succeeded".into()),
        (Err(e), false) => return Outcome::Failed(format!("error: {e}")),
        (Ok(g), false) => g,
    };
    match got {
        RangeOrValue::Range(series) => {
            let start = ev.range.map_or(0, |r| r.0);
            let step = ev.range.map_or(1, |r| r.2);
            compare_matrix(&series, &ev.rows, start, step)
        }
        RangeOrValue::Value(Value::Matrix(m)) => {
            let Some((s, _, st)) = ev.range_vector else {
                return compare_matrix_raw(&m, &ev.rows);
            };
            compare_matrix(&m, &ev.rows, s, st)
        }
        RangeOrValue::Value(Value::String(s)) => match &ev.expect_string {
            Some(want) if *want == s => Outcome::Passed,
            Some(want) => Outcome::Failed(format!("expected string {want:?}, got {s:?}")),
            None => Outcome::Failed(format!("got string {s:?}")),
        },
        RangeOrValue::Value(Value::Scalar(v)) => {
            let want = ev.rows.first().and_then(|r| parse_number(r.trim()));
            match want {
                Some(w) if ev.rows.len() == 1 && almost_equal(w, v) => Outcome::Passed,
                _ => Outcome::Failed(format!("expected {:?}, got scalar {v}", ev.rows)),
            }
        }
        RangeOrValue::Value(Value::Vector(vec)) => compare_vector(&vec, &ev.rows, ev.ordered),
    }
}

/// Checks one kind of annotation against an eval's expectations of it (Prometheus's
/// `checkAnnotations`).
fn check_annotations<'a>(
    kind: &str,
    want: &AnnotationsExpected,
    got: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    let got: Vec<&str> = got.collect();
    if want.none && !got.is_empty() {
        return Err(format!("expected no {kind} annotation, got {got:?}"));
    }
    for line in &want.lines {
        if !got.iter().any(|g| line.matches(g)) {
            return Err(format!(
                "expected a {kind} annotation {line:?}, got {got:?}"
            ));
        }
    }
    if !want.lines.is_empty() {
        if let Some(extra) = got
            .iter()
            .find(|g| !want.lines.iter().any(|l| l.matches(g)))
        {
            return Err(format!("unexpected {kind} annotation {extra:?}"));
        }
    }
    Ok(())
}

/// One expected sample of an instant vector: a float or a histogram.
fn expected_sample(row: &str) -> Result<(Labels, Point), String> {
    let (l, rest) =
        parse_labels(row).map_err(|e| format!("cannot read expected row {row:?}: {e}"))?;
    match expand_points(rest.trim()) {
        Ok(mut p) if p.len() == 1 && !matches!(p[0], Point::Gap | Point::Stale) => {
            Ok((l, p.remove(0)))
        }
        _ => Err(format!("cannot read expected row {row:?}")),
    }
}

fn compare_vector(vec: &[VectorSample], rows: &[String], ordered: bool) -> Outcome {
    let mut want = Vec::with_capacity(rows.len());
    for r in rows {
        match expected_sample(r) {
            Ok(w) => want.push(w),
            Err(e) => return Outcome::Failed(e),
        }
    }
    if want.len() != vec.len() {
        return Outcome::Failed(format!(
            "expected {} samples, got {}: {}",
            want.len(),
            vec.len(),
            show_vector(vec)
        ));
    }
    let got: BTreeMap<&Labels, (usize, &VectorSample)> = vec
        .iter()
        .enumerate()
        .map(|(k, s)| (&s.labels, (k, s)))
        .collect();
    for (k, (l, p)) in want.iter().enumerate() {
        let Some((pos, g)) = got.get(l) else {
            return Outcome::Failed(format!("missing {l}; got {}", show_vector(vec)));
        };
        if ordered && *pos != k {
            return Outcome::Failed(format!("row {k}: expected {l}, got {}", vec[k].labels));
        }
        let same = match (p, &g.h) {
            (Point::Float(w), None) => almost_equal(*w, g.v),
            (Point::Histogram(w), Some(h)) => same_histogram(w, h),
            _ => false,
        };
        if !same {
            return Outcome::Failed(format!("{l}: expected {}, got {}", show_point(p), show(g)));
        }
    }
    Outcome::Passed
}

/// Prometheus's `compareNativeHistogram` after compacting both: same schema, zero threshold and
/// custom bounds, counts and sum within the tolerance, the same non-empty buckets.
pub fn same_histogram(want: &FloatHistogram, got: &FloatHistogram) -> bool {
    let (mut w, mut g) = (want.clone(), got.clone());
    w.compact();
    g.compact();
    let sides = |a: &[(i32, f64)], b: &[(i32, f64)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && almost_equal(x.1, y.1))
    };
    w.schema == g.schema
        && almost_equal(w.count, g.count)
        && almost_equal(w.sum, g.sum)
        && (!w.uses_custom_buckets() || w.custom_values == g.custom_values)
        && w.zero_threshold == g.zero_threshold
        && almost_equal(w.zero_count, g.zero_count)
        && sides(&w.positive, &g.positive)
        && sides(&w.negative, &g.negative)
}

fn show_point(p: &Point) -> String {
    match p {
        Point::Float(v) => v.to_string(),
        Point::Histogram(h) => format_test_expression(h),
        Point::Gap => "_".into(),
        Point::Stale => "stale".into(),
    }
}

fn show(s: &VectorSample) -> String {
    match &s.h {
        Some(h) => format_test_expression(h),
        None => s.v.to_string(),
    }
}

enum RangeOrValue {
    Range(Vec<RangeSeries>),
    Value(Value),
}

fn show_vector(v: &[crate::VectorSample]) -> String {
    let parts: Vec<String> = v
        .iter()
        .take(5)
        .map(|s| format!("{} {}", s.labels, show(s)))
        .collect();
    parts.join("; ")
}

/// Expected points of a series: floats and histograms apart, as Prometheus compares them.
type Expected = (Vec<Sample>, Vec<(i64, FloatHistogram)>);

fn compare_matrix(series: &[RangeSeries], rows: &[String], start: i64, step: i64) -> Outcome {
    let mut want: BTreeMap<Labels, Expected> = BTreeMap::new();
    for r in rows {
        let Ok((l, rest)) = parse_labels(r) else {
            return Outcome::Failed(format!("cannot read expected row {r:?}"));
        };
        let Ok(points) = expand_points(rest) else {
            return Outcome::Failed(format!("cannot read expected values {rest:?}"));
        };
        let mut e: Expected = (Vec::new(), Vec::new());
        for (k, p) in points.into_iter().enumerate() {
            let t = start + k as i64 * step;
            match p {
                Point::Float(v) => e.0.push(Sample::new(t, v)),
                Point::Histogram(h) => e.1.push((t, h)),
                Point::Gap | Point::Stale => {}
            }
        }
        want.insert(l, e);
    }
    compare_series(series, &want)
}

/// For a range vector without a declared grid: rows are `labels v@t …`? Prometheus writes them
/// with `expect range vector`; without it, compare values in order only.
fn compare_matrix_raw(series: &[RangeSeries], rows: &[String]) -> Outcome {
    if series.len() != rows.len() {
        return Outcome::Failed(format!(
            "expected {} series, got {}",
            rows.len(),
            series.len()
        ));
    }
    Outcome::Failed(
        "range vector result without `expect range vector` is not comparable yet".into(),
    )
}

fn compare_series(series: &[RangeSeries], want: &BTreeMap<Labels, Expected>) -> Outcome {
    let got: BTreeMap<&Labels, &RangeSeries> = series
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| (&s.labels, s))
        .collect();
    let want_nonempty: BTreeMap<&Labels, &Expected> = want
        .iter()
        .filter(|(_, e)| !e.0.is_empty() || !e.1.is_empty())
        .collect();
    if got.len() != want_nonempty.len() {
        let names: Vec<String> = got.keys().take(5).map(|l| l.to_string()).collect();
        return Outcome::Failed(format!(
            "expected {} series, got {}: {}",
            want_nonempty.len(),
            got.len(),
            names.join("; ")
        ));
    }
    for (l, (floats, histograms)) in want_nonempty {
        let Some(g) = got.get(l) else {
            return Outcome::Failed(format!("missing series {l}"));
        };
        let at = |t: i64| format_duration(std::time::Duration::from_millis(t.max(0) as u64));
        if g.samples.len() != floats.len()
            || g.samples
                .iter()
                .zip(floats.iter())
                .any(|(a, b)| a.t != b.t || !almost_equal(a.v, b.v))
        {
            let fmt = |s: &[Sample]| {
                s.iter()
                    .take(8)
                    .map(|x| format!("{}@{}", x.v, at(x.t)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Outcome::Failed(format!(
                "{l}: expected [{}], got [{}]",
                fmt(floats),
                fmt(&g.samples)
            ));
        }
        if g.histograms.len() != histograms.len()
            || g.histograms
                .iter()
                .zip(histograms.iter())
                .any(|(a, b)| a.t != b.0 || !same_histogram(&b.1, &a.h))
        {
            let got: Vec<String> = g
                .histograms
                .iter()
                .take(4)
                .map(|x| format!("{}@{}", format_test_expression(&x.h), at(x.t)))
                .collect();
            let wanted: Vec<String> = histograms
                .iter()
                .take(4)
                .map(|(t, h)| format!("{}@{}", format_test_expression(h), at(*t)))
                .collect();
            return Outcome::Failed(format!(
                "{l}: expected histograms [{}], got [{}]",
                wanted.join(" "),
                got.join(" ")
            ));
        }
    }
    Outcome::Passed
}
