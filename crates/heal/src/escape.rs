//! Contextual escaping of template values, so that alert data cannot change the structure of the
//! text it lands in. Each escaper looks at the text produced so far to learn where the value
//! lands (inside which kind of string literal, or outside any) and escapes it for that place —
//! the obvious way of writing a playbook is the safe one, with no `| escape` to remember.
//!
//! - **PromQL**: inside `"…"` or `'…'` the value is escaped as a string body (and, after `=~`
//!   or `!~`, regex-quoted first, so `.*` matches only the two characters); inside a backtick
//!   string a value holding a backtick is refused; outside a string only a number, a duration or
//!   a name that is not a keyword is accepted.
//! - **JSON**: inside a string the value is escaped as a JSON string body; outside, a number,
//!   `true`, `false` or `null` stays as is and anything else becomes a quoted JSON string.

/// Where the next character of a PromQL text lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromqlPlace {
    Code,
    Str(char),
    Comment,
}

fn promql_place(text: &str) -> (PromqlPlace, usize) {
    let mut place = PromqlPlace::Code;
    let mut opened = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match place {
            PromqlPlace::Code => match c {
                '"' | '\'' | '`' => {
                    place = PromqlPlace::Str(c);
                    opened = i;
                }
                '#' => place = PromqlPlace::Comment,
                _ => {}
            },
            PromqlPlace::Str(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    place = PromqlPlace::Code;
                }
            }
            PromqlPlace::Comment => {
                if c == '\n' {
                    place = PromqlPlace::Code;
                }
            }
        }
    }
    (place, opened)
}

const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "atan2",
    "start",
    "end",
    "step",
    "limitk",
    "limit_ratio",
];

fn is_promql_bare(v: &str) -> bool {
    if v.is_empty() {
        return false;
    }
    if v.parse::<f64>().is_ok() && !v.contains(char::is_whitespace) {
        return true;
    }
    if medic_model::parse_duration(v).is_ok() {
        return true;
    }
    let mut chars = v.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !PROMQL_KEYWORDS.contains(&v.to_ascii_lowercase().as_str())
}

/// Escapes `value` for the place in a PromQL query that `before` ends at.
pub fn promql(before: &str, value: &str) -> Result<String, String> {
    match promql_place(before) {
        (PromqlPlace::Code, _) => {
            if is_promql_bare(value) {
                Ok(value.to_string())
            } else {
                Err(format!(
                    "the value {value:?} would land outside a string in a PromQL query; put the template inside quotes (\"{{{{ … }}}}\") so it stays a value"
                ))
            }
        }
        (PromqlPlace::Comment, _) => Ok(value.replace(['\n', '\r'], " ")),
        (PromqlPlace::Str('`'), _) => {
            if value.contains('`') {
                Err(format!(
                    "the value {value:?} holds a backtick and cannot go inside a `raw` PromQL string; use \"…\" quotes"
                ))
            } else {
                Ok(value.to_string())
            }
        }
        (PromqlPlace::Str(q), opened) => {
            let op = before[..opened].trim_end();
            // `=~`/`!~` in PromQL and LogQL; `|~` is LogQL's regex line filter.
            let value = if op.ends_with("=~") || op.ends_with("!~") || op.ends_with("|~") {
                regex::escape(value)
            } else {
                value.to_string()
            };
            Ok(string_body(&value, q))
        }
    }
}

/// `value` escaped as the body of a PromQL string quoted with `q` (Go's escapes).
fn string_body(value: &str, q: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether the next character of a JSON text lands inside a string.
fn json_in_string(text: &str) -> bool {
    let mut in_str = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        }
    }
    in_str
}

/// Escapes `value` for the place in a JSON document that `before` ends at.
pub fn json(before: &str, value: &str) -> Result<String, String> {
    let quoted = serde_json::to_string(value).map_err(|e| e.to_string())?;
    if json_in_string(before) {
        return Ok(quoted[1..quoted.len() - 1].to_string());
    }
    let bare = matches!(value, "true" | "false" | "null")
        || (serde_json::from_str::<serde_json::Number>(value).is_ok()
            && !value.starts_with(char::is_whitespace));
    Ok(if bare { value.to_string() } else { quoted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_values_stay_inside_their_string() {
        let hostile = "nope\"} or vector(42) or up{instance=\"x";
        let before = "count(up{instance=\"";
        let esc = promql(before, hostile).unwrap();
        let q = format!("{before}{esc}\"}})");
        let expr = promql_parser::parser::parse(&q).unwrap();
        // Still one selector whose matcher holds the whole value.
        let promql_parser::parser::Expr::Aggregate(agg) = expr else {
            panic!("{q}")
        };
        let promql_parser::parser::Expr::VectorSelector(vs) = *agg.expr else {
            panic!("{q}")
        };
        let m = vs.matchers.find_matchers("instance");
        assert_eq!(m.len(), 1, "{q}");
        assert_eq!(m[0].value, hostile);

        assert_eq!(promql("x{a='", "it's").unwrap(), "it\\'s");
        assert_eq!(
            promql("x{dir=\"", "C:\\data\\new").unwrap(),
            "C:\\\\data\\\\new"
        );
        assert_eq!(promql("x{a=\"", "a\nb").unwrap(), "a\\nb");
    }

    #[test]
    fn promql_regex_matchers_match_the_value_literally() {
        assert_eq!(promql("up{instance=~\"", ".*").unwrap(), "\\\\.\\\\*");
        assert_eq!(promql("up{instance !~ '", "a|b").unwrap(), "a\\\\|b");
        // A string that is not a regex matcher is not regex-quoted.
        assert_eq!(promql("up{instance=\"", ".*").unwrap(), ".*");
    }

    #[test]
    fn promql_outside_strings_takes_only_plain_values() {
        assert_eq!(promql("x > ", "0.5").unwrap(), "0.5");
        assert_eq!(promql("rate(x[", "5m").unwrap(), "5m");
        assert_eq!(promql("sum by (", "instance").unwrap(), "instance");
        assert!(promql("x > ", "1 or vector(1)").is_err());
        assert!(promql("x ", "or").is_err());
        assert!(promql("x{a=`", "a`b").is_err());
        assert_eq!(promql("x{a=`", "a\"b").unwrap(), "a\"b");
        // A quote inside a closed string does not confuse the scan.
        assert!(promql("x{a=\"q\\\"\"} > ", "1 or y").is_err());
    }

    #[test]
    fn json_values_cannot_add_fields() {
        let body = format!(
            "{{\"host\": \"{}\"}}",
            json("{\"host\": \"", "x\", \"admin\": true, \"y\": \"").unwrap()
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        assert_eq!(v["host"], "x\", \"admin\": true, \"y\": \"");
        assert_eq!(json("{\"n\": ", "5").unwrap(), "5");
        assert_eq!(
            json("{\"n\": ", "5, \"x\": 1").unwrap(),
            "\"5, \\\"x\\\": 1\""
        );
        assert_eq!(json("[", "true").unwrap(), "true");
    }
}
