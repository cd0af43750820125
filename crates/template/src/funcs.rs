//! Template functions: Go's built-ins and the ones Prometheus and Alertmanager add.

use std::collections::HashMap;
use std::sync::Arc;

use crate::fmt::{format_g, sprint, sprintf};
use crate::Value;

/// A template function: its arguments (a piped value comes last) to a value or an error.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// The functions a template may call, by name.
#[derive(Clone, Default)]
pub struct Funcs(HashMap<String, Func>);

impl std::fmt::Debug for Funcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Funcs").field(&names).finish()
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn str_arg(args: &[Value], i: usize) -> Result<&str, String> {
    match &args[i] {
        Value::Str(s) => Ok(s),
        other => Err(format!("expected string; found {}", other.type_name())),
    }
}

fn float_arg(args: &[Value], i: usize) -> Result<f64, String> {
    args[i]
        .as_f64()
        .ok_or_else(|| format!("can't convert {} to float", args[i]))
}

/// Compares two values as Go's `eq`/`lt` do for basic kinds (numbers compare across int and
/// float here, where Go would refuse).
fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use Value::*;
    match (a, b) {
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            let (x, y) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            x.partial_cmp(&y)
                .ok_or_else(|| "NaN is not comparable".to_string())
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, _) | (_, Value::Nil) => Ok(false),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        _ => Ok(compare(a, b)? == std::cmp::Ordering::Equal),
    }
}

/// HTML-escapes as Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Title case as Prometheus's `title` (`cases.Title(language.Und, cases.NoLower)`): the first
/// letter of each word upper-cased, the rest left alone.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '\'' || c == '_');
    }
    out
}

/// Civil date and time (UTC) of Unix seconds: (year, month, day, hour, minute, second).
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

/// A Unix time (seconds, fractional) as Prometheus prints it: truncated to milliseconds (its
/// `floatToTime`), then Go's `time.Time.String()` in UTC (`2006-01-02 15:04:05.999 +0000 UTC`).
pub fn go_time_string(v: f64) -> String {
    let ms = (v * 1e9) as i64 / 1_000_000;
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) * 1_000_000;
    let (y, mo, d, h, mi, s) = civil(secs);
    let mut frac = String::new();
    if nanos > 0 {
        frac = format!(".{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{frac} +0000 UTC")
}

/// Seconds as Go's `time.Duration.String()` (`1h2m3.5s`, `150ms`, `0s`).
pub fn go_duration_string(secs: f64) -> String {
    let nanos = (secs * 1e9).round() as i128;
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let body = if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", trim_frac(n as f64 / 1e3))
    } else if n < 1_000_000_000 {
        format!("{}ms", trim_frac(n as f64 / 1e6))
    } else {
        let total_s = n / 1_000_000_000;
        let frac_ns = n % 1_000_000_000;
        let (h, m, s) = (total_s / 3600, total_s / 60 % 60, total_s % 60);
        let mut sec = format!("{s}");
        if frac_ns > 0 {
            let mut f = format!("{frac_ns:09}");
            while f.ends_with('0') {
                f.pop();
            }
            sec = format!("{s}.{f}");
        }
        if h > 0 {
            format!("{h}h{m}m{sec}s")
        } else if m > 0 {
            format!("{m}m{sec}s")
        } else {
            format!("{sec}s")
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn trim_frac(v: f64) -> String {
    let mut s = format!("{v:.6}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_g(v, Some(4), false);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, Some(4), false))
}

/// Prometheus's `humanize1024`: binary prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_g(v, Some(4), false);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, Some(4), false))
}

/// Prometheus's `humanizeDuration`: `1d 2h 3m 4s`, or `1.5s`, `250ms`.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return format_g(v, Some(4), false);
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, Some(4), false));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", format_g(v, Some(4), false));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, Some(4), false))
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `1d`, `250ms`) into seconds.
pub fn parse_prometheus_duration(s: &str) -> Option<f64> {
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Some(total)
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            return rest[..end].to_string();
        }
        return s.to_string();
    }
    match s.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h.to_string(),
        _ => s.to_string(),
    }
}

