//! A runner for Prometheus's PromQL test scripts (`promql/promqltest/testdata/*.test`):
//! `load`, `clear`, `eval instant|range` with their expectations, compared with Prometheus's
//! tolerance (relative 1e-6, NaN equals NaN).
//!
//! `expect fail msg: TEXT` compares the error text exactly and `expect fail regex: RE` matches
//! it, as Prometheus's runner does. Not checked yet: `expect warn|info|no_warn|no_info`
//! (annotations). Evals over native histograms are counted as skipped, never as passed.

use std::collections::BTreeMap;

use medic_model::{format_duration, parse_duration, Label, Labels, MemStorage, Sample, STALE_NAN};

use crate::value::Value;
use crate::{Engine, RangeSeries};

/// The outcome of one eval.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Matched its expectation.
    Passed,
    /// Did not; the message says how.
    Failed(String),
    /// Not run (native histograms).
    Skipped(String),
}

/// One eval's result.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// The expression.
    pub expr: String,
    /// What happened.
    pub outcome: Outcome,
}

/// Results of one script.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every eval, in order.
    pub evals: Vec<EvalResult>,
}

impl Report {
    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in &self.evals {
            match e.outcome {
                Outcome::Passed => c.0 += 1,
                Outcome::Failed(_) => c.1 += 1,
                Outcome::Skipped(_) => c.2 += 1,
            }
        }
        c
    }
}

fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n * 1000);
    }
    parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| e.to_string())
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        // `0x10` in series notation is "0 repeated 10 times", never hexadecimal.
        _ => s.parse().ok(),
    }
}

/// One item of a series description: a value, a gap, or a staleness marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item {
    /// A sample with this value.
    Value(f64),
    /// No sample at this step.
    Gap,
    /// A staleness marker.
    Stale,
}

/// Expands series-description items: `1 2 _ stale 1+2x3 5x2 _x3 -1-1x2` (the notation of
/// `load` blocks and of promtool's `input_series`).
pub fn expand(values: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for tok in values.split_whitespace() {
        if tok == "_" {
            out.push(Item::Gap);
            continue;
        }
        if tok == "stale" {
            out.push(Item::Stale);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(Item::Gap, n));
            continue;
        }
        let (body, times) = match tok.rfind('x') {
            Some(i)
                if !tok[..i].is_empty()
                    && tok[i + 1..].chars().all(|c| c.is_ascii_digit())
                    && !tok[i + 1..].is_empty() =>
            {
                (
                    &tok[..i],
                    Some(
                        tok[i + 1..]
                            .parse::<usize>()
                            .map_err(|_| format!("bad repetition {tok:?}"))?,
                    ),
                )
            }
            _ => (tok, None),
        };
        // `A+B` or `A-B` (the sign of the step after the first character, not inside an
        // exponent).
        let bytes = body.as_bytes();
        let mut split = None;
        for i in 1..bytes.len() {
            if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                split = Some(i);
                break;
            }
        }
        match (split, times) {
            (Some(i), Some(n)) => {
                let a = parse_number(&body[..i]).ok_or_else(|| format!("bad number in {tok:?}"))?;
                let b = parse_number(&body[i..]).ok_or_else(|| format!("bad number in {tok:?}"))?;
                let mut v = a;
                out.push(Item::Value(v));
                for _ in 0..n {
                    v += b;
                    out.push(Item::Value(v));
                }
            }
            (None, Some(n)) => {
                let a = parse_number(body).ok_or_else(|| format!("bad number in {tok:?}"))?;
                out.extend(std::iter::repeat_n(Item::Value(a), n + 1));
            }
            (_, None) => out.push(Item::Value(
                parse_number(body).ok_or_else(|| format!("bad value {tok:?}"))?,
            )),
        }
    }
    Ok(out)
}

/// Splits `name{a="b", c="d"} rest` into labels and the rest of the line.
pub fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let mut labels = Vec::new();
    if name_end > 0 {
        labels.push(Label::new("__name__", &s[..name_end]));
    }
    let mut rest = &s[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let pos;
        loop {
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            let Some(&(i, c)) = chars.peek() else {
                return Err("unclosed '{'".into());
            };
            if c == '}' {
                pos = i + 1;
                break;
            }
            let start = i;
            while chars
                .peek()
                .is_some_and(|(_, c)| *c != '=' && !c.is_whitespace())
            {
                chars.next();
            }
            let Some(&(eq, _)) = chars.peek() else {
                return Err("expected '='".into());
            };
            let lname = r[start..eq].trim().to_string();
            while chars.peek().is_some_and(|(_, c)| *c != '"') {
                chars.next();
            }
            chars.next();
            let mut value = String::new();
            loop {
                let Some((_, c)) = chars.next() else {
                    return Err("unterminated label value".into());
                };
                match c {
                    '"' => break,
                    '\\' => match chars.next().map(|x| x.1) {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(o) => value.push(o),
                        None => return Err("bad escape".into()),
                    },
                    o => value.push(o),
                }
            }
            labels.push(Label::new(lname, value));
        }
        rest = &r[pos..];
    }
    let labels = Labels::from_unsorted(labels).map_err(|n| format!("label {n} repeated"))?;
    Ok((labels, rest))
}

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

