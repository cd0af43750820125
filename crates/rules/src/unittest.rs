//! Rule unit tests in promtool's format (`promtool test rules`): `rule_files`,
//! `evaluation_interval`, `group_eval_order`, `fuzzy_compare`, and `tests` with `name`,
//! `interval`, `input_series` (series notation), `alert_rule_test`, `promql_expr_test`,
//! `external_labels`, `external_url`, `start_timestamp`. Evaluation follows promtool: every
//! group is evaluated at each `evaluation_interval` step from the start to the latest
//! `eval_time`, input samples appear as evaluation reaches them, alerts are checked at the
//! step that covers their `eval_time`, expressions are queried at the end. Output and exit
//! status match promtool's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use medic_model::histogram::{format_test_expression, parse_test_expression};
use medic_model::{format_duration, parse_duration, Appendable, Labels, MemStorage, STALE_NAN};
use medic_model::{FloatHistogram, HistogramSample};
use medic_promql::testscript::{expand_points, parse_labels, same_histogram, Point};
use medic_promql::{Engine, EngineOptions, Value as PromValue};
use serde::{Deserialize, Deserializer};

use crate::group::{Group, GroupOptions, Storage};
use crate::rule::AlertState;

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Dur {
        Text(String),
        Int(u64),
    }
    match Dur::deserialize(d)? {
        Dur::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
        Dur::Int(0) => Ok(Duration::ZERO),
        Dur::Int(i) => Err(serde::de::Error::custom(format!(
            "not a valid duration string: \"{i}\""
        ))),
    }
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn de_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
    })
}

/// A unit-test file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub evaluation_interval: Option<Duration>,
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestGroup>,
    #[serde(default)]
    pub fuzzy_compare: bool,
}

/// One entry of `tests:`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    pub promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub external_url: String,
    /// RFC 3339 or Unix seconds: where time 0 of the test is.
    #[serde(default, deserialize_with = "de_opt_scalar")]
    pub start_timestamp: Option<String>,
}

fn de_opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de_scalar(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    pub series: String,
    /// Read as the text written: `0x10` is "0 ten more times", never hexadecimal.
    #[serde(default)]
    pub values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTest {
    #[serde(default, deserialize_with = "de_duration")]
    pub eval_time: Duration,
    #[serde(default)]
    pub alertname: String,
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprTest {
    #[serde(default)]
    pub expr: String,
    #[serde(default, deserialize_with = "de_duration")]
    pub eval_time: Duration,
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    #[serde(default)]
    pub labels: String,
    #[serde(default)]
    pub value: f64,
    #[serde(default)]
    pub histogram: String,
}

/// How to run the tests.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only test groups whose name matches one of these regexes (`--run`).
    pub run: Vec<String>,
    /// Ignore fields medic does not know in rule files (`--ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
}

/// Labels as Prometheus 3 prints them: `{__name__="x", job="y"}`.
pub fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|l| format!("{}={}", l.name, medic_template::fmt::quote(&l.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `2.5E-03`.
fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:E}");
    let (m, e) = s.split_once('E').expect("exponent");
    let e: i32 = e.parse().expect("exponent");
    format!("{m}E{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    // promtool's fuzzy_compare: equal or one ULP apart.
    fuzzy && (next_after(a, f64::NEG_INFINITY) == b || next_after(a, f64::INFINITY) == b)
}

fn next_after(x: f64, toward: f64) -> f64 {
    if x.is_nan() || toward.is_nan() {
        return f64::NAN;
    }
    if x == toward {
        return toward;
    }
    if x == 0.0 {
        let tiny = f64::from_bits(1);
        return if toward > 0.0 { tiny } else { -tiny };
    }
    let bits = x.to_bits();
    let up = (toward > x) == (x > 0.0);
    f64::from_bits(if up { bits + 1 } else { bits - 1 })
}

/// Runs one test file; returns the errors (empty when every test passed).
pub fn run_file(path: &Path, opts: &Options) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: cannot read: {e}", path.display())],
    };
    let de = serde_norway::Deserializer::from_str(&text);
    let tf: TestFile = match serde_path_to_error::deserialize(de) {
        Ok(t) => t,
        Err(e) => {
            let at = e.path().to_string();
            let inner = e.into_inner().to_string();
            // serde_norway's message may already lead with the path.
            let inner = inner
                .strip_prefix(&format!("{at}: "))
                .unwrap_or(&inner)
                .to_string();
            return vec![format!("{}: {at}: {inner}", path.display())];
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for rf in &tf.rule_files {
        let p = if Path::new(rf).is_absolute() {
            PathBuf::from(rf)
        } else {
            base.join(rf)
        };
        let pattern = p.to_string_lossy().to_string();
        let matched: Vec<PathBuf> = match glob::glob(&pattern) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => return vec![format!("bad rule file pattern {pattern:?}: {e}")],
        };
        if matched.is_empty() {
            eprintln!("  WARNING: no file match pattern {pattern}");
        }
        rule_files.extend(matched);
    }
    let mut order = HashMap::new();
    for (i, g) in tf.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let run: Option<regex::Regex> = if opts.run.is_empty() {
        None
    } else {
        match regex::Regex::new(&opts.run.join("|")) {
            Ok(r) => Some(r),
            Err(e) => return vec![format!("bad --run pattern: {e}")],
        }
    };
    let eval_interval = tf.evaluation_interval.unwrap_or(Duration::from_secs(60));
    let mut errs = Vec::new();
    for tg in &tf.tests {
        if let Some(r) = &run {
            if !r.is_match(&tg.name) {
                continue;
            }
        }
        errs.extend(run_group(tg, &tf, eval_interval, &order, &rule_files, opts));
    }
    errs
}

fn load_groups(
    files: &[PathBuf],
    opts: &Options,
    gopts: &GroupOptions,
) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match crate::file::load(f, opts.ignore_unknown_fields) {
            Ok(rf) => {
                for g in &rf.groups {
                    match Group::new(g, f.clone(), gopts.clone()) {
                        Ok(g) => groups.push(g),
                        Err(e) => errs.push(format!("{}: {e}", f.display())),
                    }
                }
            }
            Err(es) => errs.extend(es.iter().map(|e| e.to_string())),
        }
    }
    if errs.is_empty() {
        Ok(groups)
    } else {
        Err(errs)
    }
}

