//! UTC times for people, without a calendar crate: `2026-11-03 14:05:09 UTC`, and short axis
//! labels.

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-03 14:05:09 UTC`.
pub fn utc(ms: i64) -> String {
    let s = ms.div_euclid(1000);
    let (y, m, d) = civil(s.div_euclid(86_400));
    let sod = s.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// An axis label: `14:05:30` within ten minutes, `14:05` within two days, `11-03` beyond.
pub fn clock_label(ms: i64, span_ms: i64) -> String {
    let s = ms.div_euclid(1000);
    if span_ms > 2 * 86_400_000 {
        let (_, m, d) = civil(s.div_euclid(86_400));
        format!("{m:02}-{d:02}")
    } else if span_ms <= 600_000 {
        let sod = s.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60)
    } else {
        let sod = s.rem_euclid(86_400);
        format!("{:02}:{:02}", sod / 3600, sod / 60 % 60)
    }
}

/// A duration for people: `45s`, `12m 5s`, `3h 20m`, `2d 4h`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_calendar_dates() {
        // `date -u -d @1700000000` prints Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 (a leap day) 12:00.
        assert_eq!(utc(1_709_208_000_000), "2024-02-29 12:00:00 UTC");
        assert_eq!(clock_label(1_700_000_000_000, 3_600_000), "22:13");
        assert_eq!(clock_label(1_700_000_000_000, 60_000), "22:13:20");
        assert_eq!(clock_label(1_700_000_000_000, 30 * 86_400_000), "11-14");
        assert_eq!(span(3_725_000), "1h 2m");
        assert_eq!(span(59_000), "59s");
    }
}
