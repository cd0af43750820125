//! Runs a log query's stages over one entry: line filters, parsers, label filters, formatters.
//! Errors of parsers and filters do not drop the line; they set `__error__` (and
//! `__error_details__`) as Loki does, so `| __error__=""` can drop them.

use std::cell::RefCell;
use std::collections::BTreeMap;

use medic_template::{Funcs, Value};

use super::ast::*;
use super::parsers;

/// The labels of one entry as the pipeline sees them.
pub type LabelMap = BTreeMap<String, String>;

pub const ERROR: &str = "__error__";
pub const ERROR_DETAILS: &str = "__error_details__";

thread_local! {
    static CURRENT: RefCell<(String, i64)> = const { RefCell::new((String::new(), 0)) };
}

/// A compiled pipeline.
pub struct Pipeline<'a> {
    stages: &'a [Stage],
    funcs: Funcs,
    /// True when every stage is a line filter: labels never change.
    pub filters_only: bool,
}

impl<'a> Pipeline<'a> {
    pub fn new(stages: &'a [Stage]) -> Self {
        Pipeline {
            stages,
            funcs: template_funcs(),
            filters_only: stages.iter().all(|s| matches!(s, Stage::LineFilter(_))),
        }
    }

    /// Whether the line passes every line filter (for filter-only pipelines).
    pub fn keep_line(&self, line: &str) -> bool {
        self.stages.iter().all(|s| match s {
            Stage::LineFilter(f) => line_filter(f, line),
            _ => true,
        })
    }

    /// Runs every stage on one entry; `None` when a filter drops it. `labels` starts as the
    /// stream's labels with the entry's structured metadata.
    pub fn run(
        &self,
        ts_ns: i64,
        line: &str,
        mut labels: LabelMap,
        stream: &LabelMap,
    ) -> Option<(String, LabelMap)> {
        let mut line = line.to_string();
        let mut extracted = Vec::new();
        for stage in self.stages {
            match stage {
                Stage::LineFilter(f) => {
                    if !line_filter(f, &line) {
                        return None;
                    }
                }
                Stage::Json(_)
                | Stage::Logfmt(_)
                | Stage::Regexp(_)
                | Stage::Pattern(_)
                | Stage::Unpack => {
                    parse_stage(stage, &mut line, &mut labels, stream, &mut extracted);
                }
                Stage::LabelFilter(f) => {
                    if !label_filter(f, &mut labels) {
                        return None;
                    }
                }
                Stage::LineFormat(t) => match self.render(t, ts_ns, &line, &labels) {
                    Ok(s) => line = s,
                    Err(e) => set_error(&mut labels, "TemplateFormatErr", &e),
                },
                Stage::LabelFormat(fmts) => {
                    let before = labels.clone();
                    for f in fmts {
                        match f {
                            LabelFmt::Rename { dst, src } => {
                                let v = before.get(src).cloned().unwrap_or_default();
                                labels.remove(src);
                                labels.insert(dst.clone(), v);
                            }
                            LabelFmt::Template { dst, tmpl } => {
                                match self.render(tmpl, ts_ns, &line, &before) {
                                    Ok(v) => {
                                        labels.insert(dst.clone(), v);
                                    }
                                    Err(e) => set_error(&mut labels, "TemplateFormatErr", &e),
                                }
                            }
                        }
                    }
                }
                Stage::Drop(sels) => {
                    labels.retain(|k, v| !sels.iter().any(|s| sel_matches(s, k, v)))
                }
                Stage::Keep(sels) => {
                    labels.retain(|k, v| sels.iter().any(|s| sel_matches(s, k, v)))
                }
                Stage::Decolorize => line = decolorize(&line),
            }
        }
        Some((line, labels))
    }

    fn render(
        &self,
        t: &medic_template::Template,
        ts_ns: i64,
        line: &str,
        labels: &LabelMap,
    ) -> Result<String, String> {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            c.0.clear();
            c.0.push_str(line);
            c.1 = ts_ns;
        });
        let data = Value::str_map(labels.iter());
        t.execute(&data, &self.funcs, &[])
            .map_err(|e| e.to_string())
    }
}

