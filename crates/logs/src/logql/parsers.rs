//! The pipeline's parsers: `json` (flattened with `_`), `logfmt`, `pattern`, and JSON paths
//! for `json label="a.b[0]"`. Label names are sanitised as Loki does: anything outside
//! `[a-zA-Z0-9_]` becomes `_`, and a leading digit gets a `_` before it.

use serde_json::Value;

use super::ast::PathPart;

/// Appends the fields of a JSON object line, flattened (`{"a":{"b":1}}` gives `a_b="1"`).
/// Arrays are skipped, as in Loki. Errs when the line is not a JSON object.
pub fn json_fields(line: &str, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let Value::Object(map) = v else {
        return Err("the line is not a JSON object".into());
    };
    flatten("", &Value::Object(map), out);
    Ok(())
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    sanitize(k)
                } else {
                    format!("{prefix}_{}", sanitize(k))
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(_) => {}
        other => {
            if !prefix.is_empty() {
                out.push((prefix.to_string(), scalar(other)));
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The value at a JSON path, as a label value; `None` when the path does not lead to a value.
pub fn json_path(line: &Value, path: &[PathPart]) -> Option<String> {
    let mut cur = line;
    for p in path {
        cur = match (p, cur) {
            (PathPart::Key(k), Value::Object(m)) => m.get(k)?,
            (PathPart::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(match cur {
        Value::Object(_) | Value::Array(_) => cur.to_string(),
        other => scalar(other),
    })
}

/// Reads `a.b[0]["c d"]` into parts.
pub fn parse_json_path(s: &str) -> Result<Vec<PathPart>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let mut key = String::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                if !key.is_empty() {
                    out.push(PathPart::Key(std::mem::take(&mut key)));
                }
                i += 1;
            }
            b'[' => {
                if !key.is_empty() {
                    out.push(PathPart::Key(std::mem::take(&mut key)));
                }
                let end = s[i..]
                    .find(']')
                    .ok_or_else(|| format!("unclosed [ in JSON path {s:?}"))?
                    + i;
                let inner = s[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
                    out.push(PathPart::Key(q.to_string()));
                } else {
                    let n = inner
                        .parse()
                        .map_err(|_| format!("invalid index {inner:?} in JSON path {s:?}"))?;
                    out.push(PathPart::Index(n));
                }
                i = end + 1;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                key.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    if !key.is_empty() {
        out.push(PathPart::Key(key));
    }
    if out.is_empty() {
        return Err(format!("empty JSON path {s:?}"));
    }
    Ok(out)
}

/// A label name Loki would accept.
pub fn sanitize(k: &str) -> String {
    let mut s: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// `key=value key2="quoted value"` pairs. Errs on an unterminated quote.
pub fn logfmt_fields(line: &str, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        let key = &line[ks..i];
        if key.is_empty() {
            i += 1;
            continue;
        }
        if i >= b.len() || b[i] == b' ' {
            out.push((sanitize(key), String::new()));
            continue;
        }
        i += 1; // '='
        let value = if i < b.len() && b[i] == b'"' {
            let (v, end) =
                quoted(line, i).ok_or_else(|| format!("unterminated quote at position {i}"))?;
            i = end;
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            line[vs..i].to_string()
        };
        out.push((sanitize(key), value));
    }
    Ok(())
}

fn quoted(line: &str, start: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = line[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Some((out, start + 1 + off + 1)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// A `pattern` expression: literals and `<name>` captures (`<_>` captures nothing).
#[derive(Debug, Clone)]
pub struct Pattern {
    parts: Vec<PatternPart>,
}

#[derive(Debug, Clone)]
enum PatternPart {
    Literal(String),
    Capture(Option<String>),
}

impl Pattern {
    /// Parses a pattern; it must name at least one capture and not put two captures side by side.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find('<') {
                Some(p) => {
                    let close = rest[p..].find('>').map(|c| c + p);
                    let name = close.map(|c| &rest[p + 1..c]);
                    match (close, name) {
                        (Some(c), Some(n)) if n == "_" || (!n.is_empty() && sanitize(n) == n) => {
                            if p > 0 {
                                parts.push(PatternPart::Literal(rest[..p].to_string()));
                            }
                            if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                                return Err(format!("pattern {s:?}: two captures side by side"));
                            }
                            parts.push(PatternPart::Capture((n != "_").then(|| n.to_string())));
                            rest = &rest[c + 1..];
                        }
                        _ => {
                            let end = p + 1;
                            push_literal(&mut parts, &rest[..end]);
                            rest = &rest[end..];
                        }
                    }
                }
                None => {
                    push_literal(&mut parts, rest);
                    rest = "";
                }
            }
        }
        if !parts
            .iter()
            .any(|p| matches!(p, PatternPart::Capture(Some(_))))
        {
            return Err(format!("pattern {s:?} names no capture (<name>)"));
        }
        Ok(Pattern { parts })
    }

    /// Matches `line`, appending the captures; false when the line does not fit.
    pub fn matches(&self, line: &str, out: &mut Vec<(String, String)>) -> bool {
        let mut pos = 0;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                PatternPart::Literal(l) => {
                    if i == 0 {
                        if !line.starts_with(l.as_str()) {
                            return false;
                        }
                        pos = l.len();
                    }
                }
                PatternPart::Capture(name) => {
                    let (value, next) = match self.parts.get(i + 1) {
                        Some(PatternPart::Literal(l)) => match line[pos..].find(l.as_str()) {
                            Some(off) => (&line[pos..pos + off], pos + off + l.len()),
                            None => return false,
                        },
                        _ => (&line[pos..], line.len()),
                    };
                    if let Some(n) = name {
                        out.push((n.clone(), value.to_string()));
                    }
                    pos = next;
                }
            }
        }
        true
    }
}

fn push_literal(parts: &mut Vec<PatternPart>, s: &str) {
    if let Some(PatternPart::Literal(l)) = parts.last_mut() {
        l.push_str(s);
    } else {
        parts.push(PatternPart::Literal(s.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_reads_an_access_log() {
        let p = Pattern::parse(r#"<ip> - - <_> "<method> <uri> <_>" <status> <size>"#).unwrap();
        let mut out = Vec::new();
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326"#;
        assert!(p.matches(line, &mut out));
        assert_eq!(
            out,
            [
                ("ip", "10.0.0.1"),
                ("method", "GET"),
                ("uri", "/a.gif"),
                ("status", "200"),
                ("size", "2326")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn logfmt_and_json() {
        let mut out = Vec::new();
        logfmt_fields(r#"level=info msg="a b" dur=1s flag"#, &mut out).unwrap();
        assert_eq!(out[1], ("msg".into(), "a b".into()));
        assert_eq!(out[3], ("flag".into(), "".into()));
        out.clear();
        json_fields(r#"{"a":{"b.c":1},"d":[1],"e":"x"}"#, &mut out).unwrap();
        assert_eq!(
            out,
            vec![("a_b_c".into(), "1".into()), ("e".into(), "x".into())]
        );
        assert_eq!(
            parse_json_path(r#"a.b[0]["c d"]"#).unwrap(),
            vec![
                PathPart::Key("a".into()),
                PathPart::Key("b".into()),
                PathPart::Index(0),
                PathPart::Key("c d".into())
            ]
        );
    }
}
