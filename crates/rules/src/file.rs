//! Prometheus rule files: parsing and validation, with errors that name the file, the line,
//! the group and the rule.
//!
//! The format is Prometheus's exactly (`groups:` of `name`, `interval`, `limit`,
//! `query_offset`, `labels`, `rules:` of `record`/`alert`, `expr`, `for`, `keep_firing_for`,
//! `labels`, `annotations`), plus two fields of medic's own on alerting rules:
//! `keep_firing_while` (hysteresis) and `flapping` (flap detection). Unknown fields are errors,
//! as in Prometheus, unless the caller asks to ignore them (promtool's `--ignore-unknown-fields`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use medic_model::{is_valid_label_name, parse_duration};
use medic_template::{Funcs, Template};
use serde::{Deserialize, Deserializer};

/// A rule file failed to load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// A rule file as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
}

/// The query language of a rule file: Prometheus rule files hold PromQL, Loki ruler files
/// (`logs.rule_files`) hold LogQL metric queries in the same format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    PromQL,
    LogQL,
}

/// One `groups:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub query_offset: Option<Duration>,
    #[serde(default)]
    pub limit: usize,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Set by the loader, never read from the file.
    #[serde(skip)]
    pub lang: Lang,
}

/// One rule as written: recording (`record`), alerting (`alert`) or medic's anomaly rule
/// (`anomaly`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    /// medic: an anomaly rule; each series of `expr` gets a detector, and the rule fires like
    /// an alerting rule named this while a series is anomalous.
    #[serde(default)]
    pub anomaly: Option<String>,
    /// medic, anomaly rules: `low`, `medium` (default), `high`, or a score threshold in (0, 1].
    #[serde(default)]
    pub sensitivity: Option<Sensitivity>,
    /// medic, anomaly rules: `auto` (default), `none`, `daily` or `weekly`.
    #[serde(default)]
    pub seasonality: Option<String>,
    /// medic, anomaly rules: an anomaly ends once its score has stayed low this long (1h).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub settle: Option<Duration>,
    /// medic, anomaly rules: how much history warms a new detector (7d; 0s to not warm).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub history: Option<Duration>,
    /// medic, anomaly rules: points a detector learns from before it scores (100, at least 10).
    #[serde(default)]
    pub warmup: Option<u32>,
    #[serde(default, deserialize_with = "de_scalar")]
    pub expr: String,
    #[serde(default, rename = "for", deserialize_with = "de_opt_duration")]
    pub for_: Option<Duration>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub keep_firing_for: Option<Duration>,
    /// medic: once firing, the alert stays firing while this (looser) expression returns the
    /// alert's series.
    #[serde(default)]
    pub keep_firing_while: Option<String>,
    /// medic: flap detection for this rule.
    #[serde(default)]
    pub flapping: Option<FlappingSpec>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `sensitivity:` of an anomaly rule: a name or a score threshold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Sensitivity {
    Threshold(f64),
    Named(String),
}

impl Sensitivity {
    /// The score threshold, or why there is none.
    pub fn threshold(&self) -> Result<f64, String> {
        match self {
            Sensitivity::Threshold(t) if *t > 0.0 && *t <= 1.0 => Ok(*t),
            Sensitivity::Threshold(t) => Err(format!(
                "sensitivity: a score threshold must be in (0, 1], got {t}"
            )),
            Sensitivity::Named(n) => medic_anomaly::sensitivity_threshold(n).ok_or_else(|| {
                format!("sensitivity: unknown {n:?} (want low, medium, high or a score threshold)")
            }),
        }
    }
}

/// `flapping:` on an alerting rule: an alert that changes between firing and not firing more
/// than `max_changes` times within `window` is labelled `flapping="true"`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlappingSpec {
    pub max_changes: usize,
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
}

impl RuleSpec {
    /// The rule's name: the recorded metric or the alert.
    pub fn name(&self) -> &str {
        self.record
            .as_deref()
            .or(self.alert.as_deref())
            .or(self.anomaly.as_deref())
            .unwrap_or("")
    }
}

