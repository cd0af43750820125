//! Parsing of series selectors as the index APIs take them in `match[]`:
//! `up`, `up{job="api"}`, `{__name__=~"http_.*", code!="200"}`.

use crate::{is_valid_metric_name, Matcher, MatcherError, METRIC_NAME};

/// Why a selector did not parse; `position` is a byte offset into the input.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid series selector {input:?} at position {position}: {reason}")]
pub struct SelectorError {
    /// The selector as given.
    pub input: String,
    /// Byte offset of the problem.
    pub position: usize,
    /// What was wrong.
    pub reason: String,
}

/// Parses a series selector into matchers. A selector must contain at least one matcher that
/// does not match the empty string, as Prometheus requires (so `{}` or `{a=""}` cannot select
/// every series by accident).
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, SelectorError> {
    let err = |position: usize, reason: String| SelectorError {
        input: input.to_string(),
        position,
        reason,
    };
    let s = input.trim_end();
    let bytes = s.as_bytes();
    let mut pos = s.len() - s.trim_start().len();
    let mut matchers = Vec::new();

    let name_start = pos;
    while pos < bytes.len()
        && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_' || bytes[pos] == b':')
    {
        pos += 1;
    }
    if pos > name_start {
        let name = &s[name_start..pos];
        if !is_valid_metric_name(name) {
            return Err(err(name_start, format!("invalid metric name {name:?}")));
        }
        matchers.push(Matcher::equal(METRIC_NAME, name));
    }
    if pos < bytes.len() {
        if bytes[pos] != b'{' {
            return Err(err(
                pos,
                format!(
                    "unexpected character {:?}",
                    s[pos..].chars().next().unwrap_or(' ')
                ),
            ));
        }
        pos += 1;
        loop {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos >= bytes.len() {
                return Err(err(pos, "unclosed '{'".into()));
            }
            if bytes[pos] == b'}' {
                pos += 1;
                break;
            }
            let m_start = pos;
            // Find the end of this matcher: a ',' or '}' outside quotes.
            let mut quote: Option<u8> = None;
            while pos < bytes.len() {
                let c = bytes[pos];
                match quote {
                    Some(q) => {
                        if c == b'\\' && q != b'`' {
                            pos += 1;
                        } else if c == q {
                            quote = None;
                        }
                    }
                    None => {
                        if c == b'"' || c == b'\'' || c == b'`' {
                            quote = Some(c);
                        } else if c == b',' || c == b'}' {
                            break;
                        }
                    }
                }
                pos += 1;
            }
            if quote.is_some() {
                return Err(err(m_start, "unterminated string".into()));
            }
            let text = &s[m_start..pos.min(s.len())];
            let m = Matcher::parse(text).map_err(|e| match e {
                MatcherError::Syntax(_) => err(
                    m_start,
                    format!(
                        "expected label matcher like name=\"value\", got {:?}",
                        text.trim()
                    ),
                ),
                other => err(m_start, other.to_string()),
            })?;
            matchers.push(m);
            if pos < bytes.len() && bytes[pos] == b',' {
                pos += 1;
            }
        }
        if pos < bytes.len() {
            return Err(err(pos, "unexpected text after '}'".into()));
        }
    }
    if matchers.is_empty() {
        return Err(err(0, "empty selector".into()));
    }
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(err(
            0,
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(matchers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchType;

    #[test]
    fn parses_selectors() {
        let m = parse_selector(r#"up{job="api", code=~"5..",}"#).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].to_string(), r#"__name__="up""#);
        assert_eq!(m[2].kind, MatchType::Regexp);
        let m = parse_selector(r#"{__name__=~"a|b", x="1,2}"}"#).unwrap();
        assert_eq!(m[1].value, "1,2}");
        assert_eq!(parse_selector("node_load1").unwrap().len(), 1);
    }

    #[test]
    fn rejects_bad_selectors_with_position() {
        for (s, pos) in [
            ("up{", 3),
            (r#"up{job="a""#, 10),
            (r#"up{job}"#, 3),
            (r#"{job=""}"#, 0),
            ("{}", 0),
            (r#"up{a="1"} x"#, 9),
            ("up-down", 2),
        ] {
            let e = parse_selector(s).unwrap_err();
            assert_eq!(e.position, pos, "{s}: {e}");
        }
    }
}
