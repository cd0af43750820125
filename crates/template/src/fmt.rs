//! Go's `fmt` for the values templates print: `%v` of floats (`1e+06`, `0.5`), `%g` with a
//! precision (what `humanize` uses), and `printf`'s verbs, flags, width and precision —
//! including Go's complaints (`%!d(float64=1.5)`, `%!s(MISSING)`), so output matches
//! Prometheus's and Alertmanager's byte for byte.

use crate::Value;

/// Parses a number as Go's `strconv.ParseFloat` does (also `Inf`, `NaN`, any case).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches('+');
    if t.len() != s.len() && s.starts_with("+-") {
        return None;
    }
    t.parse::<f64>().ok().or_else(|| {
        let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
        i64::from_str_radix(t, 16).ok().map(|i| i as f64)
    })
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

/// The decimal digits (no leading zeros, at least one) and the decimal exponent of `|v|`,
/// shortest round-trip when `sig` is `None`, else rounded to `sig` significant digits.
fn digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
    };
    let (m, e) = s.split_once('e').expect("exponent form");
    let d: String = m.chars().filter(|c| c.is_ascii_digit()).collect();
    (d, e.parse().expect("exponent"))
}

fn exp_form(neg: bool, d: &str, exp: i32, frac_digits: usize, upper: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&d[..1]);
    let mut frac: String = d[1..].to_string();
    while frac.len() < frac_digits {
        frac.push('0');
    }
    if !frac.is_empty() {
        s.push('.');
        s.push_str(&frac);
    }
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

/// Go's `%g` (`%G` when `upper`): `prec` significant digits, or the shortest round-trip
/// representation when `None`; exponent form when the exponent is below -4 or at least the
/// precision (6 for shortest).
pub fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let (mut d, exp) = digits(v, prec.map(|p| p.max(1)));
    if prec.is_some() {
        while d.len() > 1 && d.ends_with('0') {
            d.pop();
        }
    }
    let nd = d.len() as i32;
    let dp = exp + 1;
    let mut eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        return exp_form(neg, &d, exp, 0, upper);
    }
    let frac = (nd - dp).max(0) as usize;
    let s = format!("{:.*}", frac, v.abs());
    if neg {
        format!("-{s}")
    } else {
        s
    }
}

/// Go's `%v` of a float64 (`fmt.Sprint`): shortest `%g`.
pub fn format_float_v(v: f64) -> String {
    format_g(v, None, false)
}

/// Go's `%e` with `prec` digits after the point (default 6).
pub fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative();
    if v == 0.0 {
        return exp_form(neg, "0", 0, prec, upper);
    }
    let (d, exp) = digits(v, Some(prec + 1));
    exp_form(neg, &d, exp, prec, upper)
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", v.type_name(), v),
    }
}