/// What an `expect fail` line says of the error text.
#[derive(Debug, Clone)]
enum FailText {
    Exact(String),
    Regex(String),
}

struct Eval {
    line: usize,
    expr: String,
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect_fail: bool,
    /// The error text an `expect fail` requires, if it names one.
    fail_text: Option<FailText>,
    ordered: bool,
    expect_string: Option<String>,
    /// `expect range vector from s to e step d`: an instant query returning a matrix.
    range_vector: Option<(i64, i64, i64)>,
    rows: Vec<String>,
}

/// Runs a script's text; `name` is used in messages.
pub fn run(text: &str) -> Report {
    let engine = Engine::default();
    let mut store = MemStorage::new();
    // Label sets of the native-histogram series loaded since the last `clear`.
    let mut histograms: Vec<Labels> = Vec::new();
    let mut report = Report::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let line_no = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "clear" {
            store = MemStorage::new();
            histograms.clear();
            continue;
        }
        if let Some(rest) = line.strip_prefix("load") {
            // `load 5m`, `load_with_nhcb 5m`: the step is the last word.
            let step = rest
                .split_whitespace()
                .last()
                .and_then(|w| parse_time(w).ok())
                .unwrap_or(0);
            // `load_with_nhcb` also creates a native histogram per classic one, named without
            // `_bucket`; evals selecting those are native-histogram evals.
            let nhcb = rest.starts_with("_with_nhcb");
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && lines[i].starts_with([' ', '\t'])
            {
                let l = lines[i].trim();
                i += 1;
                let Ok((labels, values)) = parse_labels(l) else {
                    continue;
                };
                if let Some(base) = labels
                    .metric_name()
                    .and_then(|n| n.strip_suffix("_bucket"))
                    .filter(|_| nhcb)
                {
                    let mut b = labels.to_builder();
                    b.set("__name__", base).del("le");
                    histograms.push(b.build());
                }
                if values.contains("{{") {
                    histograms.push(labels);
                    continue;
                }
                let Ok(items) = expand(values) else { continue };
                let samples: Vec<Sample> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(k, it)| match it {
                        Item::Value(v) => Some(Sample::new(k as i64 * step, *v)),
                        Item::Stale => Some(Sample::new(k as i64 * step, STALE_NAN)),
                        Item::Gap => None,
                    })
                    .collect();
                store.add(labels, &samples);
            }
            continue;
        }
        let Some(ev) = parse_eval(line, line_no, &lines, &mut i) else {
            continue;
        };
        let uses_histograms = ev.rows.iter().any(|r| r.contains("{{"))
            || ev.expr.contains("histogram_count")
            || ev.expr.contains("histogram_sum")
            || ev.expr.contains("histogram_avg")
            || ev.expr.contains("histogram_std")
            || touches(&ev.expr, &histograms);
        let outcome = if uses_histograms {
            Outcome::Skipped("native histograms".into())
        } else {
            check(&engine, &store, &ev)
        };
        report.evals.push(EvalResult {
            line: ev.line,
            expr: ev.expr.clone(),
            outcome,
        });
    }
    report
}

/// Whether any selector in `expr` selects one of the `histograms` series.
fn touches(expr: &str, histograms: &[Labels]) -> bool {
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, hs: &[Labels]) -> bool {
        let selector = |vs: &promql_parser::parser::VectorSelector| -> bool {
            let Ok(ms) = crate::selector::matchers(vs) else {
                return false;
            };
            hs.iter()
                .any(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
        };
        match e {
            Expr::VectorSelector(vs) => selector(vs),
            Expr::MatrixSelector(m) => selector(&m.vs),
            Expr::Aggregate(a) => {
                walk(&a.expr, hs) || a.param.as_ref().is_some_and(|p| walk(p, hs))
            }
            Expr::Unary(u) => walk(&u.expr, hs),
            Expr::Binary(b) => walk(&b.lhs, hs) || walk(&b.rhs, hs),
            Expr::Paren(p) => walk(&p.expr, hs),
            Expr::Subquery(s) => walk(&s.expr, hs),
            Expr::Call(c) => c.args.args.iter().any(|a| walk(a, hs)),
            _ => false,
        }
    }
    !histograms.is_empty() && promql_parser::parser::parse(expr).is_ok_and(|e| walk(&e, histograms))
}

