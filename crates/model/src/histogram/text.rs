//! The histogram notation of Prometheus's test scripts and promtool's `input_series`:
//! `{{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1] offset:1
//! n_buckets:[1] n_offset:0 custom_values:[5 10] counter_reset_hint:gauge}}`. Every field is
//! optional; counts are absolute.

use super::{CounterResetHint, FloatHistogram, CUSTOM_BUCKETS_SCHEMA};

/// Parses one `{{…}}` histogram (the braces included).
pub fn parse_test_expression(text: &str) -> Result<FloatHistogram, String> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .ok_or_else(|| format!("a histogram is written {{{{…}}}}, got {text:?}"))?;
    let mut h = FloatHistogram::default();
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once(':')
            .ok_or_else(|| format!("expected `field:value` at {rest:?}"))?;
        let key = key.trim();
        let after = after.trim_start();
        let (value, next) = if let Some(list) = after.strip_prefix('[') {
            let end = list
                .find(']')
                .ok_or_else(|| format!("unclosed '[' after {key}"))?;
            (&list[..end], &list[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        rest = next.trim_start();
        let number = |v: &str| parse_float(v).ok_or_else(|| format!("bad number {v:?} in {key}"));
        let list =
            |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(number).collect() };
        match key {
            "schema" => {
                h.schema = v_int(value).ok_or_else(|| format!("bad schema {value:?}"))?;
            }
            "sum" => h.sum = number(value)?,
            "count" => h.count = number(value)?,
            "z_bucket" => h.zero_count = number(value)?,
            "z_bucket_w" => h.zero_threshold = number(value)?,
            "buckets" => buckets = list(value)?,
            "n_buckets" => n_buckets = list(value)?,
            "offset" => offset = v_int(value).ok_or_else(|| format!("bad offset {value:?}"))?,
            "n_offset" => {
                n_offset = v_int(value).ok_or_else(|| format!("bad n_offset {value:?}"))?
            }
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                h.counter_reset_hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    other => return Err(format!("unknown counter_reset_hint {other:?}")),
                }
            }
            other => return Err(format!("unknown histogram field {other:?}")),
        }
    }
    h.positive = side(&buckets, offset);
    h.negative = side(&n_buckets, n_offset);
    if h.schema == CUSTOM_BUCKETS_SCHEMA && !h.negative.is_empty() {
        return Err("custom-bucket histograms have no negative buckets".into());
    }
    Ok(h)
}

fn side(counts: &[f64], offset: i32) -> Vec<(i32, f64)> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0.0)
        .map(|(k, c)| (offset + k as i32, *c))
        .collect()
}

fn v_int(s: &str) -> Option<i32> {
    s.parse().ok()
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The histogram in the same notation (for messages).
pub fn format_test_expression(h: &FloatHistogram) -> String {
    let mut parts = Vec::new();
    if h.schema != 0 {
        parts.push(format!("schema:{}", h.schema));
    }
    parts.push(format!("count:{}", h.count));
    parts.push(format!("sum:{}", h.sum));
    if h.zero_count != 0.0 {
        parts.push(format!("z_bucket:{}", h.zero_count));
    }
    if h.zero_threshold != 0.0 {
        parts.push(format!("z_bucket_w:{}", h.zero_threshold));
    }
    if !h.custom_values.is_empty() {
        parts.push(format!("custom_values:[{}]", join(&h.custom_values)));
    }
    for (name, off, side) in [
        ("buckets", "offset", &h.positive),
        ("n_buckets", "n_offset", &h.negative),
    ] {
        if let (Some(first), Some(last)) = (side.first(), side.last()) {
            let mut dense = vec![0.0; (last.0 - first.0 + 1) as usize];
            for &(i, c) in side {
                dense[(i - first.0) as usize] = c;
            }
            if first.0 != 0 {
                parts.push(format!("{off}:{}", first.0));
            }
            parts.push(format!("{name}:[{}]", join(&dense)));
        }
    }
    match h.counter_reset_hint {
        CounterResetHint::Unknown => {}
        CounterResetHint::CounterReset => parts.push("counter_reset_hint:reset".into()),
        CounterResetHint::NotCounterReset => parts.push("counter_reset_hint:not_reset".into()),
        CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
    }
    format!("{{{{{}}}}}", parts.join(" "))
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Go's `%g` for one float, as Prometheus prints histograms: the shortest digits, in exponent
/// form (`1e+06`, `2.5e-05`) below 1e-4 and from 1e6 up.
pub fn format_go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// Prometheus's `String()` of a histogram (what `count_values` writes into its label):
/// `{count:20, sum:10, [-2,-1):2, [-0.001,0.001]:2, (0.5,1]:1}`, populated buckets in value
/// order, each with its inclusive ends.
impl std::fmt::Display for FloatHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{count:{}, sum:{}",
            format_go_g(self.count),
            format_go_g(self.sum)
        )?;
        for b in self.buckets() {
            if b.count == 0.0 {
                continue;
            }
            let negative = b.upper <= 0.0 && !b.zero && !self.uses_custom_buckets();
            let open = if b.zero || negative { '[' } else { '(' };
            let close = if b.zero || !negative { ']' } else { ')' };
            write!(
                f,
                ", {open}{},{}{close}:{}",
                format_go_g(b.lower),
                format_go_g(b.upper),
                format_go_g(b.count)
            )?;
        }
        write!(f, "}}")
    }
}
