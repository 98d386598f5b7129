//! The Lambda merge (docs/reference.md §4, §7): for every bucket, the batch view where the bucket's UTC
//! day is batch-complete (`batch_days`), else the realtime view.
//!
//! Each answer is read in one snapshot (one statement for a series, one `REPEATABLE READ, READ
//! ONLY` transaction for a video), so the set of complete days, the rows of both views and the
//! freshness all come from one state: a batch publish running at the same moment is seen either
//! entirely or not at all. The range conditions are on the leading primary-key columns (`hour`,
//! or `video_id, day`), so both views are read by index range scans; a series reads each day
//! from one view only.
//!
//! This is the reference path: the in-memory replica ([`crate::replica`]) must answer exactly
//! what it answers. The SQL is in `playsource_store::views`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::Ts;
use playsource_store::views;
use sqlx::PgPool;

use crate::error::from_store;
use crate::model::{rows_with_shares, Bucket, Source, VideoDiscovery};
use crate::params::{fmt_second, Granularity, SeriesQuery, VideoQuery, View};

/// Identifies one state of the published batch days: (number of complete days, greatest
/// generation). A publish, a re-publish or a removal changes it.
pub type BatchVersion = (i64, i64);

/// The freshness of both views, with the batch version it was read at.
#[derive(Clone, Debug)]
pub struct Freshness {
    /// The batch version.
    pub version: BatchVersion,
    /// The latest batch-complete day.
    pub through: Option<NaiveDate>,
    /// The `source` object of the answers.
    pub source: Source,
    /// The end of a series answer with this `source`: the object and the closing brace, rendered
    /// once per freshness reading rather than per answer.
    pub tail: axum::body::Bytes,
}

impl Freshness {
    /// True when the UTC day of `ts` is not after the latest batch-complete day: only then can
    /// an answer reaching `ts` be entirely batch-complete (and so be in the cache).
    pub fn covers(&self, ts: Ts) -> bool {
        self.through.is_some_and(|t| ts.day().to_date() <= t)
    }

    /// True when every day of the non-empty range `[lo, hi)` is at most the latest
    /// batch-complete day: the answer may be in the cache (the plan's first question).
    pub fn covers_range(&self, lo: Ts, hi: Ts) -> bool {
        hi > lo && self.covers(Ts(hi.0 - 1))
    }
}

/// A computed series.
#[derive(Debug)]
pub struct SeriesAnswer {
    /// Every bucket of the range.
    pub series: Vec<Bucket>,
    /// Freshness read in the same snapshot.
    pub freshness: Freshness,
    /// True when every day the range touches is batch-complete (the answer may be cached).
    pub all_batch: bool,
}

fn ts_to_dt(ts: Ts) -> DateTime<Utc> {
    ts.to_datetime().unwrap_or_default()
}

fn day_to_date(ts: Ts) -> NaiveDate {
    ts.day().to_date()
}

/// Reads the freshness alone (one statement).
pub async fn freshness(pool: &PgPool) -> Result<Freshness, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let (f, _) = views::freshness(&mut conn, None)
        .await
        .map_err(from_store)?;
    Ok(freshness_of(&f))
}

/// The answers' [`Freshness`] of the store's reading.
pub(crate) fn freshness_of(f: &views::Freshness) -> Freshness {
    let source = Source {
        batch_complete_through: f.through.map(|d| d.format("%Y-%m-%d").to_string()),
        realtime_high_water: f.high_water.map(|t| Ts(t.timestamp_millis()).to_string()),
    };
    Freshness {
        version: (f.days, f.generation),
        through: f.through,
        tail: crate::series_json::answer_tail(&source),
        source,
    }
}

