//! The realtime view's tables (`rt_hourly`, `rt_video_daily`, `rt_too_late`): the stream adds its
//! deltas to them inside its flush transaction; `audit` and `batch` read the too-late counts.
//! Reads of the view's play counts, shared with the batch view, are in [`crate::views`].

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::Ts;
use sqlx::{PgConnection, PgPool};

use crate::Error;

/// A `Ts` as a Postgres `timestamptz`.
pub(crate) fn ts_utc(ts: Ts) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ts.0).unwrap_or_default()
}

/// The key of a too-late count: (hour, topic, country, device).
pub type TooLateKey = (Ts, String, String, String);

/// Adds `rows` (sorted by hour) to `rt_hourly`, then drops the cells of their hours a retraction
/// left at zero, so readers never see empty rows.
pub async fn add_hourly(conn: &mut PgConnection, rows: &[HourlyRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let (mut hour, mut country, mut device) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut sop, mut sod, mut genre) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut nl, mut plays) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for r in rows {
        hour.push(ts_utc(r.hour));
        country.push(r.country.as_str());
        device.push(r.device.as_str());
        sop.push(r.sop_row.as_str());
        sod.push(r.sod_row.as_str());
        genre.push(r.genre.as_str());
        nl.push(r.new_launch);
        plays.push(r.plays);
    }
    let mut touched: Vec<DateTime<Utc>> = hour.clone();
    touched.dedup();
    sqlx::query(
        "INSERT INTO rt_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::bool[], $8::int8[])
         ON CONFLICT (hour, country, device, sop_row, sod_row, genre, new_launch)
         DO UPDATE SET plays = rt_hourly.plays + EXCLUDED.plays",
    )
    .bind(hour)
    .bind(country)
    .bind(device)
    .bind(sop)
    .bind(sod)
    .bind(genre)
    .bind(nl)
    .bind(plays)
    .execute(&mut *conn)
    .await
    .map_err(Error::query("adding to rt_hourly"))?;
    sqlx::query("DELETE FROM rt_hourly WHERE hour = ANY($1::timestamptz[]) AND plays = 0")
        .bind(touched)
        .execute(&mut *conn)
        .await
        .map_err(Error::query("dropping empty rt_hourly rows"))?;
    Ok(())
}

/// Adds `rows` to `rt_video_daily`, then drops the cells of their videos left at zero.
pub async fn add_video_daily(conn: &mut PgConnection, rows: &[VideoDayRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut day: Vec<NaiveDate> = Vec::with_capacity(n);
    let mut video: Vec<String> = Vec::with_capacity(n);
    let mut sod: Vec<&str> = Vec::with_capacity(n);
    let mut plays: Vec<i64> = Vec::with_capacity(n);
    for r in rows {
        day.push(r.day.to_date());
        video.push(r.video_id.0.to_string());
        sod.push(r.sod_row.as_str());
        plays.push(r.plays);
    }
    let mut video_keys = video.clone();
    video_keys.sort();
    video_keys.dedup();
    sqlx::query(
        "INSERT INTO rt_video_daily (day, video_id, sod_row, plays)
         SELECT * FROM UNNEST($1::date[], $2::text[]::numeric[], $3::text[], $4::int8[])
         ON CONFLICT (video_id, day, sod_row) DO UPDATE SET plays = rt_video_daily.plays + EXCLUDED.plays",
    )
    .bind(day)
    .bind(video)
    .bind(sod)
    .bind(plays)
    .execute(&mut *conn)
    .await
    .map_err(Error::query("adding to rt_video_daily"))?;
    sqlx::query(
        "DELETE FROM rt_video_daily WHERE video_id = ANY($1::text[]::numeric[]) AND plays = 0",
    )
    .bind(video_keys)
    .execute(&mut *conn)
    .await
    .map_err(Error::query("dropping empty rt_video_daily rows"))?;
    Ok(())
}

/// Adds too-late event counts to `rt_too_late` (in key order, so concurrent flushes lock rows in
/// the same order).
pub async fn add_too_late<'a>(
    conn: &mut PgConnection,
    counts: impl IntoIterator<Item = (&'a TooLateKey, &'a i64)>,
) -> Result<(), Error> {
    let mut rows: Vec<_> = counts.into_iter().collect();
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort();
    let hour: Vec<DateTime<Utc>> = rows.iter().map(|((h, ..), _)| ts_utc(*h)).collect();
    let topic: Vec<&str> = rows.iter().map(|((_, t, ..), _)| t.as_str()).collect();
    let country: Vec<&str> = rows.iter().map(|((_, _, c, _), _)| c.as_str()).collect();
    let device: Vec<&str> = rows.iter().map(|((.., d), _)| d.as_str()).collect();
    let events: Vec<i64> = rows.iter().map(|(_, n)| **n).collect();
    sqlx::query(
        "INSERT INTO rt_too_late (hour, topic, country, device, events)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::int8[])
         ON CONFLICT (hour, topic, country, device) DO UPDATE SET events = rt_too_late.events + EXCLUDED.events",
    )
    .bind(hour)
    .bind(topic)
    .bind(country)
    .bind(device)
    .bind(events)
    .execute(&mut *conn)
    .await
    .map_err(Error::query("adding to rt_too_late"))?;
    Ok(())
}

/// One row of `rt_too_late`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TooLateRow {
    pub hour: DateTime<Utc>,
    pub topic: String,
    pub country: String,
    pub device: String,
    pub events: i64,
}

/// The too-late counts of `topics` in the hours `[from, to)`.
pub async fn too_late_between(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    topics: [&str; 2],
) -> Result<Vec<TooLateRow>, Error> {
    sqlx::query_as(
        "SELECT hour, topic, country, device, events FROM rt_too_late WHERE hour >= $1 AND hour < $2 AND topic IN ($3, $4)",
    )
    .bind(from)
    .bind(to)
    .bind(topics[0])
    .bind(topics[1])
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading rt_too_late"))
}

/// The too-late events of `topic` in the hours `[from, to)`, summed.
pub async fn too_late_sum(
    conn: &mut PgConnection,
    topic: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(events), 0)::int8 FROM rt_too_late WHERE topic = $1 AND hour >= $2 AND hour < $3",
    )
    .bind(topic)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
    .map_err(Error::query("summing the too-late plays"))
}