/// A scalar (string, number, bool) as its text: `expr: 1` is the query `1`.
fn de_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = de_scalar(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Keys each level accepts, for `--ignore-unknown-fields`.
const GROUP_KEYS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "labels",
    "rules",
];
const RULE_KEYS: &[&str] = &[
    "record",
    "alert",
    "anomaly",
    "sensitivity",
    "seasonality",
    "settle",
    "history",
    "warmup",
    "expr",
    "for",
    "keep_firing_for",
    "keep_firing_while",
    "flapping",
    "labels",
    "annotations",
];

/// Removes keys medic does not know from groups and rules.
fn strip_unknown(v: &mut serde_norway::Value) {
    let Some(groups) = v.get_mut("groups").and_then(|g| g.as_sequence_mut()) else {
        return;
    };
    for g in groups {
        if let Some(m) = g.as_mapping_mut() {
            m.retain(|k, _| k.as_str().is_some_and(|k| GROUP_KEYS.contains(&k)));
            if let Some(rules) = m.get_mut("rules").and_then(|r| r.as_sequence_mut()) {
                for r in rules {
                    if let Some(m) = r.as_mapping_mut() {
                        m.retain(|k, _| k.as_str().is_some_and(|k| RULE_KEYS.contains(&k)));
                    }
                }
            }
        }
    }
}

/// The line of each rule (its `alert:`/`record:` key) in document order, for messages.
fn rule_lines(text: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"^\s*(?:-\s+)?(?:alert|record|anomaly)\s*:").expect("valid regex");
    text.lines()
        .enumerate()
        .filter(|(_, l)| re.is_match(l))
        .map(|(i, _)| i + 1)
        .collect()
}

