//! Publishing a day to the batch view, in one transaction: the day's old rows go, the new ones
//! come in with array inserts (UNNEST, a few thousand rows per statement, never row by row), and
//! `batch_days` marks the day complete with a new generation. A failure anywhere rolls it all
//! back, leaving the previous view of the day as it was.

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Day, Ts};
use sqlx::{PgConnection, PgPool};

use crate::error::Error;

/// Rows per INSERT statement.
const CHUNK_ROWS: usize = 10_000;
/// First key of the advisory lock that serialises publishes of the same day.
const LOCK_CLASS: i32 = 0x5053_4243; // "PSBC"

/// What a publish wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The day's new generation (from the `batch_generation` sequence).
    pub generation: i64,
    /// Plays the stream found too late on this day (from `rt_too_late`).
    pub too_late_plays: i64,
}

/// The rows of a day to publish.
#[derive(Clone, Copy, Debug)]
pub struct DayRows<'a> {
    pub day: Day,
    pub hourly: &'a [HourlyRow],
    pub video_daily: &'a [VideoDayRow],
    /// Counted plays.
    pub plays: i64,
    /// Impressions of the day.
    pub impressions: i64,
}

/// Midnight UTC of `day` as a Postgres `timestamptz`.
pub(crate) fn utc(ts: Ts) -> DateTime<Utc> {
    ts.to_datetime().unwrap_or_default()
}

/// The calendar date of `day`.
pub(crate) fn date(day: Day) -> NaiveDate {
    day.to_date()
}

/// Replaces `rows.day` in the batch view and marks it complete; `plays_topic` names the topic
/// whose too-late events are summed into `batch_days.too_late_plays`.
pub async fn publish_day(
    pool: &PgPool,
    rows: &DayRows<'_>,
    plays_topic: &str,
) -> Result<Published, Error> {
    let day = rows.day;
    let mut tx = pool
        .begin()
        .await
        .map_err(Error::db(what(day, "begin a transaction")))?;
    lock_day(&mut tx, day).await?;
    clear_day(&mut tx, day).await?;
    insert_hourly(&mut tx, day, None, rows.hourly).await?;
    insert_video_daily(&mut tx, day, None, rows.video_daily).await?;
    let published = mark_complete(&mut tx, day, rows.plays, rows.impressions, plays_topic).await?;
    tx.commit().await.map_err(Error::db(what(day, "commit")))?;
    Ok(published)
}

pub(crate) fn what(day: Day, step: &str) -> String {
    format!("{step} while publishing the batch view of {day}")
}

/// Takes the advisory lock that serialises publishes (and shard parts) of `day`.
pub(crate) async fn lock_day(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(day.0)
        .execute(conn)
        .await
        .map_err(Error::db(what(day, "take the day's lock")))?;
    Ok(())
}

/// Deletes the day's rows from the batch view.
pub(crate) async fn clear_day(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    let (from, to) = (utc(day.start()), utc(day.plus(1).start()));
    sqlx::query("DELETE FROM batch_hourly WHERE hour >= $1 AND hour < $2")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await
        .map_err(Error::db(what(day, "delete the old batch_hourly rows")))?;
    sqlx::query("DELETE FROM batch_video_daily WHERE day = $1")
        .bind(date(day))
        .execute(&mut *conn)
        .await
        .map_err(Error::db(what(
            day,
            "delete the old batch_video_daily rows",
        )))?;
    Ok(())
}

/// A shard's part of a day: `(shard_count, shard_index)`; rows go to the `batch_shard_*` tables.
pub(crate) type PartKey = Option<(i32, i32)>;

