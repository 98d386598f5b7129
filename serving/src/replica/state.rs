//! One consistent state of the replicated hourly views, and answering a series from it.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use playsource_domain::{Ts, DAY_MS, HOUR_MS};

use super::part::{self, Part};
use crate::merge::{self, Freshness};
use crate::params::SeriesQuery;
use crate::series_json::{SeriesBody, SeriesWriter};

/// The batch-complete days of the window and their rows: unchanged while the batch version is.
#[derive(Debug)]
pub(crate) struct BatchPart {
    /// First UTC day of the window.
    pub(super) first_day: NaiveDate,
    /// Batch-complete days on or after `first_day`.
    pub(super) complete: BTreeSet<NaiveDate>,
    pub(super) part: Part,
}

/// One consistent state of the views (from `first_day` on), as read in one snapshot.
#[derive(Debug)]
pub struct ReplicaState {
    pub(super) snapshot: String,
    pub(super) freshness: Freshness,
    pub(super) batch: Arc<BatchPart>,
    pub(super) rt: Part,
}

impl ReplicaState {
    /// The identity of the snapshot it was read in (`pg_current_snapshot()` as text).
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The freshness read in the same snapshot.
    pub fn freshness(&self) -> &Freshness {
        &self.freshness
    }

    /// The first UTC day held: a range starting earlier is answered by the SQL path.
    pub fn first_day(&self) -> NaiveDate {
        self.batch.first_day
    }

    /// Rows held: (batch, realtime).
    pub fn rows(&self) -> (usize, usize) {
        (self.batch.part.rows(), self.rt.rows())
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.batch.part.bytes() + self.rt.bytes()
    }

    fn first_ms(&self) -> i64 {
        self.batch
            .first_day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    }

    /// Whether a query's range lies inside the window.
    pub fn covers(&self, q: &SeriesQuery) -> bool {
        q.lo.0 >= self.first_ms()
    }

    /// The merged series of `q` in this state, or `None` when the range starts before the window.
    /// Identical to [`merge::series`] read in the same snapshot.
    pub fn series(&self, q: &SeriesQuery) -> Option<ReplicaAnswer> {
        if !self.covers(q) {
            return None;
        }
        let complete = &self.batch.complete;
        let all_batch = q.hi <= q.lo || {
            let (first, last) = (q.lo.day().to_date(), Ts(q.hi.0 - 1).day().to_date());
            first
                .iter_days()
                .take_while(|d| *d <= last)
                .all(|d| complete.contains(&d))
        };
        let sel_batch = self.batch.part.selector(q.view, &q.filters);
        let sel_rt = self.rt.selector(q.view, &q.filters);
        let hours_per_bucket = q.granularity.step_ms() / HOUR_MS;
        let mut acc: Vec<(u32, i64)> = Vec::new();
        let mut w = SeriesWriter::new(q);
        for t in merge::bucket_starts(q) {
            acc.clear();
            let (part, sel) = if complete.contains(&Ts(t).day().to_date()) {
                (&self.batch.part, &sel_batch)
            } else {
                (&self.rt, &sel_rt)
            };
            let first_hour = t.div_euclid(HOUR_MS);
            if hours_per_bucket == 1 {
                // Rendered when the replica was loaded.
                if let Some(rest) = part.hour_rest(first_hour, sel) {
                    w.bucket_rendered(t, rest);
                    continue;
                }
            }
            for h in first_hour..first_hour + hours_per_bucket {
                part.add_hour(h, sel, &mut acc);
            }
            let dict = &part.dict;
            let total = part::answer_rows(&mut acc, dict);
            let rows = acc.iter().map(|&(row, plays)| (dict.json_name(row), plays));
            w.bucket(t, total, rows);
        }
        Some(ReplicaAnswer {
            body: w.finish(),
            freshness: self.freshness.clone(),
            all_batch,
        })
    }
}

/// A series answered from the replica.
#[derive(Debug)]
pub struct ReplicaAnswer {
    /// The answer up to its `source` value, as the SQL path's would be serialised.
    pub body: SeriesBody,
    /// Freshness read in the same snapshot.
    pub freshness: Freshness,
    /// True when every day the range touches is batch-complete.
    pub all_batch: bool,
}

/// Midnight UTC of a day, in ms.
pub(super) fn day_ms(d: NaiveDate) -> i64 {
    d.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_millis()
        .div_euclid(DAY_MS)
        * DAY_MS
}