fn strip_domain(s: &str) -> String {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.starts_with('[') => (h, Some(p)),
        _ => (s, None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() || s.starts_with('[') {
        return s.to_string();
    }
    let short = host.split('.').next().unwrap_or(host);
    match port {
        Some(p) => format!("{short}:{p}"),
        None => short.to_string(),
    }
}

fn sample_field(v: &Value, field: &str) -> Result<Value, String> {
    match v {
        Value::Map(m) => Ok(m.get(field).cloned().unwrap_or_default()),
        other => Err(format!(
            "expected a query result sample; found {}",
            other.type_name()
        )),
    }
}

impl Funcs {
    /// No functions (and/or are always there).
    pub fn empty() -> Self {
        Funcs(HashMap::new())
    }

    /// Adds or replaces a function.
    pub fn insert(
        &mut self,
        name: &str,
        f: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static,
    ) {
        self.0.insert(name.to_string(), Arc::new(f));
    }

    /// A function by name.
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.0.get(name)
    }

    /// Go's built-in template functions.
    pub fn builtin() -> Self {
        let mut f = Funcs::empty();
        f.insert("not", |a| {
            want("not", a, 1)?;
            Ok(Value::Bool(!a[0].truthy()))
        });
        f.insert("len", |a| {
            want("len", a, 1)?;
            Ok(Value::Int(match &a[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64))
        });
        f.insert("index", |a| {
            let Some((first, idx)) = a.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut v = first.clone();
            for i in idx {
                v = match (&v, i) {
                    (Value::List(l), Value::Int(n)) => l
                        .get(usize::try_from(*n).map_err(|_| format!("index out of range: {n}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {n}"))?,
                    (Value::Map(m), Value::Str(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (v, i) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            v.type_name(),
                            i.type_name()
                        ))
                    }
                };
            }
            Ok(v)
        });
        f.insert("slice", |a| {
            let Some((first, idx)) = a.split_first() else {
                return Err("wrong number of args for slice: want at least 1 got 0".into());
            };
            let ints: Vec<usize> = idx
                .iter()
                .map(|i| match i {
                    Value::Int(n) if *n >= 0 => Ok(*n as usize),
                    _ => Err("slice index must be a non-negative integer".to_string()),
                })
                .collect::<Result<_, _>>()?;
            match first {
                Value::Str(s) => {
                    let lo = ints.first().copied().unwrap_or(0);
                    let hi = ints.get(1).copied().unwrap_or(s.len());
                    s.get(lo..hi)
                        .map(Value::from)
                        .ok_or_else(|| format!("slice index out of range: {lo}:{hi}"))
                }
                Value::List(l) => {
                    let lo = ints.first().copied().unwrap_or(0);
                    let hi = ints.get(1).copied().unwrap_or(l.len());
                    l.get(lo..hi)
                        .map(|x| Value::List(x.to_vec()))
                        .ok_or_else(|| format!("slice index out of range: {lo}:{hi}"))
                }
                other => Err(format!("can't slice item of type {}", other.type_name())),
            }
        });
        f.insert("print", |a| Ok(Value::Str(sprint(a))));
        f.insert("println", |a| {
            let parts: Vec<String> = a.iter().map(|v| v.to_string()).collect();
            Ok(Value::Str(parts.join(" ") + "\n"))
        });
        f.insert("printf", |a| {
            let Some((fmt, rest)) = a.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            let fmt = fmt.as_str().ok_or("printf's format must be a string")?;
            Ok(Value::Str(sprintf(fmt, rest)))
        });
        f.insert("eq", |a| {
            let Some((x, ys)) = a.split_first() else {
                return Err("missing argument for comparison".into());
            };
            if ys.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for y in ys {
                if equal(x, y)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        });
        f.insert("ne", |a| {
            want("ne", a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        });
        for (name, pred) in [
            (
                "lt",
                (|o| o == std::cmp::Ordering::Less) as fn(std::cmp::Ordering) -> bool,
            ),
            ("le", |o| o != std::cmp::Ordering::Greater),
            ("gt", |o| o == std::cmp::Ordering::Greater),
            ("ge", |o| o != std::cmp::Ordering::Less),
        ] {
            f.insert(name, move |a| {
                want(name, a, 2)?;
                Ok(Value::Bool(pred(compare(&a[0], &a[1])?)))
            });
        }
        f.insert("html", |a| Ok(Value::Str(html_escape(&sprint(a)))));
        f.insert("js", |a| Ok(Value::Str(js_escape(&sprint(a)))));
        f.insert("urlquery", |a| Ok(Value::Str(query_escape(&sprint(a)))));
        f
    }

    /// Go's built-ins and the functions Prometheus's templates have, except those that need a
    /// query engine or the server's configuration (`query`, `externalURL`, `pathPrefix`), which
    /// the caller adds.
    pub fn prometheus() -> Self {
        let mut f = Funcs::builtin();
        f.add_humanizers();
        f.add_strings();
        f.add_query_results();
        f
    }

    /// `humanize*`, times and durations.
    fn add_humanizers(&mut self) {
        let f = self;
        f.insert("humanize", |a| {
            want("humanize", a, 1)?;
            Ok(Value::Str(humanize(float_arg(a, 0)?)))
        });
        f.insert("humanize1024", |a| {
            want("humanize1024", a, 1)?;
            Ok(Value::Str(humanize1024(float_arg(a, 0)?)))
        });
        f.insert("humanizeDuration", |a| {
            want("humanizeDuration", a, 1)?;
            Ok(Value::Str(humanize_duration(float_arg(a, 0)?)))
        });
        f.insert("humanizePercentage", |a| {
            want("humanizePercentage", a, 1)?;
            Ok(Value::Str(format!(
                "{}%",
                format_g(float_arg(a, 0)? * 100.0, Some(4), false)
            )))
        });
        f.insert("humanizeTimestamp", |a| {
            want("humanizeTimestamp", a, 1)?;
            let v = float_arg(a, 0)?;
            if !v.is_finite() {
                return Ok(Value::Str(format_g(v, Some(4), false)));
            }
            Ok(Value::Str(go_time_string(v)))
        });
        f.insert("toTime", |a| {
            want("toTime", a, 1)?;
            let v = float_arg(a, 0)?;
            if !v.is_finite() {
                return Err(format!("cannot convert {v} to time"));
            }
            Ok(Value::Str(go_time_string(v)))
        });
        f.insert("toDuration", |a| {
            want("toDuration", a, 1)?;
            Ok(Value::Str(go_duration_string(float_arg(a, 0)?)))
        });
        f.insert("parseDuration", |a| {
            want("parseDuration", a, 1)?;
            let s = str_arg(a, 0)?;
            parse_prometheus_duration(s)
                .map(Value::Float)
                .ok_or_else(|| format!("not a valid duration string: {s:?}"))
        });
    }

    /// Text: case, regular expressions, hosts, `args`.
    fn add_strings(&mut self) {
        let f = self;
        f.insert("title", |a| {
            want("title", a, 1)?;
            Ok(Value::Str(title(str_arg(a, 0)?)))
        });
        f.insert("toUpper", |a| {
            want("toUpper", a, 1)?;
            Ok(Value::Str(str_arg(a, 0)?.to_uppercase()))
        });
        f.insert("toLower", |a| {
            want("toLower", a, 1)?;
            Ok(Value::Str(str_arg(a, 0)?.to_lowercase()))
        });
        f.insert("reReplaceAll", |a| {
            want("reReplaceAll", a, 3)?;
            let re = regex::Regex::new(str_arg(a, 0)?).map_err(|e| e.to_string())?;
            Ok(Value::Str(
                re.replace_all(str_arg(a, 2)?, str_arg(a, 1)?).into_owned(),
            ))
        });
        f.insert("match", |a| {
            want("match", a, 2)?;
            let re = regex::Regex::new(str_arg(a, 0)?).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(str_arg(a, 1)?)))
        });
        f.insert("safeHtml", |a| {
            want("safeHtml", a, 1)?;
            Ok(Value::Str(str_arg(a, 0)?.to_string()))
        });
        f.insert("stripPort", |a| {
            want("stripPort", a, 1)?;
            Ok(Value::Str(strip_port(str_arg(a, 0)?)))
        });
        f.insert("stripDomain", |a| {
            want("stripDomain", a, 1)?;
            Ok(Value::Str(strip_domain(str_arg(a, 0)?)))
        });
        f.insert("args", |a| {
            Ok(Value::Map(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("arg{i}"), v.clone()))
                    .collect(),
            ))
        });
    }

    fn add_query_results(&mut self) {
        let f = self;
        // Query results are lists of {Labels, Value} maps.
        f.insert("first", |a| {
            want("first", a, 1)?;
            match &a[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".to_string()),
                other => Err(format!("first() called on {}", other.type_name())),
            }
        });
        f.insert("label", |a| {
            want("label", a, 2)?;
            let labels = sample_field(&a[1], "Labels")?;
            labels.field(str_arg(a, 0)?)
        });
        f.insert("value", |a| {
            want("value", a, 1)?;
            sample_field(&a[0], "Value")
        });
        f.insert("strvalue", |a| {
            want("strvalue", a, 1)?;
            let labels = sample_field(&a[0], "Labels")?;
            labels.field("__value__")
        });
        f.insert("sortByLabel", |a| {
            want("sortByLabel", a, 2)?;
            let label = str_arg(a, 0)?.to_string();
            let Value::List(mut l) = a[1].clone() else {
                return Err("sortByLabel needs a query result".into());
            };
            let key = |v: &Value| {
                sample_field(v, "Labels")
                    .and_then(|l| l.field(&label))
                    .map(|x| x.to_string())
                    .unwrap_or_default()
            };
            l.sort_by_key(key);
            Ok(Value::List(l))
        });
    }

    /// Alertmanager's template functions (`toUpper`, `toLower`, `title`, `join`, `match`,
    /// `safeHtml`, `reReplaceAll`, `stringSlice`, `trimSpace`) with Prometheus's humanizers.
    pub fn alertmanager() -> Self {
        let mut f = Funcs::prometheus();
        f.insert("join", |a| {
            want("join", a, 2)?;
            let sep = str_arg(a, 0)?;
            match &a[1] {
                Value::List(l) => Ok(Value::Str(
                    l.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(sep),
                )),
                other => Err(format!("join needs a list, not {}", other.type_name())),
            }
        });
        f.insert("stringSlice", |a| Ok(Value::List(a.to_vec())));
        f.insert("trimSpace", |a| {
            want("trimSpace", a, 1)?;
            Ok(Value::Str(str_arg(a, 0)?.trim().to_string()))
        });
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are what Prometheus's template functions return for the same inputs
    // (its template_test.go and Go's fmt).
    #[test]
    fn humanizers_match_prometheus() {
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize(0.012), "12m");
        assert_eq!(humanize(0.000_001_5), "1.5u");
        assert_eq!(humanize(1e30), "1e+06Y");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1.0), "1");
        assert_eq!(humanize1024(1536.0), "1.5ki");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86_400.0 * 2.0 + 3661.0), "2d 1h 1m 1s");
        assert_eq!(humanize_duration(0.1), "100ms");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(-90.0), "-1m 30s");
        assert_eq!(
            go_time_string(1435065584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(go_time_string(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_duration_string(3723.5), "1h2m3.5s");
        assert_eq!(go_duration_string(0.25), "250ms");
        assert_eq!(title("hello world-wide web"), "Hello World-Wide Web");
        assert_eq!(strip_port("foo.example.com:9100"), "foo.example.com");
        assert_eq!(strip_port("[::1]:9100"), "::1");
        assert_eq!(strip_domain("foo.example.com:9100"), "foo:9100");
        assert_eq!(strip_domain("192.168.0.1:9100"), "192.168.0.1:9100");
    }
}
