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
//! what it answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::Ts;
use sqlx::{PgConnection, PgPool, Row};

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

pub(crate) const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

fn ts_to_dt(ts: Ts) -> DateTime<Utc> {
    ts.to_datetime().unwrap_or_default()
}

fn day_to_date(ts: Ts) -> NaiveDate {
    ts.day().to_date()
}

/// Reads the freshness, and how many days of `[first, last]` are batch-complete.
async fn freshness_and_complete(
    conn: &mut PgConnection,
    days: Option<(NaiveDate, NaiveDate)>,
) -> Result<(Freshness, i64), sqlx::Error> {
    // No days: NULL bounds count nothing.
    let (first, last) = days.unzip();
    let row = sqlx::query(
        "SELECT (SELECT max(day) FROM batch_days) AS through, \
                (SELECT max(high_water) FROM stream_offsets) AS high_water, \
                (SELECT count(*) FROM batch_days) AS n, \
                (SELECT coalesce(max(generation), 0) FROM batch_days) AS g, \
                (SELECT count(*) FROM batch_days WHERE day >= $1 AND day <= $2) AS complete",
    )
    .bind(first)
    .bind(last)
    .fetch_one(&mut *conn)
    .await?;
    let freshness = freshness_of(&row)?;
    Ok((freshness, row.try_get("complete")?))
}

/// Reads the freshness alone (one statement).
pub async fn freshness(pool: &PgPool) -> Result<Freshness, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(freshness_and_complete(&mut conn, None).await?.0)
}

/// The freshness columns of one snapshot (`through`, `high_water`, `n`, `g`), as a `FROM` item.
pub(crate) const FRESHNESS_FROM: &str = "(SELECT (SELECT max(day) FROM batch_days) AS through, \
        (SELECT max(high_water) FROM stream_offsets) AS high_water, \
        (SELECT count(*) FROM batch_days) AS n, \
        (SELECT coalesce(max(generation), 0) FROM batch_days) AS g) f";

/// Reads the freshness columns of [`FRESHNESS_FROM`] from a row.
pub(crate) fn freshness_of(row: &sqlx::postgres::PgRow) -> Result<Freshness, sqlx::Error> {
    let through: Option<NaiveDate> = row.try_get("through")?;
    let high_water: Option<DateTime<Utc>> = row.try_get("high_water")?;
    let source = Source {
        batch_complete_through: through.map(|d| d.format("%Y-%m-%d").to_string()),
        realtime_high_water: high_water.map(|t| Ts(t.timestamp_millis()).to_string()),
    };
    Ok(Freshness {
        version: (row.try_get("n")?, row.try_get("g")?),
        through,
        tail: crate::series_json::answer_tail(&source),
        source,
    })
}

/// The view column a series groups by.
pub(crate) fn row_column(view: View) -> &'static str {
    match view {
        View::SourceOfPlay => "sop_row",
        View::SourceOfDiscovery => "sod_row",
    }
}

/// Builds the merged series statement for a query; returns the SQL (filters become `$5..`).
///
/// One statement, so one snapshot: the freshness, the complete days and the rows of both views
/// are read together. The range is split per UTC day (`generate_series`); each day reads either
/// `batch_hourly` (complete) or `rt_hourly` (not complete) by an index range scan on `hour`, so
/// no row of the other view is read and thrown away.
fn series_sql(q: &SeriesQuery) -> String {
    let row_col = row_column(q.view);
    let bucket = match q.granularity {
        Granularity::Hour => "date_trunc('hour', v.hour, 'UTC')",
        Granularity::Day => "date_trunc('day', v.hour, 'UTC')",
    };
    let mut filters = String::new();
    let mut n = 4;
    let f = &q.filters;
    for (present, cond) in [
        (f.country.is_some(), "country"),
        (f.device.is_some(), "device"),
        (f.genre.is_some(), "genre"),
        (f.new_launch.is_some(), "new_launch"),
        (f.play_row.is_some(), "sop_row"),
    ] {
        if present {
            n += 1;
            let _ = write!(filters, " AND t.{cond} = ${n}");
        }
    }
    let part = |table: &str, complete: &str| {
        format!(
            "SELECT t.hour, t.{row_col} AS row_type, t.plays FROM {table} t \
              WHERE {complete}d.complete AND t.hour >= greatest($1, d.t0) AND t.hour < least($2, d.t1){filters}"
        )
    };
    format!(
        "WITH d AS ( \
           SELECT x.day, x.day::timestamp AT TIME ZONE 'UTC' AS t0, \
                  (x.day + 1)::timestamp AT TIME ZONE 'UTC' AS t1, \
                  EXISTS (SELECT 1 FROM batch_days b WHERE b.day = x.day) AS complete \
             FROM (SELECT generate_series($3::date::timestamp, $4::date::timestamp, interval '1 day')::date AS day) x \
         ), s AS ( \
           SELECT {bucket} AS bucket, v.row_type, sum(v.plays)::bigint AS plays \
             FROM d CROSS JOIN LATERAL ({batch} UNION ALL {rt}) v \
            GROUP BY 1, 2 HAVING sum(v.plays) <> 0 \
         ) \
         SELECT f.*, (SELECT count(*) FROM d WHERE d.complete) AS complete, \
                s.bucket, s.row_type, s.plays \
           FROM {FRESHNESS_FROM} LEFT JOIN s ON true",
        batch = part("batch_hourly", ""),
        rt = part("rt_hourly", "NOT "),
    )
}

