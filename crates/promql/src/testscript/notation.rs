//! The series notation of test scripts and promtool's `input_series`: label sets, values with
//! repetitions (`1+2x3`, `_x2`, `stale`) and native histograms (`{{…}}`), and the native
//! histograms `load_with_nhcb` makes of classic ones.

use medic_model::histogram::{parse_test_expression, CUSTOM_BUCKETS_SCHEMA};
use medic_model::{
    is_stale_nan, parse_duration, FloatHistogram, HistogramSample, Label, Labels, MatchType,
    Matcher, MemStorage, Queryable, Sample, Series, METRIC_NAME,
};

pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n * 1000);
    }
    parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| e.to_string())
}

pub(crate) fn parse_number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        // `0x10` in series notation is "0 repeated 10 times", never hexadecimal.
        _ => s.parse().ok(),
    }
}

/// One item of a series description: a value, a gap, or a staleness marker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Item {
    /// A sample with this value.
    Value(f64),
    /// No sample at this step.
    Gap,
    /// A staleness marker.
    Stale,
}

/// Expands series-description items: `1 2 _ stale 1+2x3 5x2 _x3 -1-1x2` (the notation of
/// `load` blocks and of promtool's `input_series`).
pub fn expand(values: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    for tok in values.split_whitespace() {
        if tok == "_" {
            out.push(Item::Gap);
            continue;
        }
        if tok == "stale" {
            out.push(Item::Stale);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(Item::Gap, n));
            continue;
        }
        let (body, times) = match tok.rfind('x') {
            Some(i)
                if !tok[..i].is_empty()
                    && tok[i + 1..].chars().all(|c| c.is_ascii_digit())
                    && !tok[i + 1..].is_empty() =>
            {
                (
                    &tok[..i],
                    Some(
                        tok[i + 1..]
                            .parse::<usize>()
                            .map_err(|_| format!("bad repetition {tok:?}"))?,
                    ),
                )
            }
            _ => (tok, None),
        };
        // `A+B` or `A-B` (the sign of the step after the first character, not inside an
        // exponent).
        let bytes = body.as_bytes();
        let mut split = None;
        for i in 1..bytes.len() {
            if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                split = Some(i);
                break;
            }
        }
        match (split, times) {
            (Some(i), Some(n)) => {
                let a = parse_number(&body[..i]).ok_or_else(|| format!("bad number in {tok:?}"))?;
                let b = parse_number(&body[i..]).ok_or_else(|| format!("bad number in {tok:?}"))?;
                let mut v = a;
                out.push(Item::Value(v));
                for _ in 0..n {
                    v += b;
                    out.push(Item::Value(v));
                }
            }
            (None, Some(n)) => {
                let a = parse_number(body).ok_or_else(|| format!("bad number in {tok:?}"))?;
                out.extend(std::iter::repeat_n(Item::Value(a), n + 1));
            }
            (_, None) => out.push(Item::Value(
                parse_number(body).ok_or_else(|| format!("bad value {tok:?}"))?,
            )),
        }
    }
    Ok(out)
}

/// Splits `name{a="b", c="d"} rest` into labels and the rest of the line.
pub fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let name_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let mut labels = Vec::new();
    if name_end > 0 {
        labels.push(Label::new("__name__", &s[..name_end]));
    }
    let mut rest = &s[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let pos;
        loop {
            while chars
                .peek()
                .is_some_and(|(_, c)| c.is_whitespace() || *c == ',')
            {
                chars.next();
            }
            let Some(&(i, c)) = chars.peek() else {
                return Err("unclosed '{'".into());
            };
            if c == '}' {
                pos = i + 1;
                break;
            }
            let start = i;
            while chars
                .peek()
                .is_some_and(|(_, c)| *c != '=' && !c.is_whitespace())
            {
                chars.next();
            }
            let Some(&(eq, _)) = chars.peek() else {
                return Err("expected '='".into());
            };
            let lname = r[start..eq].trim().to_string();
            while chars.peek().is_some_and(|(_, c)| *c != '"') {
                chars.next();
            }
            chars.next();
            let mut value = String::new();
            loop {
                let Some((_, c)) = chars.next() else {
                    return Err("unterminated label value".into());
                };
                match c {
                    '"' => break,
                    '\\' => match chars.next().map(|x| x.1) {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(o) => value.push(o),
                        None => return Err("bad escape".into()),
                    },
                    o => value.push(o),
                }
            }
            labels.push(Label::new(lname, value));
        }
        rest = &r[pos..];
    }
    let labels = Labels::from_unsorted(labels).map_err(|n| format!("label {n} repeated"))?;
    Ok((labels, rest))
}

/// One point of a series description: a float, a native histogram, a gap or a staleness marker.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    /// A float sample.
    Float(f64),
    /// A native histogram.
    Histogram(FloatHistogram),
    /// No sample at this step.
    Gap,
    /// A staleness marker.
    Stale,
}

/// Expands a series description that may hold histograms: the float notation of [`expand`]
/// plus `{{…}}`, `{{…}}x3` (repeated) and `{{a}}+{{b}}x3` / `{{a}}-{{b}}x3` (a, then b added or
/// subtracted three times).
pub fn expand_points(values: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for tok in tokens(values)? {
        if tok.starts_with("{{") {
            expand_histogram(tok, &mut out)?;
            continue;
        }
        for it in expand(tok)? {
            out.push(match it {
                Item::Value(v) => Point::Float(v),
                Item::Gap => Point::Gap,
                Item::Stale => Point::Stale,
            });
        }
    }
    Ok(out)
}

