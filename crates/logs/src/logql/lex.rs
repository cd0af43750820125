//! LogQL's tokens. Positions are byte offsets into the query; errors turn them into Loki's
//! `line L, col C` (1-based, columns counted in characters).

use super::ParseError;

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: Tok,
    pub pos: usize,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Number(f64),
    /// A duration literal (`5m`, `1h30m`), in seconds.
    Duration(f64),
    /// A byte-size literal (`10KB`, `1MiB`), in bytes.
    Bytes(f64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Pipe,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `!=`
    Neq,
    /// `!~`
    Nre,
    /// `=`
    Eq,
    /// `=~`
    Re,
    /// `==`
    EqEq,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("IDENTIFIER {s:?}"),
            Tok::Str(s) => format!("STRING {s:?}"),
            Tok::Number(n) => format!("NUMBER {n}"),
            Tok::Duration(_) => "DURATION".into(),
            Tok::Bytes(_) => "BYTES".into(),
            Tok::Eof => "end of input".into(),
            other => format!("{:?}", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Pipe => "|",
        Tok::PipeExact => "|=",
        Tok::PipeMatch => "|~",
        Tok::Neq => "!=",
        Tok::Nre => "!~",
        Tok::Eq => "=",
        Tok::Re => "=~",
        Tok::EqEq => "==",
        Tok::Gt => ">",
        Tok::Gte => ">=",
        Tok::Lt => "<",
        Tok::Lte => "<=",
        Tok::Add => "+",
        Tok::Sub => "-",
        Tok::Mul => "*",
        Tok::Div => "/",
        Tok::Mod => "%",
        Tok::Pow => "^",
        _ => "?",
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let two = |x: u8| b.get(i + 1) == Some(&x);
        let (kind, len) = match c {
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'|' if two(b'=') => (Tok::PipeExact, 2),
            b'|' if two(b'~') => (Tok::PipeMatch, 2),
            b'|' => (Tok::Pipe, 1),
            b'!' if two(b'=') => (Tok::Neq, 2),
            b'!' if two(b'~') => (Tok::Nre, 2),
            b'=' if two(b'~') => (Tok::Re, 2),
            b'=' if two(b'=') => (Tok::EqEq, 2),
            b'=' => (Tok::Eq, 1),
            b'>' if two(b'=') => (Tok::Gte, 2),
            b'>' => (Tok::Gt, 1),
            b'<' if two(b'=') => (Tok::Lte, 2),
            b'<' => (Tok::Lt, 1),
            b'+' => (Tok::Add, 1),
            b'-' => (Tok::Sub, 1),
            b'*' => (Tok::Mul, 1),
            b'/' => (Tok::Div, 1),
            b'%' => (Tok::Mod, 1),
            b'^' => (Tok::Pow, 1),
            b'"' | b'`' => {
                let (s, end) = string(src, i)?;
                out.push(Token {
                    kind: Tok::Str(s),
                    pos: start,
                });
                i = end;
                continue;
            }
            b'0'..=b'9' | b'.' => {
                let (kind, end) = number(src, i)?;
                out.push(Token { kind, pos: start });
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(Token {
                    kind: Tok::Ident(src[i..j].to_string()),
                    pos: start,
                });
                i = j;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(
                    src,
                    i,
                    format!("unexpected character {ch:?}"),
                ));
            }
        };
        out.push(Token { kind, pos: start });
        i += len;
    }
    out.push(Token {
        kind: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

/// A double-quoted string with Go's escapes, or a raw backquoted one.
fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src.as_bytes()[start];
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        if quote == b'`' {
            if c == '`' {
                return Ok((out, at + 1));
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => return Ok((out, at + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String =
                            (0..n).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| ParseError::at(src, at, "invalid escape in string"))?;
                        out.push(ch);
                    }
                    other => {
                        return Err(ParseError::at(
                            src,
                            at,
                            format!("unknown escape sequence \\{other}"),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(ParseError::at(src, start, "unterminated string"))
}

/// A number, or a duration (`1h30m`, `500ms`) or byte size (`10KB`, `1.5MiB`) when units follow.
fn number(src: &str, start: usize) -> Result<(Tok, usize), ParseError> {
    let b = src.as_bytes();
    let mut j = start;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    if j < b.len() && (b[j] == b'e' || b[j] == b'E') && !is_unit_start(src, j) {
        let mut k = j + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        if k < b.len() && b[k].is_ascii_digit() {
            j = k;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
    }
    let bad = || ParseError::at(src, start, format!("invalid number {:?}", &src[start..j]));
    if j < b.len() && b[j].is_ascii_alphabetic() {
        let mut k = j;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'.') {
            k += 1;
        }
        let text = &src[start..k];
        if let Some(secs) = parse_duration(text) {
            return Ok((Tok::Duration(secs), k));
        }
        if let Some(bytes) = parse_bytes(text) {
            return Ok((Tok::Bytes(bytes), k));
        }
        return Err(ParseError::at(
            src,
            start,
            format!("invalid duration or byte size {text:?}"),
        ));
    }
    let n: f64 = src[start..j].parse().map_err(|_| bad())?;
    Ok((Tok::Number(n), j))
}

fn is_unit_start(src: &str, j: usize) -> bool {
    // `1e3` is a number; `1EB`/`1EiB` (exabytes) is a size.
    let rest = &src[j..];
    rest.starts_with("EB") || rest.starts_with("EiB")
}

/// A Go-style duration: a sequence of number+unit (`ns us µs ms s m h d w y`).
pub fn parse_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "y" => 365.0 * 86400.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(total)
}

/// A byte size as humanize's `ParseBytes` reads it: `B kB KB MB GB TB PB EB` (powers of 1000)
/// and `KiB MiB GiB TiB PiB EiB` (powers of 1024), case-insensitively.
pub fn parse_bytes(text: &str) -> Option<f64> {
    let n_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let n: f64 = text[..n_end].parse().ok()?;
    let unit = text[n_end..].trim().to_ascii_lowercase();
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "pb" | "p" => 1e15,
        "eb" | "e" => 1e18,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1024f64.powi(2),
        "gib" | "gi" => 1024f64.powi(3),
        "tib" | "ti" => 1024f64.powi(4),
        "pib" | "pi" => 1024f64.powi(5),
        "eib" | "ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for q in ["-".repeat(100_000) + "1", "(".repeat(100_000) + "1"] {
            let e = crate::logql::parse(&q).unwrap_err();
            assert!(e.msg.contains("nests deeper"), "{e}");
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_bytes("10KB"), Some(10_000.0));
        assert_eq!(parse_bytes("1.5KiB"), Some(1536.0));
        let t = lex("rate({a=\"b\"}[5m]) > 1e3").unwrap();
        assert!(t.iter().any(|t| t.kind == Tok::Duration(300.0)));
        assert!(t.iter().any(|t| t.kind == Tok::Number(1000.0)));
    }
}
