//! Alertmanager's time intervals (`time_intervals:` and routes' `mute_time_intervals` /
//! `active_time_intervals`): times of day, weekdays, days of the month (negative counts from
//! the end), months and years, in a time zone (`location`, IANA names; the tz database is built
//! into medic so it does not depend on the host's).

use serde::Deserialize;

/// One interval. An empty field matches every value; all fields must match.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawInterval")]
pub struct TimeInterval {
    /// `[start, end)` in minutes of the day.
    pub times: Vec<(u32, u32)>,
    /// Inclusive ranges, 0 = Sunday.
    pub weekdays: Vec<(u8, u8)>,
    /// Inclusive ranges, negative counts from the month's end (-1 = last day).
    pub days_of_month: Vec<(i32, i32)>,
    /// Inclusive ranges, 1 = January.
    pub months: Vec<(u8, u8)>,
    pub years: Vec<(i32, i32)>,
    pub location: Option<Location>,
}

/// A time zone with its name as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub name: String,
    pub tz: jiff::tz::TimeZone,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterval {
    #[serde(default)]
    times: Vec<RawTimes>,
    #[serde(default)]
    weekdays: Vec<String>,
    #[serde(default)]
    days_of_month: Vec<String>,
    #[serde(default)]
    months: Vec<String>,
    #[serde(default)]
    years: Vec<String>,
    location: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimes {
    start_time: String,
    end_time: String,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn parse_minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s:?}, invalid format");
    if s == "24:00" {
        return Ok(24 * 60);
    }
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn split_range(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((a, b)) => (a, b),
        None => (s, s),
    }
}

fn named(s: &str, names: &[&str], what: &str, first: u8) -> Result<u8, String> {
    let lower = s.trim().to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Ok(i as u8 + first);
    }
    if what == "month" {
        if let Ok(n) = lower.parse::<u8>() {
            if (1..=12).contains(&n) {
                return Ok(n);
            }
        }
    }
    Err(format!("{s:?} is not a valid {what}"))
}

impl TryFrom<RawInterval> for TimeInterval {
    type Error = String;

    fn try_from(r: RawInterval) -> Result<Self, String> {
        let mut times = Vec::new();
        for t in &r.times {
            let (a, b) = (parse_minutes(&t.start_time)?, parse_minutes(&t.end_time)?);
            if a >= b {
                return Err("start time cannot be equal or greater than end time".into());
            }
            times.push((a, b));
        }
        let mut weekdays = Vec::new();
        for w in &r.weekdays {
            let (a, b) = split_range(w);
            let (a, b) = (
                named(a, &WEEKDAYS, "weekday", 0)?,
                named(b, &WEEKDAYS, "weekday", 0)?,
            );
            if a > b {
                return Err(format!("start day cannot be after end day: {w:?}"));
            }
            weekdays.push((a, b));
        }
        let mut days_of_month = Vec::new();
        for d in &r.days_of_month {
            let (a, b) = split_range(d);
            let parse = |x: &str| -> Result<i32, String> {
                let n: i32 = x
                    .trim()
                    .parse()
                    .map_err(|_| format!("{d:?} is not a valid day of the month"))?;
                if n == 0 || !(-31..=31).contains(&n) {
                    return Err(format!("{x} is not a valid day of the month: out of range"));
                }
                Ok(n)
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if (a > 0) == (b > 0) && a > b {
                return Err(format!("end day must be greater than start day: {d:?}"));
            }
            if a < 0 && b > 0 {
                return Err(format!(
                    "end day must be negative if start day is negative: {d:?}"
                ));
            }
            days_of_month.push((a, b));
        }
        let mut months = Vec::new();
        for m in &r.months {
            let (a, b) = split_range(m);
            let (a, b) = (
                named(a, &MONTHS, "month", 1)?,
                named(b, &MONTHS, "month", 1)?,
            );
            if a > b {
                return Err(format!("end month {b} is before start month {a}"));
            }
            months.push((a, b));
        }
        let mut years = Vec::new();
        for y in &r.years {
            let (a, b) = split_range(y);
            let parse = |x: &str| -> Result<i32, String> {
                x.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{y:?} is not a valid year"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(format!("end year {b} is before start year {a}"));
            }
            years.push((a, b));
        }
        let location = match r.location {
            None => None,
            Some(name) => {
                let tz = if name == "Local" {
                    jiff::tz::TimeZone::system()
                } else if name == "UTC" {
                    jiff::tz::TimeZone::UTC
                } else {
                    jiff::tz::TimeZone::get(&name).map_err(|e| format!("location {name:?}: {e}"))?
                };
                Some(Location { name, tz })
            }
        };
        Ok(TimeInterval {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            location,
        })
    }
}

impl TimeInterval {
    /// Whether the instant `ms` (milliseconds since the epoch) lies in this interval.
    pub fn contains(&self, ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
            return false;
        };
        let tz = self
            .location
            .as_ref()
            .map_or(jiff::tz::TimeZone::UTC, |l| l.tz.clone());
        let t = ts.to_zoned(tz);
        let minute = t.hour() as u32 * 60 + t.minute() as u32;
        if !self.times.is_empty() && !self.times.iter().any(|&(a, b)| a <= minute && minute < b) {
            return false;
        }
        let wd = t.weekday().to_sunday_zero_offset() as u8;
        if !self.weekdays.is_empty() && !self.weekdays.iter().any(|&(a, b)| a <= wd && wd <= b) {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = i32::from(t.days_in_month());
            let day = i32::from(t.day());
            let hit = self.days_of_month.iter().any(|&(a, b)| {
                let begin = if a < 0 { dim + a + 1 } else { a };
                let end = if b < 0 { dim + b + 1 } else { b };
                if begin > dim {
                    return false;
                }
                let begin = begin.clamp(-dim, dim);
                let end = end.clamp(-dim, dim);
                begin <= day && day <= end
            });
            if !hit {
                return false;
            }
        }
        let month = t.month() as u8;
        if !self.months.is_empty() && !self.months.iter().any(|&(a, b)| a <= month && month <= b) {
            return false;
        }
        let year = i32::from(t.year());
        if !self.years.is_empty() && !self.years.iter().any(|&(a, b)| a <= year && year <= b) {
            return false;
        }
        true
    }
}

