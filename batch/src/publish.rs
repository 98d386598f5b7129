//! Publishing a day to the batch view, in one transaction: the day's old rows go, the new ones
//! come in with array inserts (UNNEST, a few thousand rows per statement, never row by row), and
//! `batch_days` marks the day complete with a new generation. A failure anywhere rolls it all
//! back, leaving the previous view of the day as it was.

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Day, Ts};
use sqlx::PgPool;

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
    let what = |step: &str| format!("{step} while publishing the batch view of {day}");
    let (from, to) = (utc(day.start()), utc(day.plus(1).start()));
    let mut tx = pool
        .begin()
        .await
        .map_err(Error::db(what("begin a transaction")))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(day.0)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("take the day's lock")))?;
    sqlx::query("DELETE FROM batch_hourly WHERE hour >= $1 AND hour < $2")
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("delete the old batch_hourly rows")))?;
    sqlx::query("DELETE FROM batch_video_daily WHERE day = $1")
        .bind(date(day))
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("delete the old batch_video_daily rows")))?;

    for chunk in rows.hourly.chunks(CHUNK_ROWS) {
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
        sqlx::query(
            "INSERT INTO batch_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::bool[], $8::int8[])",
        )
        .bind(hour)
        .bind(country)
        .bind(device)
        .bind(sop)
        .bind(sod)
        .bind(genre)
        .bind(new_launch)
        .bind(plays)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("insert batch_hourly rows")))?;
    }

    for chunk in rows.video_daily.chunks(CHUNK_ROWS) {
        let days: Vec<NaiveDate> = chunk.iter().map(|r| date(r.day)).collect();
        let videos: Vec<String> = chunk.iter().map(|r| r.video_id.0.to_string()).collect();
        let sod: Vec<&str> = chunk.iter().map(|r| r.sod_row.as_str()).collect();
        let plays: Vec<i64> = chunk.iter().map(|r| r.plays).collect();
        sqlx::query(
            "INSERT INTO batch_video_daily (day, video_id, sod_row, plays) \
             SELECT d, v::numeric, s, p FROM UNNEST($1::date[], $2::text[], $3::text[], $4::int8[]) AS t(d, v, s, p)",
        )
        .bind(days)
        .bind(videos)
        .bind(sod)
        .bind(plays)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("insert batch_video_daily rows")))?;
    }

    let too_late_plays: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(events), 0)::int8 FROM rt_too_late WHERE topic = $1 AND hour >= $2 AND hour < $3",
    )
    .bind(plays_topic)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::db(what("sum the too-late plays")))?;

    let generation: i64 = sqlx::query_scalar(
        "INSERT INTO batch_days (day, generation, completed_at, plays, impressions, too_late_plays) \
         VALUES ($1, nextval('batch_generation'), now(), $2, $3, $4) \
         ON CONFLICT (day) DO UPDATE SET generation = EXCLUDED.generation, \
             completed_at = EXCLUDED.completed_at, plays = EXCLUDED.plays, \
             impressions = EXCLUDED.impressions, too_late_plays = EXCLUDED.too_late_plays \
         RETURNING generation",
    )
    .bind(date(day))
    .bind(rows.plays)
    .bind(rows.impressions)
    .bind(too_late_plays)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::db(what("mark the day complete in batch_days")))?;

    tx.commit().await.map_err(Error::db(what("commit")))?;
    Ok(Published {
        generation,
        too_late_plays,
    })
}