fn group_lines(text: &str) -> Vec<usize> {
    let re = regex::Regex::new(r"^\s*-\s+name\s*:").expect("valid regex");
    text.lines()
        .enumerate()
        .filter(|(_, l)| re.is_match(l))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Parses rule file text. All problems are returned, each with file, line, group and rule.
pub fn parse(text: &str, file: &Path, ignore_unknown: bool) -> Result<RuleFile, Vec<FileError>> {
    parse_lang(text, file, ignore_unknown, Lang::PromQL)
}

/// Parses a rule file whose expressions are in `lang`.
pub fn parse_lang(
    text: &str,
    file: &Path,
    ignore_unknown: bool,
    lang: Lang,
) -> Result<RuleFile, Vec<FileError>> {
    let err = |line: Option<usize>, message: String| FileError {
        file: file.to_path_buf(),
        line,
        message,
    };
    if text.trim().is_empty() {
        return Ok(RuleFile::default());
    }
    let parsed: Result<RuleFile, String> = if ignore_unknown {
        medic_model::yaml::check_depth(text)
            .and_then(|()| {
                serde_norway::from_str::<serde_norway::Value>(text).map_err(|e| e.to_string())
            })
            .and_then(|mut v| {
                strip_unknown(&mut v);
                serde_norway::from_value(v).map_err(|e| e.to_string())
            })
    } else {
        medic_model::yaml::from_str(text)
    };
    let mut rf = parsed.map_err(|m| {
        // serde_norway ends its messages with "at line L column C".
        let line = medic_model::yaml::error_line(&m);
        vec![err(line, m)]
    })?;
    for g in &mut rf.groups {
        g.lang = lang;
    }
    let errs = validate(&rf, text, file);
    if errs.is_empty() {
        Ok(rf)
    } else {
        Err(errs)
    }
}

/// Reads and parses a rule file, or a Sloth SLO spec (`version: prometheus/v1`) as the rules
/// generated from it.
pub fn load(path: &Path, ignore_unknown: bool) -> Result<RuleFile, Vec<FileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![FileError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    if crate::slo::is_slo_spec(&text) {
        // A Sloth SLO spec: the rules Sloth would generate from it.
        let spec = crate::slo::spec::parse(&text, path)?;
        let generated = crate::slo::generate(&spec, &crate::slo::Options::default());
        return parse(&generated, path, ignore_unknown).map_err(|errs| {
            errs.into_iter()
                .map(|e| FileError {
                    line: None,
                    message: format!("in the rules generated from this SLO spec: {}", e.message),
                    ..e
                })
                .collect()
        });
    }
    parse(&text, path, ignore_unknown)
}

/// Reads a Loki ruler file: Prometheus's format with LogQL metric queries as `expr`.
pub fn load_logql(path: &Path) -> Result<RuleFile, Vec<FileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![FileError {
            file: path.to_path_buf(),
            line: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_lang(&text, path, false, Lang::LogQL)
}

pub(crate) fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Checks each rule as Prometheus's `rulefmt` does (and medic's own fields).
fn validate(rf: &RuleFile, text: &str, file: &Path) -> Vec<FileError> {
    let rule_lines = rule_lines(text);
    let group_lines = group_lines(text);
    let funcs = crate::template_funcs_for_check();
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut rule_no = 0;
    for (gi, g) in rf.groups.iter().enumerate() {
        let gline = group_lines.get(gi).copied();
        let mut gerr = |msg: String| {
            errs.push(FileError {
                file: file.to_path_buf(),
                line: gline,
                message: msg,
            })
        };
        if g.name.is_empty() {
            gerr("group name must not be empty".into());
        }
        if !seen.insert(g.name.clone()) {
            gerr(format!(
                "groupname: {:?} is repeated in the same file",
                g.name
            ));
        }
        if g.interval == Some(Duration::ZERO) {
            gerr(format!(
                "group {:?}: interval must be greater than 0",
                g.name
            ));
        }
        for n in g.labels.keys() {
            if !is_valid_label_name(n) || n == "__name__" {
                gerr(format!("group {:?}: invalid label name {n:?}", g.name));
            }
        }
        for (ri, r) in g.rules.iter().enumerate() {
            let line = rule_lines.get(rule_no).copied();
            rule_no += 1;
            for msg in validate_rule(r, &funcs, g.lang) {
                errs.push(FileError {
                    file: file.to_path_buf(),
                    line,
                    message: format!("group {:?}, rule {}, {:?}: {msg}", g.name, ri + 1, r.name()),
                });
            }
        }
    }
    errs
}

fn validate_rule(r: &RuleSpec, funcs: &Funcs, lang: Lang) -> Vec<String> {
    let mut errs = Vec::new();
    match [&r.record, &r.alert, &r.anomaly]
        .iter()
        .filter(|k| k.is_some())
        .count()
    {
        0 => errs.push("one of 'record', 'alert' or 'anomaly' must be set".into()),
        1 => {}
        _ => errs.push("only one of 'record', 'alert' and 'anomaly' must be set".into()),
    }
    if r.anomaly.is_none() {
        for (set, field) in [
            (r.sensitivity.is_some(), "sensitivity"),
            (r.seasonality.is_some(), "seasonality"),
            (r.settle.is_some(), "settle"),
            (r.history.is_some(), "history"),
            (r.warmup.is_some(), "warmup"),
        ] {
            if set {
                errs.push(format!(
                    "invalid field '{field}': only anomaly rules have it"
                ));
            }
        }
    }
    if let Some(name) = &r.anomaly {
        if name.is_empty() {
            errs.push("anomaly name must not be empty".into());
        }
        if r.warmup.is_some_and(|w| w < 10) {
            errs.push(
                "warmup: at least 10 points (fewer cannot tell noise from an anomaly)".into(),
            );
        }
        if let Some(Err(e)) = r.sensitivity.as_ref().map(Sensitivity::threshold) {
            errs.push(e);
        }
        if let Some(Err(e)) = r
            .seasonality
            .as_deref()
            .map(str::parse::<medic_anomaly::Seasonality>)
        {
            errs.push(format!("seasonality: {e}"));
        }
        if r.keep_firing_while.is_some() {
            errs.push(
                "invalid field 'keep_firing_while' in anomaly rule (anomalies settle on their own; see 'settle')"
                    .into(),
            );
        }
    }
    if r.expr.trim().is_empty() {
        errs.push("field 'expr' must be set in rule".into());
    } else if let Err(e) = crate::rule::RuleExpr::parse(&r.expr, lang) {
        errs.push(format!("could not parse expression: {e}"));
    }
    if lang == Lang::LogQL && (r.anomaly.is_some() || r.keep_firing_while.is_some()) {
        errs.push("log rules cannot be anomaly rules or use keep_firing_while".into());
    }
    if let Some(rec) = &r.record {
        if !r.annotations.is_empty() {
            errs.push("invalid field 'annotations' in recording rule".into());
        }
        if r.for_.is_some() {
            errs.push("invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            errs.push("invalid field 'keep_firing_for' in recording rule".into());
        }
        if r.keep_firing_while.is_some() {
            errs.push("invalid field 'keep_firing_while' in recording rule".into());
        }
        if r.flapping.is_some() {
            errs.push("invalid field 'flapping' in recording rule".into());
        }
        if !is_valid_metric_name(rec) {
            errs.push(format!("invalid recording rule name: {rec}"));
        }
    }
    if let Some(alert) = &r.alert {
        if alert.is_empty() {
            errs.push("alert name must not be empty".into());
        }
        if let Some(k) = &r.keep_firing_while {
            if let Err(e) = medic_promql::Engine::parse(k) {
                errs.push(format!("could not parse keep_firing_while expression: {e}"));
            }
        }
        if let Some(f) = &r.flapping {
            if f.max_changes == 0 || f.window.is_zero() {
                errs.push("flapping: max_changes and window must be greater than 0".into());
            }
        }
    }
    for (n, v) in &r.labels {
        if !is_valid_label_name(n) {
            errs.push(format!("invalid label name: {n}"));
        }
        if n == "__name__" {
            errs.push("invalid label name: __name__".into());
        }
        if r.alert.is_some() || r.anomaly.is_some() {
            if let Err(e) = check_template(&format!("__alert_{}", r.name()), v, funcs) {
                errs.push(format!("label {n:?}: {e}"));
            }
        }
    }
    for (n, v) in &r.annotations {
        if !is_valid_label_name(n) {
            errs.push(format!("invalid annotation name: {n}"));
        }
        if let Err(e) = check_template(&format!("__alert_{}", r.name()), v, funcs) {
            errs.push(format!("annotation {n:?}: {e}"));
        }
    }
    errs
}

fn check_template(name: &str, text: &str, funcs: &Funcs) -> Result<(), String> {
    let t =
        Template::parse(name, &crate::template::with_prelude(text)).map_err(|e| e.to_string())?;
    t.check_functions(funcs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_group_and_rule() {
        let text = "groups:\n- name: g\n  rules:\n  - record: ok\n    expr: up\n  - alert: Bad\n    expr: 'up +'\n    annotations:\n      x: '{{ nosuch }}'\n";
        let errs = parse(text, Path::new("r.yml"), false).unwrap_err();
        let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(
            all[0].starts_with("r.yml:6: group \"g\", rule 2, \"Bad\": could not parse expression"),
            "{all:?}"
        );
        assert!(
            all[1].contains("function \"nosuch\" not defined"),
            "{all:?}"
        );
    }

    #[test]
    fn unknown_fields_fail_unless_ignored() {
        let text = "groups:\n- name: g\n  owner: x\n  rules:\n  - record: a\n    expr: 1\n";
        let e = parse(text, Path::new("r.yml"), false).unwrap_err();
        assert!(e[0].to_string().contains("unknown field `owner`"), "{e:?}");
        assert_eq!(e[0].line, Some(3), "{e:?}");
        let rf = parse(text, Path::new("r.yml"), true).unwrap();
        assert_eq!(rf.groups[0].rules[0].expr, "1");
    }

    #[test]
    fn medic_fields_load() {
        let text = "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: t > 90\n    keep_firing_while: t > 80\n    flapping: {max_changes: 4, window: 1h}\n";
        let rf = parse(text, Path::new("r.yml"), false).unwrap();
        let r = &rf.groups[0].rules[0];
        assert_eq!(r.keep_firing_while.as_deref(), Some("t > 80"));
        assert_eq!(
            r.flapping,
            Some(FlappingSpec {
                max_changes: 4,
                window: Duration::from_secs(3600)
            })
        );
        let bad = "groups:\n- name: g\n  rules:\n  - record: r\n    expr: t\n    keep_firing_while: t > 80\n";
        let e = parse(bad, Path::new("r.yml"), false).unwrap_err();
        assert!(
            e[0].message
                .contains("invalid field 'keep_firing_while' in recording rule"),
            "{e:?}"
        );
    }
}