/// Whether `ms` lies in any of the intervals (a named interval is a list of them).
pub fn any_contains(intervals: &[TimeInterval], ms: i64) -> bool {
    intervals.iter().any(|i| i.contains(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(yaml: &str) -> Result<TimeInterval, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    fn at(s: &str) -> i64 {
        medic_model::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn business_hours_in_a_time_zone() {
        let i = interval(
            "times: [{start_time: '09:00', end_time: '17:00'}]\nweekdays: ['monday:friday']\nlocation: Europe/Berlin\n",
        )
        .unwrap();
        // 2024-01-15 was a Monday; Berlin is UTC+1 in January.
        assert!(i.contains(at("2024-01-15T08:00:00Z"))); // 09:00 Berlin
        assert!(!i.contains(at("2024-01-15T07:59:00Z"))); // 08:59 Berlin
        assert!(!i.contains(at("2024-01-15T16:00:00Z"))); // 17:00 Berlin, end is exclusive
        assert!(!i.contains(at("2024-01-13T10:00:00Z"))); // Saturday
                                                          // Summer time: UTC+2.
        assert!(i.contains(at("2024-07-15T07:00:00Z")));
    }

    #[test]
    fn days_of_month_count_from_the_end() {
        let i =
            interval("days_of_month: ['-3:-1']\nmonths: ['february']\nyears: ['2024']\n").unwrap();
        assert!(i.contains(at("2024-02-27T12:00:00Z")));
        assert!(i.contains(at("2024-02-29T23:59:00Z")));
        assert!(!i.contains(at("2024-02-26T12:00:00Z")));
        assert!(!i.contains(at("2024-03-30T12:00:00Z")));
        assert!(!i.contains(at("2025-02-27T12:00:00Z")));
        let whole = interval("days_of_month: ['1:-1']").unwrap();
        assert!(whole.contains(at("2024-04-30T00:00:00Z")));
    }

    #[test]
    fn rejects_bad_fields() {
        for (y, want) in [
            (
                "times: [{start_time: '10:00', end_time: '09:00'}]",
                "start time",
            ),
            (
                "times: [{start_time: '25:00', end_time: '26:00'}]",
                "couldn't parse",
            ),
            ("weekdays: ['funday']", "not a valid weekday"),
            ("days_of_month: ['0']", "out of range"),
            ("months: ['13']", "not a valid month"),
            ("location: Mars/Olympus", "Mars/Olympus"),
        ] {
            let e = interval(y).unwrap_err();
            assert!(e.contains(want), "{y} → {e}");
        }
    }
}