/// Computes a merged series (SoP or SoD) in one snapshot (one statement; the SQL is
/// `playsource_store::views::merged_series`).
pub async fn series(pool: &PgPool, q: &SeriesQuery) -> Result<SeriesAnswer, sqlx::Error> {
    let days = (q.hi > q.lo).then(|| (day_to_date(q.lo), day_to_date(Ts(q.hi.0 - 1))));
    let day_count = days.map_or(0, |(a, b)| (b - a).num_days() + 1);
    // No buckets: an empty day list (first > last) reads nothing but the freshness.
    let (first, last) = days.unwrap_or((
        NaiveDate::default().succ_opt().unwrap_or_default(),
        NaiveDate::default(),
    ));
    let f = &q.filters;
    let read = views::merged_series(
        pool,
        &views::SeriesQuery {
            lo: ts_to_dt(q.lo),
            hi: ts_to_dt(q.hi),
            first,
            last,
            row: match q.view {
                View::SourceOfPlay => views::RowColumn::SourceOfPlay,
                View::SourceOfDiscovery => views::RowColumn::SourceOfDiscovery,
            },
            bucket: match q.granularity {
                Granularity::Hour => views::Bucket::Hour,
                Granularity::Day => views::Bucket::Day,
            },
            country: f.country.as_deref(),
            device: f.device.as_deref(),
            genre: f.genre.as_deref(),
            new_launch: f.new_launch,
            sop_row: f.play_row.as_deref(),
        },
    )
    .await
    .map_err(from_store)?;
    let mut per_bucket: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for (bucket, row, plays) in read.rows {
        per_bucket
            .entry(bucket.timestamp_millis())
            .or_default()
            .push((row, plays));
    }
    Ok(SeriesAnswer {
        series: buckets(q, |t| per_bucket.remove(&t).unwrap_or_default()),
        freshness: freshness_of(&read.freshness),
        all_batch: read.complete >= day_count,
    })
}

/// Every bucket of the range, ascending, with the `(row_type, plays)` pairs `pairs_at` gives for
/// each bucket start (ms).
pub fn buckets(
    q: &SeriesQuery,
    mut pairs_at: impl FnMut(i64) -> Vec<(String, i64)>,
) -> Vec<Bucket> {
    bucket_starts(q)
        .map(|t| {
            let (plays, rows) = rows_with_shares(pairs_at(t));
            Bucket {
                bucket: fmt_second(Ts(t)),
                plays,
                rows,
            }
        })
        .collect()
}

/// The start (UTC ms) of every bucket of `q`, ascending.
pub fn bucket_starts(q: &SeriesQuery) -> impl Iterator<Item = i64> {
    let step = q.granularity.step_ms();
    let hi = q.hi.0;
    std::iter::successors(Some(q.lo.0), move |t| Some(t + step)).take_while(move |t| *t < hi)
}

/// A computed per-video discovery answer.
#[derive(Debug)]
pub struct VideoAnswer {
    /// The body.
    pub body: VideoDiscovery,
    /// The batch version it was read at.
    pub version: BatchVersion,
    /// True when every day of the range is batch-complete (the answer may be cached).
    pub all_batch: bool,
}

/// Computes a video's Source of Discovery over the days of `[lo, hi)`, merged, in one snapshot.
pub async fn video(pool: &PgPool, q: &VideoQuery) -> Result<VideoAnswer, sqlx::Error> {
    let first = day_to_date(q.lo);
    let end = day_to_date(q.hi);
    let days = (q.hi > q.lo).then(|| (first, day_to_date(Ts(q.hi.0 - 1))));
    let day_count = days.map_or(0, |(a, b)| (b - a).num_days() + 1);

    let mut tx = views::begin_snapshot(pool).await.map_err(from_store)?;
    let (freshness, complete) = views::freshness(&mut tx, days).await.map_err(from_store)?;
    let freshness = freshness_of(&freshness);
    let pairs = match days {
        Some(_) => views::merged_video(&mut tx, q.video_id, first, end)
            .await
            .map_err(from_store)?,
        None => Vec::new(),
    };
    tx.commit().await?;
    let (plays, rows) = rows_with_shares(pairs);
    Ok(VideoAnswer {
        body: VideoDiscovery {
            video_id: q.video_id,
            plays,
            rows,
        },
        version: freshness.version,
        all_batch: complete >= day_count,
    })
}