/// Computes a merged series (SoP or SoD) in one snapshot (one statement).
pub async fn series(pool: &PgPool, q: &SeriesQuery) -> Result<SeriesAnswer, sqlx::Error> {
    let days = (q.hi > q.lo).then(|| (day_to_date(q.lo), day_to_date(Ts(q.hi.0 - 1))));
    let day_count = days.map_or(0, |(a, b)| (b - a).num_days() + 1);
    // No buckets: an empty day list (first > last) reads nothing but the freshness.
    let (first, last) = days.unwrap_or((
        NaiveDate::default().succ_opt().unwrap_or_default(),
        NaiveDate::default(),
    ));

    let sql = series_sql(q);
    let f = &q.filters;
    let mut query = sqlx::query(&sql)
        .bind(ts_to_dt(q.lo))
        .bind(ts_to_dt(q.hi))
        .bind(first)
        .bind(last);
    if let Some(v) = &f.country {
        query = query.bind(v);
    }
    if let Some(v) = &f.device {
        query = query.bind(v);
    }
    if let Some(v) = &f.genre {
        query = query.bind(v);
    }
    if let Some(v) = f.new_launch {
        query = query.bind(v);
    }
    if let Some(v) = &f.play_row {
        query = query.bind(v);
    }
    let rows = query.fetch_all(pool).await?;
    let first_row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    let freshness = freshness_of(first_row)?;
    let complete: i64 = first_row.try_get("complete")?;
    let mut per_bucket: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for row in &rows {
        let Some(bucket) = row.try_get::<Option<DateTime<Utc>>, _>("bucket")? else {
            continue;
        };
        per_bucket
            .entry(bucket.timestamp_millis())
            .or_default()
            .push((row.try_get("row_type")?, row.try_get("plays")?));
    }
    Ok(SeriesAnswer {
        series: buckets(q, |t| per_bucket.remove(&t).unwrap_or_default()),
        freshness,
        all_batch: complete >= day_count,
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

    let mut tx = pool.begin_with(BEGIN_SNAPSHOT).await?;
    let (freshness, complete) = freshness_and_complete(&mut tx, days).await?;
    let mut pairs = Vec::new();
    if days.is_some() {
        let rows = sqlx::query(
            "SELECT sod_row, sum(plays)::bigint AS plays FROM ( \
               SELECT b.sod_row, b.plays FROM batch_video_daily b \
                WHERE b.video_id = $1::text::numeric AND b.day >= $2 AND b.day < $3 \
                  AND EXISTS (SELECT 1 FROM batch_days d WHERE d.day = b.day) \
               UNION ALL \
               SELECT r.sod_row, r.plays FROM rt_video_daily r \
                WHERE r.video_id = $1::text::numeric AND r.day >= $2 AND r.day < $3 \
                  AND NOT EXISTS (SELECT 1 FROM batch_days d WHERE d.day = r.day) \
             ) v GROUP BY 1 HAVING sum(plays) <> 0",
        )
        .bind(q.video_id.to_string())
        .bind(first)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            pairs.push((row.try_get("sod_row")?, row.try_get("plays")?));
        }
    }
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
