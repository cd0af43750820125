//! Where a query that does not parse goes wrong, as Prometheus says it: `line:col: parse error:
//! what`. The parser (`promql-parser`) reports what but not where (and for most syntax errors
//! only "invalid promql query"); a light scan of the query's tokens finds the place and says what
//! was found there: an unclosed bracket, a closing bracket without its opening one, an operator
//! or keyword with nothing after it, two values with no operator between them.

/// A token as the scan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Open(char),
    Close(char),
    /// A name, number, string or duration: something that can stand as a value.
    Value,
    /// A name directly followed by `(` — a call, an aggregation or a grouping keyword.
    Callee,
    /// Binary operators, `,`, and keywords that need something after them.
    Needs,
    /// `=`, `!=`, `=~`, `!~` inside braces, `:` in subqueries, and the like.
    Other,
}

const NEED_MORE: &[&str] = &[
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
];

fn tokens(q: &str) -> Vec<(usize, usize, Tok)> {
    let b: Vec<(usize, char)> = q.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (at, c) = b[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < b.len() && b[i].1 != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let mut j = i + 1;
            while j < b.len() && b[j].1 != c {
                if b[j].1 == '\\' && c != '`' {
                    j += 1;
                }
                j += 1;
            }
            let end = b.get(j + 1).map_or(q.len(), |x| x.0);
            out.push((at, end, Tok::Value));
            i = j + 1;
            continue;
        }
        if c.is_alphanumeric()
            || c == '_'
            || c == ':' && out.last().is_none_or(|t| t.2 != Tok::Value)
            || c == '.'
        {
            let mut j = i;
            while j < b.len() && (b[j].1.is_alphanumeric() || "_:.".contains(b[j].1)) {
                j += 1;
            }
            let end = b.get(j).map_or(q.len(), |x| x.0);
            let word = &q[at..end];
            let mut k = j;
            while k < b.len() && b[k].1.is_whitespace() {
                k += 1;
            }
            let after_value = out
                .last()
                .is_some_and(|t| matches!(t.2, Tok::Value | Tok::Close(_)));
            let tok = if NEED_MORE.contains(&word.to_ascii_lowercase().as_str()) {
                Tok::Needs
            } else if after_value && matches!(word, "anchored" | "smoothed") {
                // A selector's range modifier, not a second value.
                Tok::Other
            } else if b.get(k).is_some_and(|x| x.1 == '(') {
                Tok::Callee
            } else {
                Tok::Value
            };
            out.push((at, end, tok));
            i = j;
            continue;
        }
        let end = b.get(i + 1).map_or(q.len(), |x| x.0);
        let tok = match c {
            '(' | '[' | '{' => Tok::Open(c),
            ')' | ']' | '}' => Tok::Close(c),
            '+' | '-' | '*' | '/' | '%' | '^' | ',' | '@' => Tok::Needs,
            '=' | '!' | '<' | '>' => {
                let two = b.get(i + 1).is_some_and(|x| "=~".contains(x.1));
                i += usize::from(two);
                Tok::Needs
            }
            _ => Tok::Other,
        };
        out.push((at, end, tok));
        i += 1;
    }
    out
}

