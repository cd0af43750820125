//! RFC 3339 timestamps as the Prometheus HTTP API reads and writes them, and the API's other
//! time syntax, Unix seconds with a fraction.

/// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats milliseconds since the epoch as RFC 3339 in UTC with millisecond precision
/// (`2024-05-01T12:00:00.123Z`); whole seconds print without a fraction.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if frac == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{frac:03}Z")
    }
}

/// A time as Go marshals `time.Time` to JSON (`time.RFC3339Nano`: as many fraction digits as
/// needed); 0 is Go's zero time, `0001-01-01T00:00:00Z`.
pub fn format_rfc3339_nano(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    let s = format_rfc3339(ms);
    match s.split_once('.') {
        Some((head, frac)) => {
            let digits = frac.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{head}Z")
            } else {
                format!("{head}.{digits}Z")
            }
        }
        None => s,
    }
}

/// A time as go-openapi's `strfmt.DateTime` writes it (Alertmanager's API v2): exactly three
/// fraction digits; 0 is Go's zero time.
pub fn format_rfc3339_millis(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00.000Z".into();
    }
    let s = format_rfc3339(ms);
    match s.strip_suffix('Z') {
        Some(head) if !head.contains('.') => format!("{head}.000Z"),
        _ => s,
    }
}

/// A timestamp for people reading medic's output: RFC 3339 in UTC to the second, with its zone
/// (`2026-12-03T09:45:12Z`) — one format everywhere in the CLI.
pub fn format_human_time(ms: i64) -> String {
    format_rfc3339(ms.div_euclid(1000) * 1000)
}

/// Parses RFC 3339 (`2024-05-01T12:00:00Z`, `…T12:00:00.5+02:00`) into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut pos = 19;
    let mut frac_ms = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return None;
        }
        let digits = &s[start..pos];
        let padded: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(3)
            .collect();
        frac_ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(pos)? {
        b'Z' | b'z' if pos + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let oh = num(pos + 1..pos + 3)?;
            let om = num(pos + 4..pos + 6)?;
            let o = oh * 60 + om;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// Parses a time as the Prometheus API accepts it: Unix seconds (with an optional fraction) or
/// RFC 3339. Returns milliseconds.
pub fn parse_api_time(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.abs() < 9.2e15 {
            return Some((f * 1000.0).round() as i64);
        }
        return None;
    }
    parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_formats() {
        assert_eq!(format_rfc3339_nano(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_100),
            "2023-11-14T22:13:20.1Z"
        );
        assert_eq!(
            format_rfc3339_millis(1_700_000_000_000),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(1_700_000_000_390),
            "2023-11-14T22:13:20.390Z"
        );
        assert_eq!(format_rfc3339_millis(0), "0001-01-01T00:00:00.000Z");
    }

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_714_564_800_123),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.123Z"),
            Some(1_714_564_800_123)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5Z"),
            Some(1_714_564_800_500)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "x024-05-01T00:00:00Z",
            "2024-05-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_over_centuries() {
        for ms in [
            -62_135_596_800_000i64,
            0,
            951_782_400_000,
            4_102_444_800_000,
            1_700_000_000_001,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn api_time() {
        assert_eq!(parse_api_time("1714564800.5"), Some(1_714_564_800_500));
        assert_eq!(
            parse_api_time("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000)
        );
        assert_eq!(parse_api_time("NaN"), None);
        assert_eq!(parse_api_time("soon"), None);
    }
}
