//! A small cron parser: when a `schedule` trigger is due.
//!
//! Two forms are accepted, the two a user meets:
//! - five fields, Unix style: `minute hour day-of-month month day-of-week`, day-of-week 0-7 with
//!   0 and 7 both Sunday;
//! - six fields, EventBridge style (what `cron(...)` takes in AWS): `minute hour day-of-month month
//!   day-of-week year`, day-of-week 1-7 with 1 Sunday.
//!
//! Each field takes `*`, `?` (same as `*`), numbers, `a-b` ranges, `/step`s and comma lists;
//! months and days also take names (`JAN`, `MON-FRI`). When both day fields are restricted, a day
//! matches if either does (Vixie cron's rule). Times are UTC.

use chrono::{DateTime, Datelike as _, Duration, TimeZone as _, Timelike as _, Utc};

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    days_any: bool,
    weekdays_any: bool,
    /// `None` is every year.
    years: Option<Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: {problem}")]
pub struct CronError {
    pub expr: String,
    pub problem: String,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let err = |problem: String| CronError { expr: expr.to_owned(), problem };
        // `cron(...)` as EventBridge writes it is accepted too.
        let inner = expr.trim();
        let inner = inner.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')).unwrap_or(inner);
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let aws = match fields.len() {
            5 => false,
            6 => true,
            n => return Err(err(format!("expected 5 or 6 fields, got {n}"))),
        };
        let field = |i: usize, name: &str, lo: u32, hi: u32, names: &[&str], names_base: u32| {
            parse_field(fields[i], lo, hi, names, names_base).map_err(|p| err(format!("{name}: {p}")))
        };
        let minutes = field(0, "minute", 0, 59, &[], 0)?;
        let hours = field(1, "hour", 0, 23, &[], 0)?;
        let days = field(2, "day of month", 1, 31, &[], 0)?;
        let months = field(3, "month", 1, 12, &MONTHS, 1)?;
        let weekdays_raw =
            if aws { field(4, "day of week", 1, 7, &DAYS, 1)? } else { field(4, "day of week", 0, 7, &DAYS, 0)? };
        // Normalise to Sunday = bit 0.
        let weekdays = if aws {
            (weekdays_raw.bits >> 1) as u8 & 0x7f
        } else {
            ((weekdays_raw.bits | (weekdays_raw.bits >> 7)) & 0x7f) as u8
        };
        let years = if aws {
            let y = fields[5];
            if y == "*" || y == "?" {
                None
            } else {
                let mut list = Vec::new();
                for part in y.split(',') {
                    let (range, step) = split_step(part).map_err(|p| err(format!("year: {p}")))?;
                    let (a, b) = match range.split_once('-') {
                        Some((a, b)) => (parse_year(a), parse_year(b)),
                        None => (parse_year(range), parse_year(range)),
                    };
                    let (Some(a), Some(b)) = (a, b) else {
                        return Err(err(format!("year: {part:?} is not a year from 1970 to 2199")));
                    };
                    let b = if step.is_some() && !range.contains('-') { 2199 } else { b };
                    let mut v = a;
                    while v <= b {
                        list.push(v);
                        v += step.unwrap_or(1) as i32;
                    }
                }
                Some(list)
            }
        } else {
            None
        };
        Ok(Self {
            minutes: minutes.bits,
            hours: minutes_to_u32(hours.bits),
            days: minutes_to_u32(days.bits),
            months: months.bits as u16,
            weekdays,
            days_any: days.any,
            weekdays_any: weekdays_raw.any,
            years,
        })
    }

    fn day_matches(&self, t: &DateTime<Utc>) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().num_days_from_sunday()) != 0;
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first due time strictly after `after` (whole minutes), or `None` if there is none in
    /// the next ten years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = after + Duration::days(3660);
        while t <= limit {
            if let Some(years) = &self.years
                && !years.contains(&t.year())
            {
                let next = years.iter().copied().filter(|y| *y > t.year()).min()?;
                t = Utc.with_ymd_and_hms(next, 1, 1, 0, 0, 0).single()?;
                continue;
            }
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
                t = Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?;
                continue;
            }
            if !self.day_matches(&t) {
                t = (t + Duration::days(1)).with_hour(0)?.with_minute(0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + Duration::hours(1)).with_minute(0)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }

    /// The latest due time in `(after, now]`, if any: what a scheduler that last fired at `after`
    /// fires for now. Missed earlier times are skipped on purpose (one run after a long stop,
    /// not a burst of catch-up runs).
    pub fn latest_due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut due = None;
        let mut t = after;
        // Bounded: a year of every-minute due times.
        for _ in 0..600_000 {
            match self.next_after(t) {
                Some(next) if next <= now => {
                    due = Some(next);
                    t = next;
                }
                _ => break,
            }
        }
        due
    }
}