fn parse_eval(line: &str, line_no: usize, lines: &[&str], i: &mut usize) -> Option<Eval> {
    let (cmd, rest) = line.split_once(' ')?;
    let mut ev = Eval {
        line: line_no,
        expr: String::new(),
        range: None,
        at: 0,
        expect_fail: cmd == "eval_fail",
        fail_text: None,
        ordered: cmd == "eval_ordered",
        expect_string: None,
        range_vector: None,
        rows: Vec::new(),
    };
    if !cmd.starts_with("eval") {
        return None;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.first() == Some(&"instant") && words.get(1) == Some(&"at") {
        ev.at = parse_time(words.get(2)?).ok()?;
        let idx = rest.find(words[2])? + words[2].len();
        ev.expr = rest[idx..].trim().to_string();
    } else if words.first() == Some(&"range")
        && words.get(1) == Some(&"from")
        && words.get(3) == Some(&"to")
        && words.get(5) == Some(&"step")
    {
        let (s, e, st) = (
            parse_time(words[2]).ok()?,
            parse_time(words[4]).ok()?,
            parse_time(words[6]).ok()?,
        );
        ev.range = Some((s, e, st));
        let idx = rest.find(" step ")? + 6 + words[6].len();
        ev.expr = rest[idx..].trim().to_string();
    } else {
        return None;
    }
    while *i < lines.len() && !lines[*i].trim().is_empty() && lines[*i].starts_with([' ', '\t']) {
        let l = lines[*i].trim();
        *i += 1;
        if l.starts_with('#') {
            continue;
        }
        if let Some(x) = l.strip_prefix("expect ") {
            let x = x.trim();
            if let Some(f) = x.strip_prefix("fail") {
                ev.expect_fail = true;
                let f = f.trim();
                if let Some(m) = f.strip_prefix("msg:") {
                    ev.fail_text = Some(FailText::Exact(m.trim().to_string()));
                } else if let Some(r) = f.strip_prefix("regex:") {
                    ev.fail_text = Some(FailText::Regex(r.trim().to_string()));
                }
            } else if x == "ordered" {
                ev.ordered = true;
            } else if let Some(s) = x.strip_prefix("string ") {
                ev.expect_string = Some(s.trim().trim_matches(['"', '`', '\'']).to_string());
            } else if let Some(r) = x.strip_prefix("range vector from ") {
                let w: Vec<&str> = r.split_whitespace().collect();
                if w.len() >= 5 {
                    ev.range_vector = Some((
                        parse_time(w[0]).ok()?,
                        parse_time(w[2]).ok()?,
                        parse_time(w[4]).ok()?,
                    ));
                }
            }
            continue;
        }
        ev.rows.push(l.to_string());
    }
    Some(ev)
}

fn check(engine: &Engine, store: &MemStorage, ev: &Eval) -> Outcome {
    let result = match ev.range {
        Some((s, e, st)) => engine
            .range(store, &ev.expr, s, e, st)
            .map(RangeOrValue::Range),
        None => engine
            .instant(store, &ev.expr, ev.at)
            .map(RangeOrValue::Value),
    };
    let got = match (result, ev.expect_fail) {
        (Err(e), true) => {
            let text = e.to_string();
            return match &ev.fail_text {
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
                _ => Outcome::Passed,
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
        RangeOrValue::Value(Value::Vector(vec)) => {
            let mut want: Vec<(Labels, f64)> = Vec::new();
            for r in &ev.rows {
                match parse_labels(r) {
                    Ok((l, rest)) => match parse_number(rest.trim()) {
                        Some(v) => want.push((l, v)),
                        None => return Outcome::Failed(format!("cannot read expected row {r:?}")),
                    },
                    Err(e) => {
                        return Outcome::Failed(format!("cannot read expected row {r:?}: {e}"))
                    }
                }
            }
            if want.len() != vec.len() {
                return Outcome::Failed(format!(
                    "expected {} samples, got {}: {}",
                    want.len(),
                    vec.len(),
                    show_vector(&vec)
                ));
            }
            if ev.ordered {
                for (k, (w, g)) in want.iter().zip(&vec).enumerate() {
                    if w.0 != g.labels || !almost_equal(w.1, g.v) {
                        return Outcome::Failed(format!(
                            "row {k}: expected {} {}, got {} {}",
                            w.0, w.1, g.labels, g.v
                        ));
                    }
                }
                return Outcome::Passed;
            }
            let got: BTreeMap<&Labels, f64> = vec.iter().map(|s| (&s.labels, s.v)).collect();
            for (l, v) in &want {
                match got.get(l) {
                    Some(g) if almost_equal(*v, *g) => {}
                    Some(g) => return Outcome::Failed(format!("{l}: expected {v}, got {g}")),
                    None => {
                        return Outcome::Failed(format!("missing {l}; got {}", show_vector(&vec)))
                    }
                }
            }
            Outcome::Passed
        }
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
        .map(|s| format!("{} {}", s.labels, s.v))
        .collect();
    parts.join("; ")
}

fn compare_matrix(series: &[RangeSeries], rows: &[String], start: i64, step: i64) -> Outcome {
    let mut want: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for r in rows {
        let Ok((l, rest)) = parse_labels(r) else {
            return Outcome::Failed(format!("cannot read expected row {r:?}"));
        };
        let Ok(items) = expand(rest) else {
            return Outcome::Failed(format!("cannot read expected values {rest:?}"));
        };
        let samples = items
            .iter()
            .enumerate()
            .filter_map(|(k, it)| match it {
                Item::Value(v) => Some(Sample::new(start + k as i64 * step, *v)),
                _ => None,
            })
            .collect();
        want.insert(l, samples);
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

fn compare_series(series: &[RangeSeries], want: &BTreeMap<Labels, Vec<Sample>>) -> Outcome {
    let got: BTreeMap<&Labels, &Vec<Sample>> = series
        .iter()
        .filter(|s| !s.samples.is_empty())
        .map(|s| (&s.labels, &s.samples))
        .collect();
    let want_nonempty: BTreeMap<&Labels, &Vec<Sample>> =
        want.iter().filter(|(_, s)| !s.is_empty()).collect();
    if got.len() != want_nonempty.len() {
        let names: Vec<String> = got.keys().take(5).map(|l| l.to_string()).collect();
        return Outcome::Failed(format!(
            "expected {} series, got {}: {}",
            want_nonempty.len(),
            got.len(),
            names.join("; ")
        ));
    }
    for (l, w) in want_nonempty {
        let Some(g) = got.get(l) else {
            return Outcome::Failed(format!("missing series {l}"));
        };
        if g.len() != w.len()
            || g.iter()
                .zip(w.iter())
                .any(|(a, b)| a.t != b.t || !almost_equal(a.v, b.v))
        {
            let fmt = |s: &[Sample]| {
                s.iter()
                    .take(8)
                    .map(|x| {
                        format!(
                            "{}@{}",
                            x.v,
                            format_duration(std::time::Duration::from_millis(x.t.max(0) as u64))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Outcome::Failed(format!("{l}: expected [{}], got [{}]", fmt(w), fmt(g)));
        }
    }
    Outcome::Passed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_series_notation() {
        let v = |s: &str| -> Vec<String> {
            expand(s)
                .unwrap()
                .iter()
                .map(|i| match i {
                    Item::Value(v) => v.to_string(),
                    Item::Gap => "_".into(),
                    Item::Stale => "stale".into(),
                })
                .collect()
        };
        assert_eq!(v("1+2x3"), ["1", "3", "5", "7"]);
        assert_eq!(v("5x2"), ["5", "5", "5"]);
        assert_eq!(v("_x3 1"), ["_", "_", "_", "1"]);
        assert_eq!(v("-1-1x2"), ["-1", "-2", "-3"]);
        assert_eq!(v("1e3 stale Inf"), ["1000", "stale", "inf"]);
        assert_eq!(v("1e-3+1e-3x1"), ["0.001", "0.002"]);
    }

    #[test]
    fn runs_a_small_script() {
        let script = r#"
load 5m
    http_requests{job="api", instance="0"} 0+10x10
    http_requests{job="api", instance="1"} 0+20x10

eval instant at 50m sum by (job) (http_requests)
    {job="api"} 300

eval instant at 50m http_requests{instance="1"}
    http_requests{job="api", instance="1"} 200

eval range from 0 to 10m step 5m sum(http_requests)
    {} 0 30 60

eval instant at 50m nonexistent_function(http_requests)
    expect fail

eval instant at 50m sum by (job) (http_requests)
    {job="api"} 301
"#;
        let r = run(script);
        let outcomes: Vec<&Outcome> = r.evals.iter().map(|e| &e.outcome).collect();
        assert_eq!(
            outcomes[..4],
            [
                &Outcome::Passed,
                &Outcome::Passed,
                &Outcome::Passed,
                &Outcome::Passed
            ],
            "{r:?}"
        );
        assert!(
            matches!(outcomes[4], Outcome::Failed(_)),
            "a wrong expectation must fail"
        );
        assert_eq!(r.counts(), (4, 1, 0));
    }
}
