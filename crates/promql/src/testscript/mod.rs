//! A runner for Prometheus's PromQL test scripts (`promql/promqltest/testdata/*.test`):
//! `load`, `clear`, `eval instant|range` with their expectations, compared with Prometheus's
//! tolerance (relative 1e-6, NaN equals NaN).
//!
//! `expect fail msg: TEXT` compares the error text exactly and `expect fail regex: RE` matches
//! it, as Prometheus's runner does. Native histograms (`{{schema:0 count:4 buckets:[1 2 1]}}`)
//! load and compare as Prometheus's runner does: after dropping empty buckets, counts and sum
//! within the tolerance, layout exactly. Annotations are checked as Prometheus's runner checks
//! them: each `expect warn` / `expect info` line (bare, `msg:` or `regex:`) needs an annotation
//! of its kind it matches; once a kind has such a line, every annotation of that kind must match
//! one; `expect no_warn` / `expect no_info` allow none of the kind.

mod compare;
mod notation;

pub use compare::same_histogram;
pub use notation::{expand, expand_points, parse_labels, Item, Point};

use std::sync::Arc;

use medic_model::{HistogramSample, Labels, MemStorage, Sample, STALE_NAN};

use crate::Engine;
use notation::parse_time;

/// The outcome of one eval.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Matched its expectation.
    Passed,
    /// Did not; the message says how.
    Failed(String),
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
    /// (passed, failed).
    pub fn counts(&self) -> (usize, usize) {
        let passed = self
            .evals
            .iter()
            .filter(|e| e.outcome == Outcome::Passed)
            .count();
        (passed, self.evals.len() - passed)
    }
}

/// What an `expect fail|warn|info` line says of the text: anything, exactly this, or a match.
#[derive(Debug, Clone)]
enum FailText {
    Any,
    Exact(String),
    Regex(String),
}

impl FailText {
    /// `msg: TEXT`, `regex: RE` or nothing, after the expectation's kind.
    fn parse(rest: &str) -> FailText {
        let rest = rest.trim();
        if let Some(m) = rest.strip_prefix("msg:") {
            FailText::Exact(m.trim().to_string())
        } else if let Some(r) = rest.strip_prefix("regex:") {
            FailText::Regex(r.trim().to_string())
        } else {
            FailText::Any
        }
    }

    /// Whether `text` satisfies it (a bad regex matches nothing).
    fn matches(&self, text: &str) -> bool {
        match self {
            FailText::Any => true,
            FailText::Exact(m) => m == text,
            FailText::Regex(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(text)),
        }
    }
}

/// An eval's expectations of one kind of annotation.
#[derive(Debug, Clone, Default)]
struct AnnotationsExpected {
    /// `expect warn ...` / `expect info ...` lines.
    lines: Vec<FailText>,
    /// `expect no_warn` / `expect no_info`.
    none: bool,
}

pub(crate) struct Eval {
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
    warnings: AnnotationsExpected,
    infos: AnnotationsExpected,
    rows: Vec<String>,
}

/// Runs a script's text; `name` is used in messages.
pub fn run(text: &str) -> Report {
    let engine = Engine::default();
    let mut store = MemStorage::new();
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
            continue;
        }
        if let Some(rest) = line.strip_prefix("load") {
            // `load 5m`, `load_with_nhcb 5m`: the step is the last word.
            let step = rest
                .split_whitespace()
                .last()
                .and_then(|w| parse_time(w).ok())
                .unwrap_or(0);
            while i < lines.len()
                && !lines[i].trim().is_empty()
                && lines[i].starts_with([' ', '\t'])
            {
                let l = lines[i].trim();
                i += 1;
                let Ok((labels, values)) = parse_labels(l) else {
                    continue;
                };
                let Ok(points) = expand_points(values) else {
                    continue;
                };
                load(&store, labels, &points, step);
            }
            if rest.starts_with("_with_nhcb") {
                notation::add_nhcb(&store);
            }
            continue;
        }
        let Some(ev) = parse_eval(line, line_no, &lines, &mut i) else {
            continue;
        };
        let outcome = compare::check(&engine, &store, &ev);
        report.evals.push(EvalResult {
            line: ev.line,
            expr: ev.expr.clone(),
            outcome,
        });
    }
    report
}

