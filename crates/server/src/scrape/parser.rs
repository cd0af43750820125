//! Parsers for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text. Errors
//! carry the line number, so a target that serves garbage shows exactly where on the targets
//! page.

use medic_model::{is_valid_label_name, is_valid_metric_name, Label, Labels, METRIC_NAME};

/// Which format a scrape response is in, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4` (and anything unrecognised, as Prometheus does).
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// Chooses the parser for a `Content-Type` header value.
    pub fn from_content_type(ct: Option<&str>) -> Format {
        match ct {
            Some(ct) if ct.trim_start().starts_with("application/openmetrics-text") => {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// Metric name and labels.
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// The exposed timestamp in ms, if any.
    pub timestamp: Option<i64>,
    /// A native histogram (protobuf scrapes only); `value` is then unused.
    pub histogram: Option<std::sync::Arc<medic_model::FloatHistogram>>,
}

/// A parse failure at a line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// What a target says about a metric family: `# TYPE`, `# HELP` and (OpenMetrics) `# UNIT`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MetricMeta {
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`, … (`unknown` when not given).
    #[serde(rename = "type")]
    pub kind: String,
    /// The help text, unescaped.
    pub help: String,
    /// The unit, or empty.
    pub unit: String,
}

/// Metric families' metadata by name.
pub type Metadata = std::collections::BTreeMap<String, MetricMeta>;

/// Records one comment line's metadata (`rest` is what follows `#`): `TYPE`, `HELP`, `UNIT`.
/// Prometheus's `untyped` is reported as `unknown`, as its metadata API does.
fn note_metadata(out: &mut Metadata, rest: &str) {
    let mut parts = rest.trim_start().splitn(3, [' ', '\t']);
    let (Some(kw), Some(name)) = (parts.next(), parts.next()) else {
        return;
    };
    let value = parts.next().unwrap_or("");
    if !is_valid_metric_name(name) || out.len() >= 100_000 {
        return;
    }
    let entry = || MetricMeta {
        kind: "unknown".into(),
        ..MetricMeta::default()
    };
    match kw {
        "TYPE" => {
            let kind = match value.trim() {
                "untyped" => "unknown",
                k => k,
            };
            out.entry(name.to_string()).or_insert_with(entry).kind = kind.to_string();
        }
        "HELP" => {
            out.entry(name.to_string()).or_insert_with(entry).help = unescape_help(value);
        }
        "UNIT" => {
            out.entry(name.to_string()).or_insert_with(entry).unit = value.trim().to_string();
        }
        _ => {}
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses a whole response body.
pub fn parse(body: &str, format: Format) -> Result<Vec<ParsedSample>, ParseError> {
    parse_into(body, format, None, 0)
}

/// Parses a whole response body and, in the same pass, the metadata of its metric families;
/// more than `max_samples` samples (0: no limit) fail it before they take memory.
pub fn parse_with_metadata(
    body: &str,
    format: Format,
    max_samples: usize,
) -> Result<(Vec<ParsedSample>, Metadata), ParseError> {
    let mut meta = Metadata::new();
    let samples = parse_into(body, format, Some(&mut meta), max_samples)?;
    Ok((samples, meta))
}

fn parse_into(
    body: &str,
    format: Format,
    mut meta: Option<&mut Metadata>,
    max_samples: usize,
) -> Result<Vec<ParsedSample>, ParseError> {
    let mut out = Vec::new();
    let mut saw_eof = false;
    // Counted once: an empty line asks whether it is the last.
    let lines = body.split('\n').count();
    for (i, raw) in body.split('\n').enumerate() {
        if max_samples > 0 && out.len() > max_samples {
            return Err(ParseError {
                line: i + 1,
                message: format!(
                    "more than {max_samples} samples in one scrape (storage.max_series)"
                ),
            });
        }
        let line_no = i + 1;
        let err = |message: String| ParseError {
            line: line_no,
            message,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if saw_eof {
            if line.is_empty() && i + 1 == lines {
                continue;
            }
            return Err(err("data after # EOF".into()));
        }
        if format == Format::Text {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(rest) = t.strip_prefix('#') {
                check_text_comment(rest).map_err(err)?;
                if let Some(m) = meta.as_deref_mut() {
                    note_metadata(m, rest);
                }
                continue;
            }
            out.push(parse_sample(t, format).map_err(err)?);
        } else {
            if line.is_empty() {
                if i + 1 == lines {
                    continue;
                }
                return Err(err("empty line (not allowed in OpenMetrics)".into()));
            }
            if line == "# EOF" {
                saw_eof = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                check_om_comment(rest).map_err(err)?;
                if let Some(m) = meta.as_deref_mut() {
                    note_metadata(m, rest);
                }
                continue;
            }
            if line.starts_with('#') {
                return Err(err(format!("invalid comment {line:?}")));
            }
            out.push(parse_sample(line, format).map_err(err)?);
        }
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err(ParseError {
            line: body.lines().count().max(1),
            message: "OpenMetrics data does not end with # EOF".into(),
        });
    }
    Ok(out)
}

fn check_text_comment(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    let mut parts = rest.splitn(3, [' ', '\t']);
    match parts.next() {
        Some("TYPE") => {
            let name = parts.next().unwrap_or("");
            if !is_valid_metric_name(name) {
                return Err(format!("invalid metric name {name:?} in TYPE line"));
            }
            let kind = parts.next().unwrap_or("").trim();
            if !matches!(
                kind,
                "counter" | "gauge" | "histogram" | "summary" | "untyped"
            ) {
                return Err(format!("invalid metric type {kind:?}"));
            }
            Ok(())
        }
        Some("HELP") => {
            let name = parts.next().unwrap_or("");
            if !is_valid_metric_name(name) {
                return Err(format!("invalid metric name {name:?} in HELP line"));
            }
            Ok(())
        }
        _ => Ok(()), // other comments are ignored
    }
}

fn check_om_comment(rest: &str) -> Result<(), String> {
    let mut parts = rest.splitn(3, ' ');
    let kw = parts.next().unwrap_or("");
    let name = parts.next().unwrap_or("");
    match kw {
        "TYPE" | "HELP" | "UNIT" => {
            if !is_valid_metric_name(name) {
                return Err(format!("invalid metric name {name:?} in {kw} line"));
            }
            if kw == "TYPE" {
                let kind = parts.next().unwrap_or("");
                if !matches!(
                    kind,
                    "counter"
                        | "gauge"
                        | "histogram"
                        | "gaugehistogram"
                        | "summary"
                        | "info"
                        | "stateset"
                        | "unknown"
                ) {
                    return Err(format!("invalid metric type {kind:?}"));
                }
            }
            Ok(())
        }
        _ => Err(format!("invalid comment keyword {kw:?}")),
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    /// Skips blanks; returns whether there were any.
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ') | Some(b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }
    fn ident(&mut self, metric: bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || (metric && c == b':') {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.pos]
    }
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn col(&self) -> usize {
        self.pos + 1
    }
}

fn parse_sample(line: &str, format: Format) -> Result<ParsedSample, String> {
    let mut c = Cursor { s: line, pos: 0 };
    let name = c.ident(true);
    if name.is_empty() || !is_valid_metric_name(name) {
        return Err(format!(
            "expected a metric name at column {}, got {:?}",
            c.col(),
            line.chars().next().unwrap_or(' ')
        ));
    }
    if let Some(ch) = c.peek().filter(|ch| !matches!(ch, b' ' | b'\t' | b'{')) {
        return Err(format!(
            "invalid character {:?} after metric name {name:?} at column {}",
            ch as char,
            c.col()
        ));
    }
    let mut labels = vec![Label::new(METRIC_NAME, name)];
    let mut blank_before_value = format == Format::Text && c.skip_ws();
    if c.peek() == Some(b'{') {
        blank_before_value = false;
        c.pos += 1;
        loop {
            if format == Format::Text {
                c.skip_ws();
            }
            if c.peek() == Some(b'}') {
                c.pos += 1;
                break;
            }
            let lname = c.ident(false);
            if lname.is_empty() || !is_valid_label_name(lname) {
                return Err(format!("expected a label name at column {}", c.col()));
            }
            if format == Format::Text {
                c.skip_ws();
            }
            if c.peek() != Some(b'=') {
                return Err(format!(
                    "expected '=' after label name {lname:?} at column {}",
                    c.col()
                ));
            }
            c.pos += 1;
            if format == Format::Text {
                c.skip_ws();
            }
            if c.peek() != Some(b'"') {
                return Err(format!(
                    "expected '\"' to start the value of label {lname:?} at column {}",
                    c.col()
                ));
            }
            c.pos += 1;
            let value = read_label_value(&mut c)
                .ok_or_else(|| format!("unterminated value of label {lname:?}"))?;
            if lname == METRIC_NAME {
                return Err("label __name__ may not be set in the label list".into());
            }
            labels.push(Label::new(lname, value));
            if format == Format::Text {
                c.skip_ws();
            }
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {
                    c.pos += 1;
                    break;
                }
                _ => {
                    return Err(format!(
                        "expected ',' or '}}' after label {lname:?} at column {}",
                        c.col()
                    ))
                }
            }
        }
    }
    if !c.skip_ws() && !blank_before_value {
        return Err(format!(
            "expected a space before the value at column {}",
            c.col()
        ));
    }
    let vtok = c.token();
    let value = parse_float(vtok).ok_or_else(|| format!("invalid value {vtok:?}"))?;
    c.skip_ws();
    let mut timestamp = None;
    if c.peek().is_some() && c.peek() != Some(b'#') {
        let ttok = c.token();
        timestamp = Some(match format {
            Format::Text => ttok
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ttok:?}"))?,
            Format::OpenMetrics => {
                let secs = parse_float(ttok)
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("invalid timestamp {ttok:?}"))?;
                (secs * 1000.0).round() as i64
            }
        });
        c.skip_ws();
    }
    match c.peek() {
        None => {}
        // OpenMetrics exemplar: `# {labels} value [timestamp]`; accepted and not stored.
        Some(b'#') if format == Format::OpenMetrics => {}
        Some(_) => {
            return Err(format!(
                "unexpected text {:?} at column {}",
                &line[c.pos..],
                c.col()
            ))
        }
    }
    let labels = Labels::from_unsorted(labels).map_err(|n| format!("label {n:?} appears twice"))?;
    Ok(ParsedSample {
        labels,
        value,
        timestamp,
        histogram: None,
    })
}

fn read_label_value(c: &mut Cursor<'_>) -> Option<String> {
    let mut out = String::new();
    let rest = &c.s[c.pos..];
    let mut chars = rest.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => {
                c.pos += i + 1;
                return Some(out);
            }
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            ch => out.push(ch),
        }
    }
    None
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            // Rust also accepts "infinity" spellings; keep to what Go's ParseFloat accepts for
            // finite numbers (digits, '.', exponent, sign, '_' is not allowed).
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                return None;
            }
            s.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_format() {
        let body = "# HELP http_requests_total Total.\n# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n# A comment\nmsdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\nsomething_weird{problem=\"division by zero\"} +Inf -3982045\n\
go_gc{quantile=\"0.5\", } NaN\n";
        let s = parse(body, Format::Text).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].labels.get("code"), Some("200"));
        assert_eq!(s[0].timestamp, Some(1395066363000));
        assert_eq!(s[2].labels.get("path"), Some("C:\\DIR\\FILE.TXT"));
        assert_eq!(
            s[2].labels.get("error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        assert_eq!(s[3].timestamp, None);
        assert_eq!(s[4].value, f64::INFINITY);
        assert_eq!(s[4].timestamp, Some(-3982045));
        assert!(s[5].value.is_nan());
    }

    #[test]
    fn metadata_is_read_from_help_type_and_unit() {
        let (_, m) = parse_with_metadata("# HELP a_total Requests \\ with\\nnewline.\n# TYPE a_total counter\na_total 1\n# TYPE b untyped\n# TYPE c_seconds gauge\n# UNIT c_seconds seconds\n", Format::Text, 0).unwrap();
        assert_eq!(m["a_total"].kind, "counter");
        assert_eq!(m["a_total"].help, "Requests \\ with\nnewline.");
        assert_eq!(m["b"].kind, "unknown");
        assert_eq!(m["c_seconds"].unit, "seconds");
    }

    #[test]
    fn parses_openmetrics() {
        let body = "# TYPE foo counter\n# HELP foo Foo.\nfoo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"x\"} 1 1520879607.7\nbar 2\n# EOF\n";
        let s = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].timestamp, Some(1520879607789));
        assert_eq!(s[1].value, 2.0);
        let e = parse("foo 1\n", Format::OpenMetrics).unwrap_err();
        assert!(e.message.contains("EOF"));
        let e = parse("foo 1\n# EOF\nbar 2\n", Format::OpenMetrics).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let cases = [
            ("ok 1\nbad-name 1\n", 2, "metric name"),
            ("ok 1\nok 1\nx{a=b} 1", 3, "'\"'"),
            ("x{a=\"1\"} abc", 1, "invalid value"),
            ("x 1 1.5", 1, "timestamp"),
            ("x{a=\"1\",a=\"2\"} 1", 1, "twice"),
            ("x{a=\"1\" 1", 1, "','"),
            ("<html>", 1, "metric name"),
            ("x 1 2 3", 1, "unexpected"),
            ("# TYPE x foo\n", 1, "type"),
        ];
        for (body, line, what) in cases {
            let e = parse(body, Format::Text).unwrap_err();
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(what), "{body:?}: {e}");
        }
    }

    #[test]
    fn format_from_content_type() {
        assert_eq!(
            Format::from_content_type(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Format::Text
        );
        assert_eq!(Format::from_content_type(None), Format::Text);
    }

    #[test]
    fn a_scrape_past_the_sample_limit_fails_while_parsing() {
        let body: String = (0..1000).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
        let e = parse_with_metadata(&body, Format::Text, 100).unwrap_err();
        assert!(e.message.contains("more than 100 samples"), "{e:?}");
        assert!(e.line <= 102, "stopped early: line {}", e.line);
        assert_eq!(
            parse_with_metadata(&body, Format::Text, 1000)
                .unwrap()
                .0
                .len(),
            1000
        );
    }

    #[test]
    fn many_empty_lines_take_linear_time() {
        let body = format!("a 1\n{}", "\n".repeat(200_000));
        let t = std::time::Instant::now();
        let _ = parse(&body, Format::OpenMetrics);
        let _ = parse(&body, Format::Text);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
