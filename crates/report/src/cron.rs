//! Cron schedules in a time zone: the five fields of crontab(5) (minute, hour, day of month,
//! month, day of week) with lists, ranges, steps and names, and the macros `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly`. As in cron, when both the day of month and the
//! day of week are restricted, a day matching either runs. Times are wall-clock times in the
//! zone: a time skipped by a DST change does not run that day; one repeated runs once.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
    text: String,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's allowed values as a bit set; errors name the field and the part.
fn field(text: &str, name: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + lo);
        }
        match s.parse::<u32>() {
            // Sunday may be written 7.
            Ok(7) if name == "day of week" => Ok(0),
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(format!("{name}: {s:?} is not in {lo}-{hi}")),
        }
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: step {s:?} is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if a > b {
            return Err(format!("{name}: range {range:?} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    /// Parses `0 8 1 * *`, `*/15 9-17 * * mon-fri`, `@monthly`.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let t = text.trim();
        let expanded = match t {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            _ if t.starts_with('@') => return Err(format!("unknown macro {t:?}")),
            _ => t,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "{t:?}: expected five fields (minute hour day-of-month month day-of-week), found {}",
                f.len()
            ));
        }
        Ok(Cron {
            minutes: field(f[0], "minute", 0, 59, &[])?,
            hours: field(f[1], "hour", 0, 23, &[])? as u32,
            days: field(f[2], "day of month", 1, 31, &[])? as u32,
            months: field(f[3], "month", 1, 12, &MONTHS)? as u16,
            weekdays: field(f[4], "day of week", 0, 6, &WEEKDAYS)? as u8,
            days_restricted: f[2] != "*",
            weekdays_restricted: f[4] != "*",
            text: t.to_string(),
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first run strictly after `after`, in `tz`; `None` if none within eight years (a
    /// schedule such as `0 0 30 2 *` never runs).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        let mut day = start.date();
        for _ in 0..(366 * 8) {
            if self.day_matches(day) {
                for h in 0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    for m in 0..60 {
                        if self.minutes & (1 << m) == 0 {
                            continue;
                        }
                        let dt =
                            DateTime::from_parts(day, jiff::civil::time(h as i8, m as i8, 0, 0));
                        if dt <= start {
                            continue;
                        }
                        // A wall time the zone skips (DST) does not exist that day; one it
                        // repeats runs once, the first time.
                        let amb = tz.to_ambiguous_zoned(dt);
                        if matches!(amb.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
                            continue;
                        }
                        let Ok(z) = amb.earlier() else { continue };
                        if z.timestamp() > after {
                            return Some(z.timestamp());
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(c: &str, after: &str, tz: &str) -> String {
        let tz = TimeZone::get(tz).unwrap();
        Cron::parse(c)
            .unwrap()
            .next_after(after.parse().unwrap(), &tz)
            .unwrap()
            .to_string()
    }

    #[test]
    fn schedules_run_when_cron_would() {
        // 08:00 on the 1st in Shanghai (UTC+8) is 00:00 UTC.
        assert_eq!(
            next("0 8 1 * *", "2026-11-15T00:00:00Z", "Asia/Shanghai"),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-12-01T00:00:00Z", "UTC"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("*/15 9-17 * * mon-fri", "2026-12-04T17:50:00Z", "UTC"),
            "2026-12-07T09:00:00Z"
        );
        // Day of month or day of week, as cron: the 13th or any Friday.
        assert_eq!(
            next("0 0 13 * fri", "2026-12-05T00:00:00Z", "UTC"),
            "2026-12-11T00:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-04T00:00:00Z", "UTC"),
            "2026-12-06T00:00:00Z"
        );
        // 02:30 does not exist in Berlin on 29 March 2026 (clocks go 02:00 → 03:00): next day.
        assert_eq!(
            next("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Berlin"),
            "2026-03-30T00:30:00Z"
        );
        // 02:30 happens twice on 25 October 2026: it runs once, the first time (CEST, UTC+2).
        assert_eq!(
            next("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Berlin"),
            "2026-10-25T00:30:00Z"
        );
        assert_eq!(
            next("30 2 * * *", "2026-10-25T00:30:00Z", "Europe/Berlin"),
            "2026-10-26T01:30:00Z"
        );
        assert!(Cron::parse("0 0 30 2 *")
            .unwrap()
            .next_after(Timestamp::UNIX_EPOCH, &TimeZone::UTC)
            .is_none());
        for (bad, why) in [
            ("0 8 1 *", "expected five fields"),
            ("60 * * * *", "minute: \"60\" is not in 0-59"),
            ("0 0 * * funday", "day of week"),
            ("*/0 * * * *", "step \"0\""),
            ("0 5-2 * * *", "runs backwards"),
            ("@fortnightly", "unknown macro"),
        ] {
            let e = Cron::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