/// Splits at whitespace outside `{{…}}`.
fn tokens(values: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let b = values.as_bytes();
    let (mut i, mut start, mut depth) = (0, None, 0usize);
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
            start.get_or_insert(i);
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"}}") && depth > 0 {
            depth -= 1;
            i += 2;
            continue;
        }
        if b[i].is_ascii_whitespace() && depth == 0 {
            if let Some(s) = start.take() {
                out.push(&values[s..i]);
            }
        } else {
            start.get_or_insert(i);
        }
        i += 1;
    }
    if depth > 0 {
        return Err("unclosed '{{'".into());
    }
    if let Some(s) = start {
        out.push(&values[s..]);
    }
    Ok(out)
}

fn expand_histogram(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    let end = tok.find("}}").ok_or("unclosed '{{'")? + 2;
    let first = parse_test_expression(&tok[..end])?;
    let rest = &tok[end..];
    let times = |s: &str| -> Result<usize, String> {
        s.strip_prefix('x')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("bad repetition {tok:?}"))
    };
    if rest.is_empty() {
        out.push(Point::Histogram(first));
        return Ok(());
    }
    if rest.starts_with('x') {
        let n = times(rest)?;
        out.extend(std::iter::repeat_n(Point::Histogram(first), n + 1));
        return Ok(());
    }
    let sign = rest.as_bytes()[0];
    let step_text = &rest[1..];
    let step_end = step_text
        .find("}}")
        .ok_or_else(|| format!("bad histogram series {tok:?}"))?
        + 2;
    let step = parse_test_expression(&step_text[..step_end])?;
    let n = times(&step_text[step_end..])?;
    let mut h = first;
    out.push(Point::Histogram(h.clone()));
    for _ in 0..n {
        match sign {
            b'+' => h.add(&step),
            b'-' => h.sub(&step),
            _ => return Err(format!("bad histogram series {tok:?}")),
        }
        .map_err(|_| format!("cannot combine the histograms of {tok:?}"))?;
        out.push(Point::Histogram(h.clone()));
    }
    Ok(())
}

/// `load_with_nhcb`: for every classic histogram loaded (`…_bucket` series with `le`), also a
/// native histogram with custom buckets under the name without `_bucket`, one per time all its
/// buckets have a sample: counts from the buckets, sum from `…_sum` (0 without one), count from
/// `…_count` or else the `+Inf` bucket.
pub(crate) fn add_nhcb(store: &MemStorage) {
    use std::collections::BTreeMap;
    let Ok(q) = store.querier(i64::MIN, i64::MAX) else {
        return;
    };
    let Ok(all) = Matcher::new(MatchType::Regexp, "__name__", ".+") else {
        return;
    };
    let Ok(series) = q.select(&[all]) else {
        return;
    };
    let series: Vec<Series> = series.flatten().collect();
    let by_labels: BTreeMap<&Labels, &[Sample]> =
        series.iter().map(|s| (&s.labels, &s.samples[..])).collect();
    // (base labels) → [(le, samples)]
    let mut groups: BTreeMap<Labels, Vec<(f64, &[Sample])>> = BTreeMap::new();
    for s in &series {
        let Some(base) = s
            .labels
            .metric_name()
            .and_then(|n| n.strip_suffix("_bucket"))
        else {
            continue;
        };
        let Some(Ok(le)) = s.labels.get("le").map(|v| {
            v.parse::<f64>()
                .or_else(|e| match v.to_ascii_lowercase().as_str() {
                    "+inf" | "inf" => Ok(f64::INFINITY),
                    _ => Err(e),
                })
        }) else {
            continue;
        };
        let mut b = s.labels.to_builder();
        b.set(METRIC_NAME, base).del("le");
        groups.entry(b.build()).or_default().push((le, &s.samples));
    }
    for (labels, mut buckets) in groups {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let companion = |suffix: &str| {
            let mut b = labels.to_builder();
            b.set(
                METRIC_NAME,
                format!("{}{suffix}", labels.metric_name().unwrap_or("")),
            );
            by_labels.get(&b.build()).copied()
        };
        let (sums, counts) = (companion("_sum"), companion("_count"));
        let value_at =
            |s: Option<&[Sample]>, t: i64| s.and_then(|s| s.iter().find(|x| x.t == t).map(|x| x.v));
        let mut out = Vec::new();
        for x in buckets[0].1 {
            let t = x.t;
            let mut cumulative = Vec::with_capacity(buckets.len());
            for (le, s) in &buckets {
                match value_at(Some(s), t) {
                    Some(v) if !is_stale_nan(v) => cumulative.push((*le, v)),
                    _ => break,
                }
            }
            if cumulative.len() != buckets.len() {
                continue;
            }
            let mut h = FloatHistogram {
                schema: CUSTOM_BUCKETS_SCHEMA,
                ..FloatHistogram::default()
            };
            let mut prev = 0.0;
            for (le, c) in &cumulative {
                if le.is_finite() && h.custom_values.last() != Some(le) {
                    h.custom_values.push(*le);
                }
                let idx = if le.is_finite() {
                    h.custom_values.len() as i32 - 1
                } else {
                    h.custom_values.len() as i32
                };
                let n = c - prev;
                prev = *c;
                if n != 0.0 {
                    match h.positive.last_mut() {
                        Some(last) if last.0 == idx => last.1 += n,
                        _ => h.positive.push((idx, n)),
                    }
                }
            }
            h.count = value_at(counts, t).unwrap_or(prev);
            h.sum = value_at(sums, t).unwrap_or(0.0);
            out.push(HistogramSample {
                t,
                h: std::sync::Arc::new(h),
            });
        }
        if !out.is_empty() {
            store.add_histograms(labels, &out);
        }
    }
}