fn sign(spec: &Spec, neg: bool) -> &'static str {
    if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn pad(spec: &Spec, s: String, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sg, rest) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        format!("{sg}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn format_one(verb: char, spec: &Spec, v: &Value) -> String {
    match (verb, v) {
        ('v', Value::Float(f)) | ('g', Value::Float(f)) | ('G', Value::Float(f)) => {
            let body = format_g(
                f.abs(),
                if verb == 'v' { None } else { spec.prec },
                verb == 'G',
            );
            let neg = f.is_sign_negative() && !f.is_nan();
            pad(spec, format!("{}{body}", sign(spec, neg)), true)
        }
        ('v', Value::Int(i)) | ('d', Value::Int(i)) => pad(
            spec,
            format!("{}{}", sign(spec, *i < 0), i.unsigned_abs()),
            true,
        ),
        ('v', v) => pad(spec, v.to_string(), false),
        ('s', Value::Str(s)) => {
            let s = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            pad(spec, s, false)
        }
        ('s', Value::List(_) | Value::Map(_)) => pad(spec, v.to_string(), false),
        ('q', Value::Str(s)) => pad(spec, quote(s), false),
        ('t', Value::Bool(b)) => pad(spec, b.to_string(), false),
        ('f' | 'F', Value::Float(f)) => {
            if let Some(s) = special(*f) {
                return pad(spec, s, false);
            }
            let body = format!("{:.*}", spec.prec.unwrap_or(6), f.abs());
            pad(
                spec,
                format!("{}{body}", sign(spec, f.is_sign_negative())),
                true,
            )
        }
        ('e' | 'E', Value::Float(f)) => {
            if let Some(s) = special(*f) {
                return pad(spec, s, false);
            }
            let body = format_e(f.abs(), spec.prec.unwrap_or(6), verb == 'E');
            pad(
                spec,
                format!("{}{body}", sign(spec, f.is_sign_negative())),
                true,
            )
        }
        ('x', Value::Int(i)) => pad(
            spec,
            format!("{}{:x}", sign(spec, *i < 0), i.unsigned_abs()),
            true,
        ),
        ('X', Value::Int(i)) => pad(
            spec,
            format!("{}{:X}", sign(spec, *i < 0), i.unsigned_abs()),
            true,
        ),
        ('o', Value::Int(i)) => pad(
            spec,
            format!("{}{:o}", sign(spec, *i < 0), i.unsigned_abs()),
            true,
        ),
        ('b', Value::Int(i)) => pad(
            spec,
            format!("{}{:b}", sign(spec, *i < 0), i.unsigned_abs()),
            true,
        ),
        ('c', Value::Int(i)) => pad(
            spec,
            char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
            false,
        ),
        ('x', Value::Str(s)) => pad(spec, s.bytes().map(|b| format!("{b:02x}")).collect(), false),
        ('X', Value::Str(s)) => pad(spec, s.bytes().map(|b| format!("{b:02X}")).collect(), false),
        (verb, v) => bad(verb, v),
    }
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        let mut num = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<usize> {
            if chars.peek() == Some(&'*') {
                chars.next();
                let w = match args.get(next) {
                    Some(Value::Int(i)) => Some((*i).max(0) as usize),
                    _ => None,
                };
                next += 1;
                return w;
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        // Go refuses widths and precisions above 10^6 (`%!(BADWIDTH)`), which also keeps a
        // template from asking for a gigabyte of padding.
        const MAX_WIDTH: usize = 1_000_000;
        spec.width = num(&mut chars);
        if spec.width.is_some_and(|w| w > MAX_WIDTH) {
            out.push_str("%!(BADWIDTH)");
            spec.width = None;
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
            if spec.prec.is_some_and(|p| p > MAX_WIDTH) {
                out.push_str("%!(BADPREC)");
                spec.prec = None;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            Some(v) => out.push_str(&format_one(verb, &spec, v)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        next += 1;
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|v| match v {
                Value::Nil => "<nil>".to_string(),
                v => format!("{}={}", v.type_name(), v),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Go's `fmt.Sprint`: operands joined, with a space between two operands when neither is a
/// string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are what Go 1.22 prints for the same calls.
    #[test]
    fn floats_print_as_go_does() {
        assert_eq!(format_float_v(0.5), "0.5");
        assert_eq!(format_float_v(100.0), "100");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(1234567.0), "1.234567e+06");
        assert_eq!(format_float_v(123456.0), "123456");
        assert_eq!(format_float_v(0.0001), "0.0001");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(-2.5), "-2.5");
        assert_eq!(format_float_v(f64::INFINITY), "+Inf");
        assert_eq!(format_g(1234.5678, Some(4), false), "1235");
        assert_eq!(format_g(12345.0, Some(4), false), "1.234e+04");
        assert_eq!(format_g(1.5, Some(4), false), "1.5");
        assert_eq!(format_g(100.0, Some(4), false), "100");
        assert_eq!(format_g(0.0000123, Some(4), false), "1.23e-05");
    }

    #[test]
    fn printf_follows_go() {
        let f = Value::Float;
        assert_eq!(sprintf("%.2f", &[f(1.23456)]), "1.23");
        assert_eq!(
            sprintf("%5.1f|%-6s|%03d", &[f(2.25), "ab".into(), Value::Int(7)]),
            "  2.2|ab    |007"
        );
        assert_eq!(sprintf("%d", &[f(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s %s", &["a".into()]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &["a".into(), Value::Int(1)]),
            "a%!(EXTRA int=1)"
        );
        assert_eq!(sprintf("%q", &["a\"b".into()]), "\"a\\\"b\"");
        assert_eq!(sprintf("%v%%", &[f(12.5)]), "12.5%");
        assert_eq!(sprintf("%.3e", &[f(12345.678)]), "1.235e+04");
        assert_eq!(sprintf("%g", &[f(1e21)]), "1e+21");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), "x".into(), Value::Int(3)]),
            "1 2x3"
        );
        assert_eq!(sprintf("%99999999999d", &[Value::Int(1)]), "%!(BADWIDTH)1");
    }
}
