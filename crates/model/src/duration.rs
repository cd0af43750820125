//! Prometheus's duration syntax: `1h30m`, `5m`, `15s`, `100ms`, `2d`, `1w`, `1y`.

use std::time::Duration;

/// Why a duration string was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration: {input:?} ({reason}); expected a duration like 15s, 5m or 1h30m")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

const UNITS: [(&str, u64); 8] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
    ("", 0), // sentinel, never matched
];

/// Parses a Prometheus duration. Units must appear from largest to smallest, each at most once,
/// as Prometheus requires; `0` alone is accepted.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    if input.is_empty() {
        return Err(err("empty"));
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut total: u64 = 0;
    let mut last_unit_index: Option<usize> = None;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(err("a number must come before each unit"));
        }
        let n: u64 = input[start..pos]
            .parse()
            .map_err(|_| err("number too large"))?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &input[unit_start..pos];
        let Some(index) = UNITS[..7].iter().position(|(u, _)| *u == unit) else {
            return Err(err("unknown unit; use ms, s, m, h, d, w or y"));
        };
        if let Some(last) = last_unit_index {
            if index <= last {
                return Err(err("units must go from largest to smallest, each once"));
            }
        }
        last_unit_index = Some(index);
        let ms = n
            .checked_mul(UNITS[index].1)
            .ok_or_else(|| err("duration too large"))?;
        total = total
            .checked_add(ms)
            .ok_or_else(|| err("duration too large"))?;
    }
    if total > i64::MAX as u64 {
        return Err(err("duration too large"));
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way Prometheus prints one (`1h30m`, `15s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in UNITS[..7].iter() {
        // Prometheus prints weeks and years only when they divide evenly.
        if (*unit == "y" || *unit == "w") && !ms.is_multiple_of(*size) {
            continue;
        }
        if ms >= *size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

/// A duration for people reading medic's output (the CLI, reports, summaries): `420ms`, `3.1s`,
/// `4m12s`, `2h3m`, `3d4h` — one format everywhere. Configuration keeps Prometheus's
/// [`format_duration`].
pub fn format_human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{}s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..=86_399_999 => format!("{}h{}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{}d{}h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// A duration in Prometheus syntax as it appears in configuration files (`15s`, `1h30m`), in
/// milliseconds: the one serde duration type of medic's files (medic.yml, alertmanager.yml,
/// playbooks). Written back in the same syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Dur(pub i64);

impl Dur {
    pub const ZERO: Dur = Dur(0);

    pub const fn from_secs(s: i64) -> Dur {
        Dur(s * 1_000)
    }

    pub const fn from_millis(ms: i64) -> Dur {
        Dur(ms)
    }

    /// The duration in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// As a [`Duration`] (negative values are zero).
    pub fn duration(self) -> Duration {
        Duration::from_millis(self.0.max(0) as u64)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Dur {
        Dur(d.as_millis() as i64)
    }
}

impl std::str::FromStr for Dur {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Dur, DurationError> {
        parse_duration(s).map(Dur::from)
    }
}

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_duration(self.duration()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_have_one_format() {
        assert_eq!(format_human_duration(420), "420ms");
        assert_eq!(format_human_duration(1029), "1.0s");
        assert_eq!(format_human_duration(3_140), "3.1s");
        assert_eq!(format_human_duration(252_000), "4m12s");
        assert_eq!(format_human_duration(7_380_000), "2h3m");
        assert_eq!(format_human_duration(4 * 86_400_000 + 3_600_000), "4d1h");
    }

    #[test]
    fn parses_prometheus_durations() {
        let cases = [
            ("0", 0),
            ("15s", 15_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("100ms", 100),
            ("1d", 86_400_000),
            ("2w", 14 * 86_400_000),
            ("1y", 365 * 86_400_000),
            ("1m30s500ms", 90_500),
        ];
        for (s, ms) in cases {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for s in [
            "",
            "5",
            "m",
            "5x",
            "1m1h",
            "1s1s",
            "-5s",
            "1.5h",
            "99999999999999999999y",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.to_string().contains(s), "{e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "15s",
            "5m",
            "1h30m",
            "100ms",
            "1d",
            "2w",
            "0s",
            "1d1h1m1s1ms",
        ] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn dur_reads_and_writes_prometheus_syntax() {
        let d: Dur = serde_norway::from_str("1h30m").unwrap();
        assert_eq!(d, Dur(5_400_000));
        assert_eq!(d.to_string(), "1h30m");
        assert_eq!(serde_norway::to_string(&d).unwrap().trim(), "1h30m");
        assert_eq!(Dur::from_secs(15).duration(), Duration::from_secs(15));
        let e = serde_norway::from_str::<Dur>("90").unwrap_err().to_string();
        assert!(e.contains("not a valid duration"), "{e}");
    }
}
