//! The time a report covers: a calendar day, ISO week or month in a time zone, the last N days,
//! or explicit bounds.
//!
//! `2026-11` (that month), `2026-11-03` (that day), `2026-W45` (that ISO week, Monday first),
//! `30d` / `7d` / `24h` (up to now), `2026-11-01T00:00:00Z..2026-11-15T00:00:00Z`.

use jiff::civil::{Date, ISOWeekDate};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// What a scheduled report covers: the whole calendar period before its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Day,
    Week,
    Month,
}

/// A half-open span of time `[start, end)` with a name for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
    /// `2026-11`, `2026-11-03`, `2026-W45`, `30 days to 2026-12-04 10:00 UTC`.
    pub label: String,
}

impl Period {
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }

    pub fn end_ms(&self) -> i64 {
        self.end.as_millisecond()
    }

    /// Parses a period as written on the command line or in the API; `now` ends the relative
    /// ones. Errors say what was expected.
    pub fn parse(spec: &str, tz: &TimeZone, now: Timestamp) -> Result<Period, String> {
        let s = spec.trim();
        let bad = || {
            format!("period {s:?}: expected YYYY-MM, YYYY-MM-DD, YYYY-Www, a length such as 30d or 24h, or START..END in RFC 3339")
        };
        let at = |d: Date| -> Result<Timestamp, String> {
            d.to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| format!("period {s:?}: {e}"))
        };
        if let Some((a, b)) = s.split_once("..") {
            let p = |x: &str| {
                x.trim()
                    .parse::<Timestamp>()
                    .map_err(|e| format!("period {s:?}: {x:?}: {e}"))
            };
            let (start, end) = (p(a)?, p(b)?);
            if end <= start {
                return Err(format!("period {s:?}: the end is not after the start"));
            }
            return Ok(Period {
                start,
                end,
                label: format!("{a}..{b}"),
            });
        }
        if let Some(n) = s.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
            return relative(now, n * 86_400, &format!("{n} days"), tz);
        }
        if let Some(n) = s.strip_suffix('h').and_then(|n| n.parse::<i64>().ok()) {
            return relative(now, n * 3600, &format!("{n} hours"), tz);
        }
        if let Some((y, w)) = s.split_once("-W") {
            let (y, w) = (
                y.parse::<i16>().map_err(|_| bad())?,
                w.parse::<i8>().map_err(|_| bad())?,
            );
            let monday = ISOWeekDate::new(y, w, jiff::civil::Weekday::Monday)
                .map_err(|e| format!("period {s:?}: {e}"))?
                .date();
            let next = monday.checked_add(7.days()).map_err(|e| e.to_string())?;
            return Ok(Period {
                start: at(monday)?,
                end: at(next)?,
                label: format!("{y}-W{w:02}"),
            });
        }
        let parts: Vec<&str> = s.split('-').collect();
        match parts[..] {
            [y, m] if y.len() == 4 && m.len() == 2 => {
                let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                let first = Date::new(y, m, 1).map_err(|e| format!("period {s:?}: {e}"))?;
                let next = first.checked_add(1.month()).map_err(|e| e.to_string())?;
                Ok(Period {
                    start: at(first)?,
                    end: at(next)?,
                    label: format!("{y:04}-{m:02}"),
                })
            }
            [_, _, _] => {
                let d: Date = s.parse().map_err(|_| bad())?;
                Ok(Period {
                    start: at(d)?,
                    end: at(d.tomorrow().map_err(|e| e.to_string())?)?,
                    label: d.to_string(),
                })
            }
            _ => Err(bad()),
        }
    }

    /// The whole `kind` period before the one holding `run` (the report that runs at 08:00 on
    /// the 1st covers the month before).
    pub fn previous(kind: Kind, run: Timestamp, tz: &TimeZone) -> Result<Period, String> {
        let today = run.to_zoned(tz.clone()).date();
        let spec = match kind {
            Kind::Day => today.yesterday().map_err(|e| e.to_string())?.to_string(),
            Kind::Week => {
                let w = today
                    .checked_sub(7.days())
                    .map_err(|e| e.to_string())?
                    .iso_week_date();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Kind::Month => {
                let d = today
                    .first_of_month()
                    .checked_sub(1.month())
                    .map_err(|e| e.to_string())?;
                format!("{:04}-{:02}", d.year(), d.month())
            }
        };
        Period::parse(&spec, tz, run)
    }
}

fn relative(now: Timestamp, secs: i64, what: &str, tz: &TimeZone) -> Result<Period, String> {
    if secs <= 0 {
        return Err(format!("period: {what} is not a length"));
    }
    let start = now.checked_sub(secs.seconds()).map_err(|e| e.to_string())?;
    let end_label = now.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z");
    Ok(Period {
        start,
        end: now,
        label: format!("{what} to {end_label}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_calendar_periods_in_the_zone() {
        let sh = TimeZone::get("Asia/Shanghai").unwrap();
        let now = ts("2026-12-04T10:00:00Z");
        let p = Period::parse("2026-11", &sh, now).unwrap();
        assert_eq!(p.start, ts("2026-10-31T16:00:00Z"));
        assert_eq!(p.end, ts("2026-11-30T16:00:00Z"));
        assert_eq!(p.label, "2026-11");
        let p = Period::parse("2026-11-03", &TimeZone::UTC, now).unwrap();
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-03T00:00:00Z"), ts("2026-11-04T00:00:00Z"))
        );
        // ISO week 45 of 2026 runs from Monday 2 November.
        let p = Period::parse("2026-W45", &TimeZone::UTC, now).unwrap();
        assert_eq!(
            (p.start, p.end),
            (ts("2026-11-02T00:00:00Z"), ts("2026-11-09T00:00:00Z"))
        );
        let p = Period::parse("30d", &TimeZone::UTC, now).unwrap();
        assert_eq!((p.start, p.end), (ts("2026-11-04T10:00:00Z"), now));
        let p = Period::parse("2026-11-01T00:00:00Z..2026-11-02T00:00:00Z", &sh, now).unwrap();
        assert_eq!(p.end_ms() - p.start_ms(), 86_400_000);
        for bad in [
            "2026-13",
            "yesterday",
            "0d",
            "2026-11-02T00:00:00Z..2026-11-01T00:00:00Z",
        ] {
            assert!(Period::parse(bad, &sh, now).is_err(), "{bad}");
        }
        // A monthly report running on 1 December covers November; a weekly one on Monday
        // 9 November, week 45; a daily one, the day before.
        let run = ts("2026-12-01T00:30:00Z");
        assert_eq!(
            Period::previous(Kind::Month, run, &sh).unwrap().label,
            "2026-11"
        );
        let run = ts("2026-11-09T01:00:00Z");
        assert_eq!(
            Period::previous(Kind::Week, run, &TimeZone::UTC)
                .unwrap()
                .label,
            "2026-W45"
        );
        assert_eq!(
            Period::previous(Kind::Day, run, &TimeZone::UTC)
                .unwrap()
                .label,
            "2026-11-08"
        );
    }
}
