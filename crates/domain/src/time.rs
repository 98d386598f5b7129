//! Event time: UTC milliseconds since the Unix epoch, and the day and hour buckets built on it.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// An instant in event time: UTC milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ts(pub i64);

impl Ts {
    /// Parses an RFC 3339 timestamp with an offset (`Z` or `±hh:mm`), normalises it to UTC and
    /// truncates digits finer than a millisecond.
    pub fn parse_rfc3339(s: &str) -> Result<Ts, String> {
        let dt = DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("must be an RFC 3339 timestamp with an offset such as 2026-11-21T10:00:00.123Z ({e})"))?;
        Ok(Ts(dt.timestamp_millis()))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The UTC day this instant falls on.
    pub fn day(self) -> Day {
        // Days before 1970 still floor towards the past.
        Day(self.0.div_euclid(DAY_MS) as i32)
    }

    /// The start of the UTC hour this instant falls in.
    pub fn hour_start(self) -> Ts {
        Ts(self.0.div_euclid(HOUR_MS) * HOUR_MS)
    }

    /// The same instant as a chrono value (None only outside chrono's range).
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_millis(self.0)
    }

    /// Saturating subtraction of a duration in milliseconds.
    pub fn minus(self, ms: i64) -> Ts {
        Ts(self.0.saturating_sub(ms))
    }
}

impl fmt::Display for Ts {
    /// RFC 3339 in UTC with exactly three fractional digits, e.g. `2026-11-21T23:59:58.120Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}ms", self.0),
        }
    }
}

/// A UTC calendar day, counted in days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(pub i32);

impl Day {
    /// The day of a calendar date.
    pub fn from_date(d: NaiveDate) -> Day {
        Day(d.num_days_from_ce() - 719_163)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Day, String> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Day::from_date)
            .map_err(|_| format!("`{s}` is not a date of the form YYYY-MM-DD"))
    }

    /// The calendar date of this day.
    pub fn to_date(self) -> NaiveDate {
        // 719 163 is 1970-01-01 counted from 0001-01-01 as day 1.
        NaiveDate::from_num_days_from_ce_opt(self.0.saturating_add(719_163))
            .unwrap_or(NaiveDate::MAX)
    }

    /// The first instant of the day.
    pub fn start(self) -> Ts {
        Ts(self.0 as i64 * DAY_MS)
    }

    /// `self + n` days (n may be negative).
    pub fn plus(self, n: i32) -> Day {
        Day(self.0.saturating_add(n))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_date().format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_truncates_to_millis() {
        let z = Ts::parse_rfc3339("2026-11-21T10:00:00.123456Z").unwrap();
        let plus = Ts::parse_rfc3339("2026-11-21T12:00:00.123999+02:00").unwrap();
        assert_eq!(z, plus);
        assert_eq!(z.to_string(), "2026-11-21T10:00:00.123Z");
        let neg = Ts::parse_rfc3339("2026-11-21T05:30:00-04:30").unwrap();
        assert_eq!(neg.to_string(), "2026-11-21T10:00:00.000Z");
    }

    #[test]
    fn rejects_timestamps_without_offset() {
        assert!(Ts::parse_rfc3339("2026-11-21T10:00:00").is_err());
        assert!(Ts::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn day_and_hour_boundaries() {
        let t = Ts::parse_rfc3339("2026-11-21T23:59:59.999Z").unwrap();
        assert_eq!(t.day().to_string(), "2026-11-21");
        assert_eq!(Ts(t.0 + 1).day().to_string(), "2026-11-22");
        assert_eq!(t.hour_start().to_string(), "2026-11-21T23:00:00.000Z");
        let before_epoch = Ts::parse_rfc3339("1969-12-31T23:59:59.999Z").unwrap();
        assert_eq!(before_epoch.day().to_string(), "1969-12-31");
        assert_eq!(
            Day::parse("2026-11-21").unwrap().start().to_string(),
            "2026-11-21T00:00:00.000Z"
        );
        assert!(Day::parse("2026-13-01").is_err());
    }
}