/// Runs a parser stage: the labels it extracts join `labels`; `unpack` may replace the line.
fn parse_stage(
    stage: &Stage,
    line: &mut String,
    labels: &mut LabelMap,
    stream: &LabelMap,
    extracted: &mut Vec<(String, String)>,
) {
    match stage {
        Stage::Json(params) => {
            extracted.clear();
            let result = if params.is_empty() {
                parsers::json_fields(line, extracted)
            } else {
                serde_json::from_str::<serde_json::Value>(line)
                    .map(|v| {
                        for (label, path) in params {
                            let value = parsers::json_path(&v, path).unwrap_or_default();
                            extracted.push((label.clone(), value));
                        }
                    })
                    .map_err(|e| e.to_string())
            };
            apply(labels, stream, extracted, result, "JSONParserErr");
        }
        Stage::Logfmt(params) => {
            extracted.clear();
            let result = parsers::logfmt_fields(line, extracted);
            if !params.is_empty() {
                let all = std::mem::take(extracted);
                for (label, key) in params {
                    let v = all.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                    extracted.push((label.clone(), v.unwrap_or_default()));
                }
            }
            apply(labels, stream, extracted, result, "LogfmtParserErr");
        }
        Stage::Regexp(re) => {
            if let Some(c) = re.captures(line) {
                for name in re.capture_names().flatten() {
                    if let Some(m) = c.name(name) {
                        set_extracted(labels, stream, name, m.as_str());
                    }
                }
            }
        }
        Stage::Pattern(p) => {
            extracted.clear();
            if p.matches(line, extracted) {
                apply(labels, stream, extracted, Ok(()), "");
            }
        }
        Stage::Unpack => {
            extracted.clear();
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
                Ok(m) => {
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("_entry", serde_json::Value::String(s)) => *line = s,
                            (_, serde_json::Value::String(s)) => {
                                set_extracted(labels, stream, &parsers::sanitize(&k), &s)
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => set_error(labels, "JSONParserErr", &e.to_string()),
            }
        }
        _ => {}
    }
}

fn sel_matches(s: &LabelSel, k: &str, v: &str) -> bool {
    s.name == k && s.matcher.as_ref().is_none_or(|m| m.matches(v))
}

fn apply(
    labels: &mut LabelMap,
    stream: &LabelMap,
    extracted: &mut Vec<(String, String)>,
    result: Result<(), String>,
    err: &str,
) {
    if let Err(e) = result {
        set_error(labels, err, &e);
        return;
    }
    for (k, v) in extracted.drain(..) {
        set_extracted(labels, stream, &k, &v);
    }
}

/// An extracted label named like a stream label gets `_extracted` appended, as in Loki.
fn set_extracted(labels: &mut LabelMap, stream: &LabelMap, name: &str, value: &str) {
    let name = if stream.contains_key(name) {
        format!("{name}_extracted")
    } else {
        name.to_string()
    };
    labels.insert(name, value.to_string());
}

fn set_error(labels: &mut LabelMap, kind: &str, details: &str) {
    if !labels.contains_key(ERROR) {
        labels.insert(ERROR.into(), kind.into());
        labels.insert(ERROR_DETAILS.into(), details.into());
    }
}

pub fn line_filter(f: &LineFilter, line: &str) -> bool {
    let any = f.alternatives.iter().any(|a| match &a.regex {
        Some(r) => r.is_match(line),
        None => line.contains(a.text.as_str()),
    });
    match f.op {
        FilterOp::Contains | FilterOp::Matches => any,
        FilterOp::NotContains | FilterOp::NotMatches => !any,
    }
}

/// Evaluates a label filter; a value that is not a number sets `LabelFilterErr` and keeps the
/// line, a missing label drops it.
pub fn label_filter(f: &LabelFilter, labels: &mut LabelMap) -> bool {
    match f {
        LabelFilter::And(a, b) => label_filter(a, labels) && label_filter(b, labels),
        LabelFilter::Or(a, b) => label_filter(a, labels) || label_filter(b, labels),
        LabelFilter::Str(m) => m.matches(labels.get(&m.name).map_or("", String::as_str)),
        LabelFilter::Num {
            name,
            op,
            value,
            kind,
        } => {
            let Some(raw) = labels.get(name) else {
                return false;
            };
            match convert(raw, *kind) {
                Some(v) => op.apply(v, *value),
                None => {
                    let details = format!(
                        "cannot convert {raw:?} of label {name:?} to a {}",
                        kind_name(*kind)
                    );
                    set_error(labels, "LabelFilterErr", &details);
                    true
                }
            }
        }
    }
}

/// A label value read as a number, a duration (in seconds) or a byte size.
pub fn convert(raw: &str, kind: NumKind) -> Option<f64> {
    let raw = raw.trim();
    match kind {
        NumKind::Number => raw.parse().ok(),
        NumKind::Duration => super::lex::parse_duration(raw).or_else(|| {
            // A bare number is not a Go duration, but `duration_seconds` of "1.5" is common.
            raw.parse().ok()
        }),
        NumKind::Bytes => super::lex::parse_bytes(raw),
    }
}

fn kind_name(k: NumKind) -> &'static str {
    match k {
        NumKind::Number => "number",
        NumKind::Duration => "duration",
        NumKind::Bytes => "byte size",
    }
}

