//! Event time: UTC milliseconds since the Unix epoch, and the day and hour buckets built on it.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// Why a timestamp or a date does not parse. The texts are phrased to follow the name of the
/// field or flag that held the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not an RFC 3339 timestamp with an offset.
    #[error(
        "must be an RFC 3339 timestamp with an offset such as 2026-11-21T10:00:00.123Z ({cause})"
    )]
    Timestamp { cause: chrono::ParseError },
    /// Not a `YYYY-MM-DD` date.
    #[error("`{text}` is not a date of the form YYYY-MM-DD")]
    Date { text: String },
}

/// An instant in event time: UTC milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ts(pub i64);

impl Ts {
    /// Parses an RFC 3339 timestamp with an offset (`Z` or `±hh:mm`), normalises it to UTC and
    /// truncates digits finer than a millisecond.
    pub fn parse_rfc3339(s: &str) -> Result<Ts, TimeError> {
        if let Some(ms) = common_rfc3339_millis(s.as_bytes()) {
            return Ok(Ts(ms));
        }
        let dt = DateTime::parse_from_rfc3339(s).map_err(|cause| TimeError::Timestamp { cause })?;
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

/// The common form `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` (years 1 to 9999, seconds 0 to 59)
/// read without chrono (its parser showed in the join core's profile); `None` for anything
/// else, which chrono then reads or rejects with its own words. The property tests check both
/// agree on every string this answers for.
fn common_rfc3339_millis(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if year < 1 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&day) {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let [b'.', frac @ ..] = rest {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        // Digits finer than a millisecond are truncated.
        let ms_digits = &frac[..digits.min(3)];
        millis = num(ms_digits)? * [100, 10, 1][ms_digits.len() - 1];
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    Some(secs * 1000 + millis)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    pub fn parse(s: &str) -> Result<Day, TimeError> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Day::from_date)
            .map_err(|_| TimeError::Date { text: s.to_owned() })
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
    use proptest::prelude::*;

    fn chrono_millis(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn the_common_form_reads_as_chrono_reads_it(
            s in "[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?(Z|z|[+-][0-2][0-9]:[0-6][0-9]|[+-][0-9]{4}|)",
        ) {
            if let Some(ms) = common_rfc3339_millis(s.as_bytes()) {
                prop_assert_eq!(Some(ms), chrono_millis(&s), "{}", s);
            }
        }

        #[test]
        fn valid_instants_round_trip_through_the_fast_path(
            ms in -62_135_596_800_000i64..253_402_300_800_000,
            offset_min in -(23 * 60 + 59)..=(23 * 60 + 59),
            digits in 0usize..=9,
            sub in 0u32..1_000_000,
        ) {
            let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
            let local = utc.with_timezone(&chrono::FixedOffset::east_opt(offset_min * 60).unwrap());
            let frac = format!("{:03}{:06}", ms.rem_euclid(1000), sub);
            let text = format!(
                "{}{}{}",
                local.format("%Y-%m-%dT%H:%M:%S"),
                if digits == 0 { String::new() } else { format!(".{}", &frac[..digits]) },
                if offset_min == 0 { "Z".to_owned() } else { local.format("%:z").to_string() },
            );
            let want = chrono_millis(&text);
            prop_assert_eq!(common_rfc3339_millis(text.as_bytes()).or(want), want, "{}", text);
            if (1..=9999).contains(&local.year()) {
                prop_assert!(common_rfc3339_millis(text.as_bytes()).is_some(), "{}", text);
            }
        }
    }

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
    fn parse_errors_are_typed_and_keep_their_texts() {
        let e = Ts::parse_rfc3339("2026-11-21T10:00:00").unwrap_err();
        assert!(matches!(e, TimeError::Timestamp { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(
                "must be an RFC 3339 timestamp with an offset such as 2026-11-21T10:00:00.123Z ("
            ),
            "{e}"
        );
        assert!(
            std::error::Error::source(&e).is_none(),
            "the cause is said once, in the text"
        );
        let e = Day::parse("21/11/2026").unwrap_err();
        assert_eq!(
            e,
            TimeError::Date {
                text: "21/11/2026".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "`21/11/2026` is not a date of the form YYYY-MM-DD"
        );
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
