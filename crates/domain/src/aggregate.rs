//! The views of docs/reference.md §4 as additive counts: plays per hour × country × device × SoP row ×
//! SoD row × genre × new-launch, and per day × video × SoD row. Counts add and subtract, so the
//! stream's corrections (retract the old attribution, add the new) and the batch's totals use the
//! same type.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::attribution::{Attribution, PlayRecord};
use crate::event::UNATTRIBUTED;
use crate::ids::{Interner, Sym, VideoId};
use crate::time::{Day, Ts};

/// What a counted play contributes to the views, as names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayFacts<'a> {
    pub ts: Ts,
    pub video_id: VideoId,
    pub country: &'a str,
    pub device: &'a str,
    pub sop_row: &'a str,
    pub sod_row: &'a str,
    pub genre: &'a str,
    pub new_launch: bool,
}

impl<'a> PlayFacts<'a> {
    /// The facts of an attributed play; `names` is the interner of the engine that produced it,
    /// `genre` and `new_launch` come from the catalog ([`crate::catalog::enrich`]).
    pub fn of(
        names: &'a Interner,
        play: &PlayRecord,
        att: &Attribution,
        genre: &'a str,
        new_launch: bool,
    ) -> PlayFacts<'a> {
        let row = |r: &Option<crate::attribution::ImpressionRecord>| {
            r.as_ref()
                .map_or(UNATTRIBUTED, |i| names.resolve(i.row_type))
        };
        PlayFacts {
            ts: play.ts,
            video_id: play.video_id,
            country: names.resolve(play.country),
            device: names.resolve(play.device),
            sop_row: row(&att.sop),
            sod_row: row(&att.sod),
            genre,
            new_launch,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct HourlyKey {
    hour: Ts,
    country: Sym,
    device: Sym,
    sop_row: Sym,
    sod_row: Sym,
    genre: Sym,
    new_launch: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct VideoDayKey {
    day: Day,
    video_id: VideoId,
    sod_row: Sym,
}

/// One row of the hourly view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HourlyRow {
    pub hour: Ts,
    pub country: String,
    pub device: String,
    pub sop_row: String,
    pub sod_row: String,
    pub genre: String,
    pub new_launch: bool,
    pub plays: i64,
}

/// One row of the per-video daily view.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VideoDayRow {
    pub day: Day,
    pub video_id: VideoId,
    pub sod_row: String,
    pub plays: i64,
}

/// Additive play counts of both views.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    names: Interner,
    hourly: FxHashMap<HourlyKey, i64>,
    video_daily: FxHashMap<VideoDayKey, i64>,
}

impl Counts {
    /// Adds `delta` (1 to count a play, -1 to retract it).
    pub fn add(&mut self, f: &PlayFacts<'_>, delta: i64) {
        let sod_row = self.names.intern(f.sod_row);
        let key = HourlyKey {
            hour: f.ts.hour_start(),
            country: self.names.intern(f.country),
            device: self.names.intern(f.device),
            sop_row: self.names.intern(f.sop_row),
            sod_row,
            genre: self.names.intern(f.genre),
            new_launch: f.new_launch,
        };
        *self.hourly.entry(key).or_default() += delta;
        *self
            .video_daily
            .entry(VideoDayKey {
                day: f.ts.day(),
                video_id: f.video_id,
                sod_row,
            })
            .or_default() += delta;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for r in other.hourly_rows() {
            self.add_hourly_row(&r);
        }
        for r in other.video_rows() {
            let sod_row = self.names.intern(&r.sod_row);
            *self
                .video_daily
                .entry(VideoDayKey {
                    day: r.day,
                    video_id: r.video_id,
                    sod_row,
                })
                .or_default() += r.plays;
        }
    }

    fn add_hourly_row(&mut self, r: &HourlyRow) {
        let key = HourlyKey {
            hour: r.hour,
            country: self.names.intern(&r.country),
            device: self.names.intern(&r.device),
            sop_row: self.names.intern(&r.sop_row),
            sod_row: self.names.intern(&r.sod_row),
            genre: self.names.intern(&r.genre),
            new_launch: r.new_launch,
        };
        *self.hourly.entry(key).or_default() += r.plays;
    }

    /// The non-zero hourly counts, sorted.
    pub fn hourly_rows(&self) -> Vec<HourlyRow> {
        let n = |s: Sym| self.names.resolve(s).to_owned();
        let mut rows: Vec<HourlyRow> = self
            .hourly
            .iter()
            .filter(|(_, &c)| c != 0)
            .map(|(k, &plays)| HourlyRow {
                hour: k.hour,
                country: n(k.country),
                device: n(k.device),
                sop_row: n(k.sop_row),
                sod_row: n(k.sod_row),
                genre: n(k.genre),
                new_launch: k.new_launch,
                plays,
            })
            .collect();
        rows.sort();
        rows
    }

    /// The non-zero per-video daily counts, sorted.
    pub fn video_rows(&self) -> Vec<VideoDayRow> {
        let mut rows: Vec<VideoDayRow> = self
            .video_daily
            .iter()
            .filter(|(_, &c)| c != 0)
            .map(|(k, &plays)| VideoDayRow {
                day: k.day,
                video_id: k.video_id,
                sod_row: self.names.resolve(k.sod_row).to_owned(),
                plays,
            })
            .collect();
        rows.sort();
        rows
    }

    /// Sum of all hourly counts (the number of counted plays).
    pub fn total(&self) -> i64 {
        self.hourly.values().sum()
    }

    /// Whether no non-zero count is held.
    pub fn is_empty(&self) -> bool {
        self.hourly.values().all(|&c| c == 0) && self.video_daily.values().all(|&c| c == 0)
    }

    /// Forgets all counts (keeps the names).
    pub fn clear(&mut self) {
        self.hourly.clear();
        self.video_daily.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(ts: i64, sop: &'static str) -> PlayFacts<'static> {
        PlayFacts {
            ts: Ts(ts),
            video_id: VideoId(7),
            country: "US",
            device: "tv",
            sop_row: sop,
            sod_row: "billboard",
            genre: "drama",
            new_launch: false,
        }
    }

    #[test]
    fn corrections_cancel_and_hours_bucket() {
        let mut c = Counts::default();
        c.add(&facts(1_000, "unattributed"), 1);
        c.add(&facts(1_000, "unattributed"), -1);
        c.add(&facts(1_000, "top_picks"), 1);
        c.add(&facts(3_599_999, "top_picks"), 1);
        c.add(&facts(3_600_000, "top_picks"), 1);
        let rows = c.hourly_rows();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].hour, rows[0].plays), (Ts(0), 2));
        assert_eq!(c.total(), 3);
        assert_eq!(
            c.video_rows(),
            vec![VideoDayRow {
                day: Day(0),
                video_id: VideoId(7),
                sod_row: "billboard".into(),
                plays: 3
            }]
        );
        let mut m = Counts::default();
        m.merge(&c);
        m.merge(&c);
        assert_eq!(m.total(), 6);
    }
}
