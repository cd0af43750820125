//! Alertmanager's matcher syntax, as in `route.matchers`, `inhibit_rules`, amtool and the API's
//! `filter` parameter: `alertname="Down"`, `severity=~"crit|page"`, unquoted values, and lists
//! in braces or not (`{a="1", b!="2"}`), parsed exactly as Alertmanager 0.25 parses them.

use medic_model::{MatchType, Matcher};

use std::fmt::Write as _;

/// Parses one string that holds one or more comma-separated matchers.
pub fn parse_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            '"' => {
                if !escaped {
                    inside_quotes = !inside_quotes;
                } else {
                    escaped = false;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    if !token.trim().is_empty() {
        tokens.push(token.trim().to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses a single matcher, `name op value` with the value quoted or not.
pub fn parse_matcher(s: &str) -> Result<Matcher, String> {
    let bad = || format!("bad matcher format: {s}");
    let t = s.trim();
    let name_end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(t.len(), |(i, _)| i);
    if name_end == 0 {
        return Err(bad());
    }
    let name = &t[..name_end];
    let rest = t[name_end..].trim_start();
    let (kind, raw) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else {
        return Err(bad());
    };
    let raw_full = raw.trim();
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let last = chars.peek().is_none();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_quote || i + 1 < raw.len() {
                    return Err(format!(
                        "matcher value contains unescaped double quote: {raw_full}"
                    ));
                }
                expect_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(format!(
            "matcher value contains unescaped double quote: {raw_full}"
        ));
    }
    Matcher::new(kind, name, value).map_err(|e| e.to_string())
}

/// A matcher as Alertmanager prints it: `name="value"` with OpenMetrics escaping.
pub fn format_matcher(m: &Matcher) -> String {
    let mut s = String::with_capacity(m.name.len() + m.value.len() + 4);
    s.push_str(&m.name);
    s.push_str(m.kind.as_str());
    s.push('"');
    for c in m.value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '"' => s.push_str("\\\""),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A matcher list as Alertmanager prints it: `{a="1",b=~"x"}`.
pub fn format_matchers(ms: &[Matcher]) -> String {
    let mut s = String::from("{");
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{}", format_matcher(m));
    }
    s.push('}');
    s
}

/// Sorts matchers as Alertmanager's `labels.Matchers` sorts them (name, value, type).
pub fn sort_matchers(ms: &mut [Matcher]) {
    fn rank(k: MatchType) -> u8 {
        match k {
            MatchType::Equal => 0,
            MatchType::NotEqual => 1,
            MatchType::Regexp => 2,
            MatchType::NotRegexp => 3,
        }
    }
    ms.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.value.cmp(&b.value))
            .then_with(|| rank(a.kind).cmp(&rank(b.kind)))
    });
}

/// Whether every matcher matches the label set (a missing label is the empty string).
pub fn matches_all(ms: &[Matcher], labels: &medic_model::Labels) -> bool {
    ms.iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> (MatchType, String, String) {
        let m = parse_matcher(s).unwrap();
        (m.kind, m.name, m.value)
    }

    #[test]
    fn parses_alertmanager_matcher_forms() {
        assert_eq!(
            one(r#"alertname="Watchdog""#),
            (MatchType::Equal, "alertname".into(), "Watchdog".into())
        );
        assert_eq!(
            one("severity =~ crit|page"),
            (MatchType::Regexp, "severity".into(), "crit|page".into())
        );
        assert_eq!(
            one(r#"msg!="say \"hi\"\n""#),
            (MatchType::NotEqual, "msg".into(), "say \"hi\"\n".into())
        );
        assert_eq!(
            one(r#"path!~"C:\\dir""#),
            (MatchType::NotRegexp, "path".into(), r"C:\dir".into())
        );
        let ms = parse_matchers(r#"{foo="bar,baz", dings!=bums}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].value, "bar,baz");
        assert_eq!(ms[1].name, "dings");
    }

    #[test]
    fn rejects_what_alertmanager_rejects() {
        for bad in [
            r#"foo="bar"baz""#,
            r#"foo="bar"#,
            "=bar",
            "1foo=bar",
            "foo",
            r#"x=~"(""#,
        ] {
            assert!(parse_matcher(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formats_round_trip() {
        let ms = parse_matchers(r#"{a="x\"y", b=~"1|2"}"#).unwrap();
        assert_eq!(format_matchers(&ms), r#"{a="x\"y",b=~"1|2"}"#);
        let again = parse_matchers(&format_matchers(&ms)).unwrap();
        assert_eq!(again[0].value, "x\"y");
    }
}