fn decolorize(s: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\x1b\[[0-9;]*[A-Za-z]").expect("valid"))
        .replace_all(s, "")
        .into_owned()
}

fn arg(a: &[Value], i: usize) -> String {
    a.get(i)
        .map(|v| match v {
            Value::Str(s) => s.clone(),
            other => medic_template::fmt::sprint(std::slice::from_ref(other)),
        })
        .unwrap_or_default()
}

/// The functions `line_format` and `label_format` offer (a subset of Loki's: Sprig's string
/// functions and `__line__`/`__timestamp__`).
fn template_funcs() -> Funcs {
    let mut f = Funcs::prometheus();
    f.insert("__line__", |_| {
        Ok(Value::Str(CURRENT.with(|c| c.borrow().0.clone())))
    });
    f.insert("__timestamp__", |_| {
        Ok(Value::Int(CURRENT.with(|c| c.borrow().1)))
    });
    type StrFn = fn(&str) -> String;
    let s1: [(&str, StrFn); 6] = [
        ("ToLower", str::to_lowercase),
        ("lower", str::to_lowercase),
        ("ToUpper", str::to_uppercase),
        ("upper", str::to_uppercase),
        ("TrimSpace", |s| s.trim().to_string()),
        ("trim", |s| s.trim().to_string()),
    ];
    for (name, func) in s1 {
        f.insert(name, move |a| Ok(Value::Str(func(&arg(a, 0)))));
    }
    // Sprig's order: the string being changed comes last.
    f.insert("trimPrefix", |a| {
        Ok(Value::Str(
            arg(a, 1)
                .strip_prefix(arg(a, 0).as_str())
                .map(str::to_string)
                .unwrap_or_else(|| arg(a, 1)),
        ))
    });
    f.insert("trimSuffix", |a| {
        Ok(Value::Str(
            arg(a, 1)
                .strip_suffix(arg(a, 0).as_str())
                .map(str::to_string)
                .unwrap_or_else(|| arg(a, 1)),
        ))
    });
    f.insert("TrimPrefix", |a| {
        Ok(Value::Str(
            arg(a, 0)
                .strip_prefix(arg(a, 1).as_str())
                .map(str::to_string)
                .unwrap_or_else(|| arg(a, 0)),
        ))
    });
    f.insert("TrimSuffix", |a| {
        Ok(Value::Str(
            arg(a, 0)
                .strip_suffix(arg(a, 1).as_str())
                .map(str::to_string)
                .unwrap_or_else(|| arg(a, 0)),
        ))
    });
    f.insert("replace", |a| {
        Ok(Value::Str(arg(a, 2).replace(&arg(a, 0), &arg(a, 1))))
    });
    f.insert("contains", |a| {
        Ok(Value::Bool(arg(a, 1).contains(&arg(a, 0))))
    });
    f.insert("hasPrefix", |a| {
        Ok(Value::Bool(arg(a, 1).starts_with(&arg(a, 0))))
    });
    f.insert("hasSuffix", |a| {
        Ok(Value::Bool(arg(a, 1).ends_with(&arg(a, 0))))
    });
    f.insert("default", |a| {
        let v = a.get(1).cloned().unwrap_or_default();
        Ok(if v.truthy() {
            v
        } else {
            a.first().cloned().unwrap_or_default()
        })
    });
    f.insert("repeat", |a| {
        let n = a
            .first()
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            .clamp(0.0, 1000.0) as usize;
        Ok(Value::Str(arg(a, 1).repeat(n)))
    });
    f.insert("regexReplaceAll", |a| {
        let re = regex::Regex::new(&arg(a, 0)).map_err(|e| e.to_string())?;
        Ok(Value::Str(
            re.replace_all(&arg(a, 1), arg(a, 2).as_str()).into_owned(),
        ))
    });
    f.insert("regexReplaceAllLiteral", |a| {
        let re = regex::Regex::new(&arg(a, 0)).map_err(|e| e.to_string())?;
        Ok(Value::Str(
            re.replace_all(&arg(a, 1), regex::NoExpand(&arg(a, 2)))
                .into_owned(),
        ))
    });
    f
}
