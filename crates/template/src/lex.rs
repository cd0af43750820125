//! Splits template text into text pieces and action tokens.

/// A token inside `{{ }}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier: a keyword or a function name.
    Ident(String),
    /// `.a.b` (empty for a bare `.`).
    Field(Vec<String>),
    /// `$name.a.b` (`$` alone has an empty name).
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    /// `)` with the field chain that follows it (`(…).a.b`).
    RParen(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// A piece of the template: text, or an action's tokens, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    Action(Vec<Tok>, usize),
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text`; errors carry the 1-based line.
pub(crate) fn lex(text: &str) -> Result<Vec<Piece>, (usize, String)> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let line_at =
        |rest: &str, i: usize| 1 + text[..text.len() - rest.len() + i].matches('\n').count();
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            pieces.push(Piece::Text(rest.to_string()));
            break;
        };
        let start_line = line_at(rest, open);
        let mut before = &rest[..open];
        let mut inner = &rest[open + 2..];
        // `{{- ` trims the whitespace before.
        if inner.starts_with('-') && inner[1..].starts_with(char::is_whitespace) {
            before = before.trim_end();
            inner = &inner[1..];
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_string()));
        }
        let (body, mut after, trim_after) =
            split_action(inner).ok_or((start_line, "unclosed action".to_string()))?;
        if trim_after {
            after = after.trim_start();
        }
        let t = body.trim();
        if t.starts_with("/*") {
            if !t.ends_with("*/") {
                return Err((start_line, "unclosed comment".into()));
            }
        } else {
            pieces.push(Piece::Action(
                tokens(body).map_err(|e| (start_line, e))?,
                start_line,
            ));
        }
        rest = after;
    }
    Ok(pieces)
}

/// Returns (body, text after `}}`, whether `-}}` trims what follows).
fn split_action(s: &str) -> Option<(&str, &str, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    if s.trim_start().starts_with("/*") {
        let end = s.find("*/")?;
        let close = s[end..].find("}}")? + end;
        let body = &s[..close];
        let trim = body.trim_end().ends_with('-')
            && body[..body.trim_end().len() - 1].ends_with([' ', '\t', '\n', '/']);
        let body = if trim {
            body.trim_end().trim_end_matches('-')
        } else {
            body
        };
        return Some((body, &s[close + 2..], trim));
    }
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                let body = &s[..i];
                if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
                    return Some((&body[..body.len() - 1], &s[i + 2..], true));
                }
                return Some((body, &s[i + 2..], false));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn field_chain(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut chain = Vec::new();
    while *i < chars.len()
        && chars[*i] == '.'
        && chars.get(*i + 1).is_some_and(|c| is_ident_char(*c))
    {
        *i += 1;
        let s = *i;
        while *i < chars.len() && is_ident_char(chars[*i]) {
            *i += 1;
        }
        chain.push(chars[s..*i].iter().collect());
    }
    chain
}

fn tokens(body: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                i += 1;
                out.push(Tok::RParen(field_chain(&chars, &mut i)));
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                i = number(&chars, i, &mut out)?;
            }
            '.' => {
                let chain = field_chain(&chars, &mut i);
                if chain.is_empty() {
                    i += 1;
                }
                out.push(Tok::Field(chain));
            }
            '$' => {
                i += 1;
                let s = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[s..i].iter().collect();
                out.push(Tok::Var(name, field_chain(&chars, &mut i)));
            }
            '"' => {
                let (text, next) = quoted(&chars, i + 1)?;
                out.push(Tok::Str(text));
                i = next;
            }
            '`' => {
                i += 1;
                let s = i;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw quoted string".into());
                }
                out.push(Tok::Str(chars[s..i].iter().collect()));
                i += 1;
            }
            '\'' => {
                let c = *chars.get(i + 1).ok_or("unterminated character constant")?;
                if chars.get(i + 2) != Some(&'\'') {
                    return Err("unterminated character constant".into());
                }
                out.push(Tok::Int(c as i64));
                i += 3;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                i = number(&chars, i, &mut out)?;
            }
            c if is_ident_char(c) => {
                let s = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[s..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

/// A double-quoted string starting after its quote at `i`, with Go's escapes: the text and
/// the index after the closing quote.
fn quoted(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated quoted string".into());
        };
        i += 1;
        match c {
            '"' => return Ok((s, i)),
            '\\' => {
                let e = *chars.get(i).ok_or("unterminated quoted string")?;
                i += 1;
                match e {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    'a' => s.push('\x07'),
                    'b' => s.push('\x08'),
                    'f' => s.push('\x0c'),
                    'v' => s.push('\x0b'),
                    '\\' | '"' | '\'' => s.push(e),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = chars.get(i..i + n).ok_or("bad escape")?.iter().collect();
                        i += n;
                        let v = u32::from_str_radix(&hex, 16).map_err(|_| "bad escape")?;
                        s.push(char::from_u32(v).ok_or("bad escape")?);
                    }
                    other => return Err(format!("unknown escape sequence \\{other}")),
                }
            }
            '\n' => return Err("newline in quoted string".into()),
            c => s.push(c),
        }
    }
}

fn number(chars: &[char], mut i: usize, out: &mut Vec<Tok>) -> Result<usize, String> {
    let s = i;
    if chars[i] == '-' || chars[i] == '+' {
        i += 1;
    }
    while i < chars.len()
        && (chars[i].is_ascii_alphanumeric()
            || chars[i] == '.'
            || chars[i] == '_'
            || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
    {
        i += 1;
    }
    let text: String = chars[s..i].iter().filter(|c| **c != '_').collect();
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, text.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(v) = int {
        out.push(Tok::Int(if neg { -v } else { v }));
    } else if let Ok(v) = body.parse::<f64>() {
        out.push(Tok::Float(if neg { -v } else { v }));
    } else {
        return Err(format!("bad number syntax: {text:?}"));
    }
    Ok(i)
}