/// Stores one loaded series: its floats and its histograms, `step` apart from time 0.
fn load(store: &MemStorage, labels: Labels, points: &[Point], step: i64) {
    let mut floats = Vec::new();
    let mut histograms = Vec::new();
    for (k, p) in points.iter().enumerate() {
        let t = k as i64 * step;
        match p {
            Point::Float(v) => floats.push(Sample::new(t, *v)),
            Point::Stale => floats.push(Sample::new(t, STALE_NAN)),
            Point::Histogram(h) => histograms.push(HistogramSample {
                t,
                h: Arc::new(h.clone()),
            }),
            Point::Gap => {}
        }
    }
    if !histograms.is_empty() {
        store.add_histograms(labels.clone(), &histograms);
    }
    if !floats.is_empty() || histograms.is_empty() {
        store.add(labels, &floats);
    }
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
        warnings: AnnotationsExpected::default(),
        infos: AnnotationsExpected::default(),
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
                ev.fail_text = Some(FailText::parse(f));
            } else if x == "no_warn" {
                ev.warnings.none = true;
            } else if x == "no_info" {
                ev.infos.none = true;
            } else if let Some(w) = x.strip_prefix("warn") {
                ev.warnings.lines.push(FailText::parse(w));
            } else if let Some(i) = x.strip_prefix("info") {
                ev.infos.lines.push(FailText::parse(i));
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
        assert_eq!(r.counts(), (4, 1));
    }

    #[test]
    fn annotations_are_checked() {
        let script = r#"
load 1m
    load1 0+1x10

eval instant at 5m rate(load1[5m])
    expect info
    expect no_warn
    {} 0.016666666666666666

eval instant at 5m rate(load1[5m])
    expect info msg: PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "load1"
    {} 0.016666666666666666

eval instant at 5m rate(load1[5m])
    expect info regex: might not be a counter
    {} 0.016666666666666666

eval instant at 5m rate(load1[5m])
    expect no_info
    {} 0.016666666666666666

eval instant at 5m rate(load1[5m])
    expect info msg: PromQL info: something else
    {} 0.016666666666666666

eval instant at 5m rate(load1[5m])
    expect warn
    {} 0.016666666666666666

eval instant at 5m load1
    expect info
    load1 5
"#;
        let r = run(script);
        let outcomes: Vec<bool> = r
            .evals
            .iter()
            .map(|e| e.outcome == Outcome::Passed)
            .collect();
        assert_eq!(
            outcomes,
            [true, true, true, false, false, false, false],
            "{r:?}"
        );
    }

    #[test]
    fn histograms_load_and_compare() {
        let script = r#"
load 5m
    h {{schema:0 sum:4 count:4 buckets:[1 2 1]}}+{{sum:2 count:1 buckets:[1] offset:1}}x3

eval instant at 10m h
    h {{schema:0 sum:8 count:6 buckets:[1 4 1]}}

eval range from 0 to 10m step 5m histogram_count(h)
    {} 4 5 6

eval instant at 10m h
    h {{schema:0 sum:8 count:6 buckets:[1 4 2]}}

eval instant at 10m h
    h 6
"#;
        let r = run(script);
        let outcomes: Vec<&Outcome> = r.evals.iter().map(|e| &e.outcome).collect();
        assert_eq!(outcomes[..2], [&Outcome::Passed, &Outcome::Passed], "{r:?}");
        // A wrong bucket, and a float where a histogram is, must fail.
        assert!(matches!(outcomes[2], Outcome::Failed(_)), "{r:?}");
        assert!(matches!(outcomes[3], Outcome::Failed(_)), "{r:?}");
    }

    #[test]
    fn expands_histogram_series() {
        let p = expand_points("{{count:1}}x1 _ {{count:1}}-{{count:1}}x1 stale 3").unwrap();
        let counts: Vec<String> = p
            .iter()
            .map(|p| match p {
                Point::Histogram(h) => format!("h{}", h.count),
                Point::Float(v) => v.to_string(),
                Point::Gap => "_".into(),
                Point::Stale => "stale".into(),
            })
            .collect();
        assert_eq!(counts, ["h1", "h1", "_", "h1", "h0", "stale", "3"]);
        assert!(expand_points("{{count:1").is_err());
        assert!(expand_points("{{count:1}}+{{count:1}}").is_err());
    }
}
