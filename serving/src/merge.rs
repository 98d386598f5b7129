//! The Lambda merge (contract §4, §7): for every bucket, the batch view where the bucket's UTC
//! day is batch-complete (`batch_days`), else the realtime view.
//!
//! Each answer is read in one `REPEATABLE READ, READ ONLY` transaction, so the set of complete
//! days, the rows of both views and the freshness all come from one snapshot: a batch publish
//! running at the same moment is seen either entirely or not at all. The range conditions are on
//! the leading primary-key columns (`hour`, or `video_id, day`), so both views are read by index
//! range scans.

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
}

impl Freshness {
    /// True when the UTC day of `ts` is not after the latest batch-complete day: only then can
    /// an answer reaching `ts` be entirely batch-complete (and so be in the cache).
    pub fn covers(&self, ts: Ts) -> bool {
        self.through.is_some_and(|t| ts.day().to_date() <= t)
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

const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

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
    let through: Option<NaiveDate> = row.try_get("through")?;
    let high_water: Option<DateTime<Utc>> = row.try_get("high_water")?;
    let freshness = Freshness {
        version: (row.try_get("n")?, row.try_get("g")?),
        through,
        source: Source {
            batch_complete_through: through.map(|d| d.format("%Y-%m-%d").to_string()),
            realtime_high_water: high_water.map(|t| Ts(t.timestamp_millis()).to_string()),
        },
    };
    Ok((freshness, row.try_get("complete")?))
}

/// Reads the freshness alone (one statement).
pub async fn freshness(pool: &PgPool) -> Result<Freshness, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(freshness_and_complete(&mut conn, None).await?.0)
}

/// Builds the merged series statement for a query; returns the SQL (filters become `$3..`).
fn series_sql(q: &SeriesQuery) -> String {
    let row_col = match q.view {
        View::SourceOfPlay => "sop_row",
        View::SourceOfDiscovery => "sod_row",
    };
    let bucket = match q.granularity {
        Granularity::Hour => "date_trunc('hour', hour, 'UTC')",
        Granularity::Day => "date_trunc('day', hour, 'UTC')",
    };
    let mut filters = String::new();
    let mut n = 2;
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
            let _ = write!(filters, " AND {cond} = ${n}");
        }
    }
    format!(
        "SELECT {bucket} AS bucket, {row_col} AS row_type, sum(plays)::bigint AS plays FROM ( \
           SELECT b.hour, b.{row_col}, b.plays FROM batch_hourly b \
            WHERE b.hour >= $1 AND b.hour < $2{filters} \
              AND EXISTS (SELECT 1 FROM batch_days d WHERE d.day = (b.hour AT TIME ZONE 'UTC')::date) \
           UNION ALL \
           SELECT r.hour, r.{row_col}, r.plays FROM rt_hourly r \
            WHERE r.hour >= $1 AND r.hour < $2{filters} \
              AND NOT EXISTS (SELECT 1 FROM batch_days d WHERE d.day = (r.hour AT TIME ZONE 'UTC')::date) \
         ) v GROUP BY 1, 2 HAVING sum(plays) <> 0"
    )
}

/// Computes a merged series (SoP or SoD) in one snapshot.
pub async fn series(pool: &PgPool, q: &SeriesQuery) -> Result<SeriesAnswer, sqlx::Error> {
    let step = q.granularity.step_ms();
    let days = (q.hi > q.lo).then(|| (day_to_date(q.lo), day_to_date(Ts(q.hi.0 - 1))));
    let day_count = days.map_or(0, |(a, b)| (b - a).num_days() + 1);

    let mut tx = pool.begin_with(BEGIN_SNAPSHOT).await?;
    let (freshness, complete) = freshness_and_complete(&mut tx, days).await?;
    let mut per_bucket: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    if days.is_some() {
        let sql = series_sql(q);
        let f = &q.filters;
        let mut query = sqlx::query(&sql).bind(ts_to_dt(q.lo)).bind(ts_to_dt(q.hi));
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
        let rows = query.fetch_all(&mut *tx).await?;
        for row in rows {
            let bucket: DateTime<Utc> = row.try_get("bucket")?;
            per_bucket
                .entry(bucket.timestamp_millis())
                .or_default()
                .push((row.try_get("row_type")?, row.try_get("plays")?));
        }
    }
    tx.commit().await?;

    let mut series = Vec::with_capacity(q.bucket_count().max(0) as usize);
    let mut t = q.lo.0;
    while t < q.hi.0 {
        let (plays, rows) = rows_with_shares(per_bucket.remove(&t).unwrap_or_default());
        series.push(Bucket {
            bucket: fmt_second(Ts(t)),
            plays,
            rows,
        });
        t += step;
    }
    Ok(SeriesAnswer {
        series,
        freshness,
        all_batch: complete >= day_count,
    })
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