fn parse_start(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0) as i64);
    }
    medic_model::parse_rfc3339(s)
        .ok_or_else(|| format!("start_timestamp {s:?}: not RFC 3339 or Unix seconds"))
}

fn run_group(
    tg: &TestGroup,
    tf: &TestFile,
    eval_interval: Duration,
    order: &HashMap<String, usize>,
    rule_files: &[PathBuf],
    opts: &Options,
) -> Vec<String> {
    let interval = tg
        .interval
        .or(tf.evaluation_interval)
        .unwrap_or(Duration::from_secs(60));
    let mint = match tg.start_timestamp.as_deref().map(parse_start).transpose() {
        Ok(t) => t.unwrap_or(0),
        Err(e) => return vec![e],
    };
    // Input samples, in time order, appended as evaluation reaches them.
    let input = match input_samples(tg, mint, interval) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let external_labels = Labels::from_pairs(
        tg.external_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let gopts = GroupOptions {
        default_interval: interval,
        external_labels,
        external_url: tg.external_url.clone(),
        ..GroupOptions::default()
    };
    let mut groups = match load_groups(rule_files, opts, &gopts) {
        Ok(g) => g,
        Err(e) => return e,
    };
    groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(0));
    for g in &mut groups {
        g.mark_restored();
    }
    let engine = Engine::new(EngineOptions {
        default_subquery_step_ms: eval_interval.as_millis() as i64,
        ..EngineOptions::default()
    });
    let mem = Arc::new(MemStorage::new());
    let store: Arc<dyn Storage> = mem.clone();
    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time))
        .max()
        .unwrap_or_default();
    let maxt = mint + max_eval.as_millis() as i64;
    let name_prefix = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    if let Some(e) = missing_alertname(tg) {
        return vec![e];
    }
    let mut alert_times: Vec<Duration> = tg.alert_rule_test.iter().map(|a| a.eval_time).collect();
    alert_times.sort();
    alert_times.dedup();
    let step = eval_interval.as_millis().max(1) as i64;
    let mut curr = 0;
    let mut next_input = 0;
    let mut errs = Vec::new();
    let mut ts = mint;
    while ts <= maxt {
        // Samples up to `ts` become visible.
        if let Err(e) = feed(&mem, &input, &mut next_input, ts) {
            return vec![e];
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(&engine, &store, ts);
            for (r, h) in g.rules.iter().zip(&g.health) {
                if let Some(e) = &h.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        format_duration(Duration::from_millis((ts - mint) as u64))
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len() {
            let at = mint + alert_times[curr].as_millis() as i64;
            if !(ts <= at && at < ts + step) {
                break;
            }
            for test in tg
                .alert_rule_test
                .iter()
                .filter(|a| a.eval_time == alert_times[curr])
            {
                errs.extend(check_alerts(test, &groups, &name_prefix));
            }
            curr += 1;
        }
        ts += step;
    }
    for t in &tg.promql_expr_test {
        errs.extend(check_expr(t, &engine, &mem, mint, tf.fuzzy_compare));
    }
    errs
}

/// One input point: a float or a native histogram.
#[derive(Debug, Clone)]
enum InputValue {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

/// The input series as points in time order.
fn input_samples(
    tg: &TestGroup,
    mint: i64,
    interval: Duration,
) -> Result<Vec<(i64, Labels, InputValue)>, String> {
    let mut input: Vec<(i64, Labels, InputValue)> = Vec::new();
    for s in &tg.input_series {
        let labels = match parse_labels(&s.series) {
            Ok((l, rest)) if rest.trim().is_empty() => l,
            Ok((_, rest)) => {
                return Err(format!(
                    "series {:?}: unexpected {:?}",
                    s.series,
                    rest.trim()
                ))
            }
            Err(e) => return Err(format!("series {:?}: {e}", s.series)),
        };
        let points = match expand_points(&s.values) {
            Ok(i) => i,
            Err(e) => return Err(format!("series {:?}: values {:?}: {e}", s.series, s.values)),
        };
        for (i, p) in points.into_iter().enumerate() {
            let t = mint + i as i64 * interval.as_millis() as i64;
            let v = match p {
                Point::Float(v) => InputValue::Float(v),
                Point::Stale => InputValue::Float(STALE_NAN),
                Point::Histogram(h) => InputValue::Histogram(Arc::new(h)),
                Point::Gap => continue,
            };
            input.push((t, labels.clone(), v));
        }
    }
    input.sort_by_key(|(t, _, _)| *t);
    Ok(input)
}

/// Makes the input points up to `ts` visible in `mem`, from `*next` on.
fn feed(
    mem: &MemStorage,
    input: &[(i64, Labels, InputValue)],
    next: &mut usize,
    ts: i64,
) -> Result<(), String> {
    let mut app = mem.appender();
    while *next < input.len() && input[*next].0 <= ts {
        let (t, l, v) = &input[*next];
        match v {
            InputValue::Float(v) => {
                let _ = app.append_labels(l, *t, *v);
            }
            InputValue::Histogram(h) => mem.add_histograms(
                l.clone(),
                &[HistogramSample {
                    t: *t,
                    h: h.clone(),
                }],
            ),
        }
        *next += 1;
    }
    app.commit().map(|_| ()).map_err(|e| e.to_string())
}

/// promtool's error for an alert test without an alert name.
fn missing_alertname(tg: &TestGroup) -> Option<String> {
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return Some(format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                format_duration(a.eval_time)
            ));
        }
    }
    None
}

