//! What to generate: [`GenConfig`], and its validation.

use playsource_domain::{Ts, DAY_MS};

use crate::error::Error;

/// Rough number of messages one browse session produces (impressions plus plays); used to size
/// the session rate when a total number of events is asked for.
pub const MESSAGES_PER_SESSION: f64 = 26.0;

/// Everything that shapes a workload. The same config gives the same messages, byte for byte, on
/// every machine.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
    /// Number of members.
    pub members: u32,
    /// Number of titles in the catalog (played titles missing from the catalog come on top).
    pub videos: u32,
    /// Event time of the first session.
    pub start: Ts,
    /// Days of history after `start`; with `events` set, the period the events are spread over.
    pub days: u32,
    /// Stop after this many messages (all kinds counted); `None` stops at the end of `days`.
    pub events: Option<u64>,
    /// Browse sessions per member and day; `None` derives it from `events` (or uses 2.0).
    pub sessions_per_member_day: Option<f64>,
    /// Greatest amount (ms) by which a message may be emitted behind one with a later `ts`.
    pub disorder_ms: i64,
    /// Share of valid events delivered twice (same bytes), the copy up to a minute later.
    pub duplicate_share: f64,
    /// Share of valid events held back and delivered 10 to 60 minutes of event time late.
    pub late_share: f64,
    /// Share of all messages that are malformed.
    pub malformed_share: f64,
    /// Share of catalog titles launched inside the generated period (new launches).
    pub new_launch_share: f64,
    /// Share of played titles that the catalog does not know.
    pub missing_from_catalog_share: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            members: 1_000,
            videos: 2_000,
            start: Ts(0),
            days: 1,
            events: None,
            sessions_per_member_day: None,
            disorder_ms: 20_000,
            duplicate_share: 0.005,
            late_share: 0.0,
            malformed_share: 0.0,
            new_launch_share: 0.05,
            missing_from_catalog_share: 0.02,
        }
    }
}

/// Most disorder allowed; with redeliveries up to a minute later nothing valid lags more than 4 min
/// behind, under the contract's default allowed lateness of 5 min.
pub const MAX_DISORDER_MS: i64 = 3 * 60_000;

impl GenConfig {
    /// Checks every value; the error names the flag and the allowed range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag: &'static str, rule: &str, value: String| {
            Err(Error::Config {
                flag,
                message: format!("{rule}, got {value}"),
            })
        };
        if self.members == 0 {
            return bad("--members", "must be at least 1", self.members.to_string());
        }
        if self.videos < 10 {
            return bad("--videos", "must be at least 10", self.videos.to_string());
        }
        if self.days == 0 || self.days > 3_660 {
            return bad("--days", "must be from 1 to 3660", self.days.to_string());
        }
        if self.events == Some(0) {
            return bad("--events", "must be at least 1", "0".into());
        }
        if !(0..=MAX_DISORDER_MS).contains(&self.disorder_ms) {
            return bad(
                "--disorder-ms",
                "must be from 0 to 180000 (so that, with redeliveries up to a minute later, nothing lags more than 4 of the 5 minutes of allowed lateness)",
                self.disorder_ms.to_string(),
            );
        }
        if let Some(s) = self.sessions_per_member_day {
            if !(s > 0.0 && s <= 1_000.0) {
                return bad(
                    "--sessions-per-member-day",
                    "must be above 0 and at most 1000",
                    s.to_string(),
                );
            }
        }
        for (flag, v) in [
            ("--duplicate-share", self.duplicate_share),
            ("--late-share", self.late_share),
            ("--malformed-share", self.malformed_share),
            ("--new-launch-share", self.new_launch_share),
            (
                "--missing-from-catalog-share",
                self.missing_from_catalog_share,
            ),
        ] {
            // The upper bound keeps the generator from looping on malformed messages only.
            if !(0.0..=0.9).contains(&v) {
                return bad(flag, "must be a share from 0 to 0.9", v.to_string());
            }
        }
        if self
            .start
            .0
            .checked_add(self.days as i64 * DAY_MS)
            .is_none()
            || self.start.to_datetime().is_none()
        {
            return bad(
                "--start",
                "must be a representable time",
                self.start.0.to_string(),
            );
        }
        Ok(())
    }

    /// Sessions per member and day actually used.
    pub fn session_rate(&self) -> f64 {
        match (self.sessions_per_member_day, self.events) {
            (Some(s), _) => s,
            (None, Some(n)) => {
                let per_day = n as f64 / self.days as f64 / MESSAGES_PER_SESSION;
                (per_day / self.members as f64).max(1e-3)
            }
            (None, None) => 2.0,
        }
    }

    /// End of the generated period (exclusive): `--days` after the start, also with `--events`
    /// (which may stop the traffic earlier).
    pub fn end(&self) -> Option<Ts> {
        Some(Ts(self.start.0 + self.days as i64 * DAY_MS))
    }
}

/// Parses `--start`: an RFC 3339 timestamp with an offset, or a date `YYYY-MM-DD` (its midnight
/// UTC).
pub fn parse_start(s: &str) -> Result<Ts, Error> {
    if let Ok(ts) = Ts::parse_rfc3339(s) {
        return Ok(ts);
    }
    playsource_domain::Day::parse(s)
        .map(|d| d.start())
        .map_err(|_| Error::Config {
            flag: "--start",
            message: format!(
                "must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z or a date such as 2026-11-21, got {s:?}"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_a_timestamp_or_a_date() {
        assert_eq!(
            parse_start("2026-11-21").unwrap(),
            Ts::parse_rfc3339("2026-11-21T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_start("2026-11-21T12:00:00+02:00")
                .unwrap()
                .to_string(),
            "2026-11-21T10:00:00.000Z"
        );
        let err = parse_start("last tuesday").unwrap_err().to_string();
        assert!(
            err.contains("--start") && err.contains("last tuesday"),
            "{err}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        GenConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_flag() {
        let cases: Vec<(GenConfig, &str)> = vec![
            (
                GenConfig {
                    members: 0,
                    ..Default::default()
                },
                "--members",
            ),
            (
                GenConfig {
                    videos: 3,
                    ..Default::default()
                },
                "--videos",
            ),
            (
                GenConfig {
                    days: 0,
                    ..Default::default()
                },
                "--days",
            ),
            (
                GenConfig {
                    events: Some(0),
                    ..Default::default()
                },
                "--events",
            ),
            (
                GenConfig {
                    disorder_ms: 600_000,
                    ..Default::default()
                },
                "--disorder-ms",
            ),
            (
                GenConfig {
                    late_share: 1.5,
                    ..Default::default()
                },
                "--late-share",
            ),
            (
                GenConfig {
                    malformed_share: f64::NAN,
                    ..Default::default()
                },
                "--malformed-share",
            ),
            (
                GenConfig {
                    sessions_per_member_day: Some(0.0),
                    ..Default::default()
                },
                "--sessions-per-member-day",
            ),
            (
                GenConfig {
                    start: Ts(i64::MAX - 5),
                    ..Default::default()
                },
                "--start",
            ),
        ];
        for (cfg, flag) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
    }

    #[test]
    fn events_decide_the_session_rate() {
        let cfg = GenConfig {
            members: 100,
            days: 2,
            events: Some(26_000),
            ..Default::default()
        };
        assert!((cfg.session_rate() - 5.0).abs() < 1e-9);
        assert_eq!(cfg.end(), Some(Ts(2 * DAY_MS)));
        let cfg = GenConfig::default();
        assert_eq!(cfg.end(), Some(Ts(DAY_MS)));
    }
}