/// Line and column (1-based, in characters) of byte offset `at`.
pub fn position(q: &str, at: usize) -> (usize, usize) {
    let before = &q[..at.min(q.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn at(q: &str, offset: usize, msg: String) -> String {
    let (l, c) = position(q, offset);
    format!("{l}:{c}: parse error: {msg}")
}

/// The place and a message for a query the parser refused, or `None` when the scan finds
/// nothing wrong (the parser's message is used as it is then).
pub fn locate(q: &str) -> Option<String> {
    let toks = tokens(q);
    // Each open bracket, where, and whether it holds a modifier's labels (`on (a) y` is fine).
    let mut stack: Vec<(char, usize, bool)> = Vec::new();
    let mut closed_modifier = false;
    let closing = |o: char| match o {
        '(' => ')',
        '[' => ']',
        _ => '}',
    };
    for (i, &(start, end, tok)) in toks.iter().enumerate() {
        match tok {
            Tok::Open(c) => {
                let modifier = i > 0
                    && toks[i - 1].2 == Tok::Needs
                    && q[toks[i - 1].0..toks[i - 1].1]
                        .chars()
                        .all(|ch| ch.is_alphabetic() || ch == '_');
                stack.push((c, start, modifier));
            }
            Tok::Close(c) => match stack.pop() {
                Some((o, _, m)) if closing(o) == c => closed_modifier = m,
                Some((o, s, _)) => {
                    let (l, col) = position(q, s);
                    return Some(at(
                        q,
                        start,
                        format!("unexpected \"{c}\": the \"{o}\" at {l}:{col} is not closed"),
                    ));
                }
                None => return Some(at(q, start, format!("unexpected right bracket \"{c}\""))),
            },
            _ => {}
        }
        if let Some(&(_, _, next)) = toks.get(i + 1) {
            let value_like = |t: Tok| matches!(t, Tok::Value | Tok::Close(_));
            let starts_value = |t: Tok| matches!(t, Tok::Value | Tok::Callee);
            let after_modifier = tok == Tok::Close(')') && closed_modifier;
            if value_like(tok) && starts_value(next) && !after_modifier {
                let (ns, ne, _) = toks[i + 1];
                return Some(at(q, ns, format!("unexpected {:?}", &q[ns..ne])));
            }
        }
        if i + 1 == toks.len() && matches!(tok, Tok::Needs | Tok::Callee) {
            return Some(at(
                q,
                q.trim_end().len(),
                format!("unexpected end of input after {:?}", &q[start..end]),
            ));
        }
    }
    if let Some((o, s, _)) = stack.pop() {
        let what = match o {
            '(' => "unclosed left parenthesis",
            '[' => "unclosed left bracket",
            _ => "unclosed left brace",
        };
        return Some(at(q, s, what.into()));
    }
    None
}

/// The parser's message with a position, in Prometheus's form.
pub fn describe(q: &str, parser_message: &str) -> String {
    // Structural problems the scan finds are named precisely, where they are.
    if let Some(m) = locate(q) {
        return m;
    }
    let generic = parser_message == "invalid promql query"
        || parser_message.starts_with("unclosed")
        || parser_message.starts_with("unexpected end of input");
    if generic {
        return at(q, q.trim_end().len(), parser_message.to_string());
    }
    // A message that quotes what it found: place it where that first appears.
    let quoted = parser_message
        .split('\'')
        .nth(1)
        .filter(|s| !s.is_empty())
        .and_then(|s| q.find(s));
    match quoted {
        Some(offset) => at(q, offset, parser_message.to_string()),
        None => format!("1:1: parse error: {parser_message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> String {
        crate::Engine::parse(q).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_say_where() {
        assert_eq!(
            err("sum(rate(x[5m])) by"),
            "1:20: parse error: unexpected end of input after \"by\""
        );
        assert_eq!(
            err("sum(rate(x[5m])"),
            "1:4: parse error: unclosed left parenthesis"
        );
        assert_eq!(err("foo bar"), "1:5: parse error: unexpected \"bar\"");
        assert_eq!(
            err("1 +"),
            "1:4: parse error: unexpected end of input after \"+\""
        );
        assert_eq!(err("x[5m"), "1:2: parse error: unclosed left bracket");
        assert_eq!(
            err("sum(x))"),
            "1:7: parse error: unexpected right bracket \")\""
        );
        assert_eq!(
            err("rate(x[5m)"),
            "1:10: parse error: unexpected \")\": the \"[\" at 1:7 is not closed"
        );
        assert_eq!(
            err("nosuch(x)"),
            "1:1: parse error: unknown function with name 'nosuch'"
        );
        assert_eq!(
            err("up\n  + \n"),
            "2:4: parse error: unexpected end of input after \"+\""
        );
        // Brackets inside strings do not count; modifiers' label lists are not values.
        assert!(crate::Engine::parse(r#"up{a="(["}"#).is_ok());
        assert_eq!(locate("x / ignoring(code) y"), None);
        assert_eq!(locate("x * on(a) group_left(b) y"), None);
        assert_eq!(locate("sum by (a) (x)"), None);
    }
}