/// Inserts hourly rows into `batch_hourly`, or into `batch_shard_hourly` for a shard's part.
pub(crate) async fn insert_hourly(
    conn: &mut PgConnection,
    day: Day,
    part: PartKey,
    rows: &[HourlyRow],
) -> Result<(), Error> {
    let sql = match part {
        None => "INSERT INTO batch_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::bool[], $8::int8[])",
        Some(_) => "INSERT INTO batch_shard_hourly (day, shard_count, shard_index, hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
             SELECT $9, $10, $11, t.* FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::bool[], $8::int8[]) AS t",
    };
    for chunk in rows.chunks(CHUNK_ROWS) {
        let mut hour = Vec::with_capacity(chunk.len());
        let mut country = Vec::with_capacity(chunk.len());
        let mut device = Vec::with_capacity(chunk.len());
        let mut sop = Vec::with_capacity(chunk.len());
        let mut sod = Vec::with_capacity(chunk.len());
        let mut genre = Vec::with_capacity(chunk.len());
        let mut new_launch = Vec::with_capacity(chunk.len());
        let mut plays = Vec::with_capacity(chunk.len());
        for r in chunk {
            hour.push(utc(r.hour));
            country.push(r.country.as_str());
            device.push(r.device.as_str());
            sop.push(r.sop_row.as_str());
            sod.push(r.sod_row.as_str());
            genre.push(r.genre.as_str());
            new_launch.push(r.new_launch);
            plays.push(r.plays);
        }
        let mut q = sqlx::query(sql)
            .bind(hour)
            .bind(country)
            .bind(device)
            .bind(sop)
            .bind(sod)
            .bind(genre)
            .bind(new_launch)
            .bind(plays);
        if let Some((count, index)) = part {
            q = q.bind(date(day)).bind(count).bind(index);
        }
        q.execute(&mut *conn)
            .await
            .map_err(Error::db(what(day, "insert hourly rows")))?;
    }
    Ok(())
}

/// Inserts per-video rows into `batch_video_daily`, or into `batch_shard_video_daily`.
pub(crate) async fn insert_video_daily(
    conn: &mut PgConnection,
    day: Day,
    part: PartKey,
    rows: &[VideoDayRow],
) -> Result<(), Error> {
    let sql = match part {
        None => "INSERT INTO batch_video_daily (day, video_id, sod_row, plays) \
             SELECT d, v::numeric, s, p FROM UNNEST($1::date[], $2::text[], $3::text[], $4::int8[]) AS t(d, v, s, p)",
        Some(_) => "INSERT INTO batch_shard_video_daily (shard_count, shard_index, day, video_id, sod_row, plays) \
             SELECT $5, $6, d, v::numeric, s, p FROM UNNEST($1::date[], $2::text[], $3::text[], $4::int8[]) AS t(d, v, s, p)",
    };
    for chunk in rows.chunks(CHUNK_ROWS) {
        let days: Vec<NaiveDate> = chunk.iter().map(|r| date(r.day)).collect();
        let videos: Vec<String> = chunk.iter().map(|r| r.video_id.0.to_string()).collect();
        let sod: Vec<&str> = chunk.iter().map(|r| r.sod_row.as_str()).collect();
        let plays: Vec<i64> = chunk.iter().map(|r| r.plays).collect();
        let mut q = sqlx::query(sql)
            .bind(days)
            .bind(videos)
            .bind(sod)
            .bind(plays);
        if let Some((count, index)) = part {
            q = q.bind(count).bind(index);
        }
        q.execute(&mut *conn)
            .await
            .map_err(Error::db(what(day, "insert per-video rows")))?;
    }
    Ok(())
}

/// Sums the too-late plays of the day and marks it complete in `batch_days` with a new generation.
pub(crate) async fn mark_complete(
    conn: &mut PgConnection,
    day: Day,
    plays: i64,
    impressions: i64,
    plays_topic: &str,
) -> Result<Published, Error> {
    let (from, to) = (utc(day.start()), utc(day.plus(1).start()));
    let too_late_plays: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(events), 0)::int8 FROM rt_too_late WHERE topic = $1 AND hour >= $2 AND hour < $3",
    )
    .bind(plays_topic)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::db(what(day, "sum the too-late plays")))?;

    let generation: i64 = sqlx::query_scalar(
        "INSERT INTO batch_days (day, generation, completed_at, plays, impressions, too_late_plays) \
         VALUES ($1, nextval('batch_generation'), now(), $2, $3, $4) \
         ON CONFLICT (day) DO UPDATE SET generation = EXCLUDED.generation, \
             completed_at = EXCLUDED.completed_at, plays = EXCLUDED.plays, \
             impressions = EXCLUDED.impressions, too_late_plays = EXCLUDED.too_late_plays \
         RETURNING generation",
    )
    .bind(date(day))
    .bind(plays)
    .bind(impressions)
    .bind(too_late_plays)
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::db(what(day, "mark the day complete in batch_days")))?;
    Ok(Published {
        generation,
        too_late_plays,
    })
}