fn minutes_to_u32(bits: u64) -> u32 {
    (bits & 0xffff_ffff) as u32
}

fn parse_year(s: &str) -> Option<i32> {
    s.parse::<i32>().ok().filter(|y| (1970..=2199).contains(y))
}

struct Field {
    bits: u64,
    any: bool,
}

fn split_step(part: &str) -> Result<(&str, Option<u32>), String> {
    match part.split_once('/') {
        Some((r, s)) => match s.parse::<u32>() {
            Ok(n) if n > 0 => Ok((r, Some(n))),
            _ => Err(format!("step {s:?} must be a positive number")),
        },
        None => Ok((part, None)),
    }
}

fn parse_field(text: &str, lo: u32, hi: u32, names: &[&str], names_base: u32) -> Result<Field, String> {
    if text == "*" || text == "?" {
        let mut bits = 0u64;
        for v in lo..=hi {
            bits |= 1 << v;
        }
        return Ok(Field { bits, any: true });
    }
    let value = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + names_base);
        }
        match s.parse::<u32>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(format!("{s:?} is not a value from {lo} to {hi}")),
        }
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = split_step(part)?;
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if step.is_some() { hi } else { a })
        };
        if a > b {
            return Err(format!("range {range:?} runs backwards"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(Field { bits, any: false })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str) -> String {
        Cron::parse(expr).unwrap().next_after(at(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn next_times() {
        assert_eq!(next("*/15 * * * *", "2026-11-30T08:07:30Z"), "2026-11-30T08:15:00+00:00");
        assert_eq!(next("0 9 * * MON-FRI", "2026-11-28T10:00:00Z"), "2026-11-30T09:00:00+00:00");
        assert_eq!(next("0 0 1 JAN *", "2026-11-30T00:00:00Z"), "2027-01-01T00:00:00+00:00");
        assert_eq!(next("30 2 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T02:30:00+00:00");
        // Sunday is 0 and 7 in Unix style, 1 in EventBridge's.
        assert_eq!(next("0 12 * * 7", "2026-11-30T00:00:00Z"), "2026-12-06T12:00:00+00:00");
        assert_eq!(next("0 12 ? * 1 *", "2026-11-30T00:00:00Z"), "2026-12-06T12:00:00+00:00");
        assert_eq!(next("cron(0 12 * * ? 2027)", "2026-11-30T00:00:00Z"), "2027-01-01T12:00:00+00:00");
        // Both day fields restricted: either matches (1st of the month or a Friday).
        assert_eq!(next("0 0 1 * 5", "2026-11-30T00:00:00Z"), "2026-12-01T00:00:00+00:00");
        assert_eq!(next("0 0 1 * 5", "2026-12-01T00:00:00Z"), "2026-12-04T00:00:00+00:00");
        assert_eq!(Cron::parse("0 0 31 2 *").unwrap().next_after(at("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for (expr, problem) in [
            ("* * * *", "expected 5 or 6 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step"),
            ("5-1 * * * *", "backwards"),
            ("* * * * * 1800", "year"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert!(e.to_string().contains(problem), "{expr}: {e}");
        }
    }

    #[test]
    fn latest_due_skips_missed_times() {
        let c = Cron::parse("0 * * * *").unwrap();
        assert_eq!(
            c.latest_due(at("2026-11-30T05:00:00Z"), at("2026-11-30T08:30:00Z")),
            Some(at("2026-11-30T08:00:00Z"))
        );
        assert_eq!(c.latest_due(at("2026-11-30T08:00:00Z"), at("2026-11-30T08:59:59Z")), None);
    }
}