/// The alerts firing at an alert test's time against the expected ones.
fn check_alerts(test: &AlertTest, groups: &[Group], name_prefix: &str) -> Option<String> {
    let mut got: Vec<(Labels, Labels)> = Vec::new();
    for g in groups {
        for r in &g.rules {
            let Some(ar) = r.alerting().filter(|ar| ar.name == test.alertname) else {
                continue;
            };
            for a in ar.alerts() {
                if a.state == AlertState::Firing {
                    got.push((a.public_labels(), a.annotations.clone()));
                }
            }
        }
    }
    let mut exp: Vec<(Labels, Labels)> = test
        .exp_alerts
        .iter()
        .map(|e| {
            let mut l = e.exp_labels.clone();
            l.insert("alertname".into(), test.alertname.clone());
            (
                Labels::from_pairs(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                Labels::from_pairs(
                    e.exp_annotations
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                ),
            )
        })
        .collect();
    got.sort();
    exp.sort();
    (got != exp).then(|| {
        format!(
            "{name_prefix}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
            test.alertname,
            format_duration(test.eval_time),
            indent(&alerts_string(&exp), "            "),
            indent(&alerts_string(&got), "            "),
        )
    })
}

/// A PromQL test against its expected samples.
fn check_expr(
    t: &ExprTest,
    engine: &Engine,
    mem: &MemStorage,
    mint: i64,
    fuzzy: bool,
) -> Option<String> {
    let at = mint + t.eval_time.as_millis() as i64;
    let when = format_duration(t.eval_time);
    let got = match engine.instant(mem, &t.expr, at) {
        Ok(PromValue::Vector(v)) => v
            .into_iter()
            .map(|s| match s.h {
                Some(h) => (s.labels, InputValue::Histogram(h)),
                None => (s.labels, InputValue::Float(s.v)),
            })
            .collect::<Vec<_>>(),
        Ok(PromValue::Scalar(v)) => vec![(Labels::empty(), InputValue::Float(v))],
        Ok(_) => {
            return Some(format!(
                "    expr: {:?}, time: {when}, err: rule result is not a vector or scalar",
                t.expr
            ));
        }
        Err(e) => {
            return Some(format!("    expr: {:?}, time: {when}, err: {e}", t.expr));
        }
    };
    let mut exp = Vec::new();
    for s in &t.exp_samples {
        let value = if s.histogram.is_empty() {
            InputValue::Float(s.value)
        } else {
            match parse_test_expression(&s.histogram) {
                Ok(h) => InputValue::Histogram(Arc::new(h)),
                Err(e) => {
                    return Some(format!(
                        "    expr: {:?}, time: {when}, err: histogram {:?}: {e}",
                        t.expr, s.histogram
                    ))
                }
            }
        };
        let labels = if s.labels.trim().is_empty() {
            Labels::empty()
        } else {
            match parse_labels(&s.labels) {
                Ok((l, rest)) if rest.trim().is_empty() => l,
                Ok((_, rest)) => {
                    return Some(format!(
                        "    expr: {:?}, time: {when}, err: labels {:?}: unexpected {:?}",
                        t.expr,
                        s.labels,
                        rest.trim()
                    ));
                }
                Err(e) => {
                    return Some(format!(
                        "    expr: {:?}, time: {when}, err: labels {:?}: {e}",
                        t.expr, s.labels
                    ));
                }
            }
        };
        exp.push((labels, value));
    }
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    let same = got.len() == exp.len()
        && got.iter().zip(&exp).all(|(g, e)| {
            g.0 == e.0
                && match (&e.1, &g.1) {
                    (InputValue::Float(e), InputValue::Float(g)) => float_eq(*e, *g, fuzzy),
                    (InputValue::Histogram(e), InputValue::Histogram(g)) => same_histogram(e, g),
                    _ => false,
                }
        });
    if !same {
        return Some(format!(
            "    expr: {:?}, time: {when},\n        exp: {}\n        got: {}",
            t.expr,
            samples_string(&exp),
            samples_string(&got)
        ));
    }
    None
}

fn samples_string(s: &[(Labels, InputValue)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| match v {
            InputValue::Float(v) => format!("{} {}", labels_string(l), format_float_e(*v)),
            InputValue::Histogram(h) => {
                format!("{} {}", labels_string(l), format_test_expression(h))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn alerts_string(a: &[(Labels, Labels)]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, ann)) in a.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n{i}:{}",
            indent(
                &format!(
                    "\nLabels:{}\nAnnotations:{}",
                    labels_string(l),
                    labels_string(ann)
                ),
                "  "
            )
        ));
    }
    s.push_str("\n]");
    s
}

fn indent(text: &str, prefix: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(prefix);
        }
        out.push_str(l);
        if i != lines.len() - 1 {
            out.push('\n');
        }
    }
    out
}

/// Runs test files as `promtool test rules` does, printing to stdout/stderr; returns whether
/// all passed.
pub fn run_files(files: &[PathBuf], opts: &Options) -> bool {
    let mut ok = true;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        let errs = run_file(f, opts);
        if errs.is_empty() {
            println!("  SUCCESS");
        } else {
            ok = false;
            eprintln!("  FAILED:");
            for e in errs {
                eprintln!("{e}");
                println!();
            }
        }
        println!();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_labels_print_as_promtool() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(0.0025), "2.5E-03");
        assert_eq!(format_float_e(123456.0), "1.23456E+05");
        assert_eq!(
            labels_string(&Labels::from_pairs([("__name__", "x"), ("a", "b\"c")])),
            "{__name__=\"x\", a=\"b\\\"c\"}"
        );
        assert!(float_eq(3.0, 2.9999999999999996, true));
        assert!(!float_eq(3.0, 2.9999999999999987, true));
        assert!(!float_eq(3.0, 2.9999999999999996, false));
    }
}
