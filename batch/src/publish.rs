//! Publishing a day to the batch view, in one transaction: the day's old rows go, the new ones
//! come in with array inserts (UNNEST, a few thousand rows per statement, never row by row), and
//! `batch_days` marks the day complete with a new generation. A failure anywhere rolls it all
//! back, leaving the previous view of the day as it was. The statements are in
//! `playsource_store::batch`.

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Day, Ts};
use playsource_store::batch::{self as store, PartKey};
use sqlx::{PgConnection, PgPool};

use crate::error::Error;

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
    store::lock_day(conn, day)
        .await
        .map_err(Error::db(what(day, "take the day's lock")))
}

/// Deletes the day's rows from the batch view.
pub(crate) async fn clear_day(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    store::clear_hourly(conn, day)
        .await
        .map_err(Error::db(what(day, "delete the old batch_hourly rows")))?;
    store::clear_video_daily(conn, day)
        .await
        .map_err(Error::db(what(
            day,
            "delete the old batch_video_daily rows",
        )))
}

/// Inserts hourly rows into `batch_hourly`, or into `batch_shard_hourly` for a shard's part.
pub(crate) async fn insert_hourly(
    conn: &mut PgConnection,
    day: Day,
    part: PartKey,
    rows: &[HourlyRow],
) -> Result<(), Error> {
    store::insert_hourly(conn, day, part, rows)
        .await
        .map_err(Error::db(what(day, "insert hourly rows")))
}

/// Inserts per-video rows into `batch_video_daily`, or into `batch_shard_video_daily`.
pub(crate) async fn insert_video_daily(
    conn: &mut PgConnection,
    day: Day,
    part: PartKey,
    rows: &[VideoDayRow],
) -> Result<(), Error> {
    store::insert_video_daily(conn, part, rows)
        .await
        .map_err(Error::db(what(day, "insert per-video rows")))
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
    let too_late_plays = playsource_store::realtime::too_late_sum(conn, plays_topic, from, to)
        .await
        .map_err(Error::db(what(day, "sum the too-late plays")))?;
    let generation = store::mark_complete(conn, day, plays, impressions, too_late_plays)
        .await
        .map_err(Error::db(what(day, "mark the day complete in batch_days")))?;
    Ok(Published {
        generation,
        too_late_plays,
    })
}
