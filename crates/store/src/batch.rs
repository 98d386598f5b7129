//! The batch view's tables: `batch_hourly`, `batch_video_daily`, `batch_days` (complete days and
//! their generations), a sharded day's parts (`batch_shard_*`, migration 0010), and pruning the
//! realtime rows of days the batch view has long completed. The statements only: the batch layer
//! puts them in transactions and decides what to publish.

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::Day;
use sqlx::{PgConnection, PgPool};

use crate::realtime::ts_utc;
use crate::Error;

/// Rows per INSERT statement.
const CHUNK_ROWS: usize = 10_000;
/// First key of the advisory lock that serialises publishes of the same day.
const LOCK_CLASS: i32 = 0x5053_4243; // "PSBC"

/// A shard's part of a day: `(shard_count, shard_index)`; rows go to the `batch_shard_*` tables.
pub type PartKey = Option<(i32, i32)>;

/// Midnight UTC at the start of `day` and of the day after.
fn bounds(day: Day) -> (DateTime<Utc>, DateTime<Utc>) {
    (ts_utc(day.start()), ts_utc(day.plus(1).start()))
}

/// Takes the advisory lock that serialises publishes (and shard parts) of `day`, until the end
/// of the transaction.
pub async fn lock_day(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(day.0)
        .execute(conn)
        .await
        .map_err(Error::query("taking the day's lock"))?;
    Ok(())
}

/// Deletes the day's rows from `batch_hourly`.
pub async fn clear_hourly(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    let (from, to) = bounds(day);
    sqlx::query("DELETE FROM batch_hourly WHERE hour >= $1 AND hour < $2")
        .bind(from)
        .bind(to)
        .execute(conn)
        .await
        .map_err(Error::query("deleting the old batch_hourly rows"))?;
    Ok(())
}

/// Deletes the day's rows from `batch_video_daily`.
pub async fn clear_video_daily(conn: &mut PgConnection, day: Day) -> Result<(), Error> {
    sqlx::query("DELETE FROM batch_video_daily WHERE day = $1")
        .bind(day.to_date())
        .execute(conn)
        .await
        .map_err(Error::query("deleting the old batch_video_daily rows"))?;
    Ok(())
}

/// Inserts hourly rows into `batch_hourly`, or into `batch_shard_hourly` for a shard's part,
/// with array inserts of a few thousand rows each.
pub async fn insert_hourly(
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
            hour.push(ts_utc(r.hour));
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
            q = q.bind(day.to_date()).bind(count).bind(index);
        }
        q.execute(&mut *conn)
            .await
            .map_err(Error::query("inserting hourly rows"))?;
    }
    Ok(())
}

/// Inserts per-video rows into `batch_video_daily`, or into `batch_shard_video_daily`.
pub async fn insert_video_daily(
    conn: &mut PgConnection,
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
        let days: Vec<NaiveDate> = chunk.iter().map(|r| r.day.to_date()).collect();
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
            .map_err(Error::query("inserting per-video rows"))?;
    }
    Ok(())
}

/// Marks `day` complete in `batch_days` with a new generation (from the `batch_generation`
/// sequence) and its totals; returns the generation.
pub async fn mark_complete(
    conn: &mut PgConnection,
    day: Day,
    plays: i64,
    impressions: i64,
    too_late_plays: i64,
) -> Result<i64, Error> {
    sqlx::query_scalar(
        "INSERT INTO batch_days (day, generation, completed_at, plays, impressions, too_late_plays) \
         VALUES ($1, nextval('batch_generation'), now(), $2, $3, $4) \
         ON CONFLICT (day) DO UPDATE SET generation = EXCLUDED.generation, \
             completed_at = EXCLUDED.completed_at, plays = EXCLUDED.plays, \
             impressions = EXCLUDED.impressions, too_late_plays = EXCLUDED.too_late_plays \
         RETURNING generation",
    )
    .bind(day.to_date())
    .bind(plays)
    .bind(impressions)
    .bind(too_late_plays)
    .fetch_one(conn)
    .await
    .map_err(Error::query("marking the day complete in batch_days"))
}

/// The generation of `day` if it is batch-complete.
pub async fn generation(pool: &PgPool, day: Day) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT generation FROM batch_days WHERE day = $1")
        .bind(day.to_date())
        .fetch_optional(pool)
        .await
        .map_err(Error::query("reading batch_days"))
}

/// One shard's part of a day, as recorded in `batch_shard_parts`.
#[derive(Clone, Copy, Debug)]
pub struct Part<'a> {
    pub day: Day,
    pub shard_count: i32,
    pub shard_index: i32,
    /// The fingerprint of the day's listing the shard read.
    pub inputs: &'a str,
    pub plays: i64,
    pub impressions: i64,
    /// Where the shard staged its enriched plays.
    pub enriched_dir: &'a str,
}

/// Deletes the shard's previous part of the day; returns its enriched plays folder, if any.
pub async fn delete_part(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
    shard_index: i32,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar(
        "DELETE FROM batch_shard_parts WHERE day = $1 AND shard_count = $2 AND shard_index = $3 \
         RETURNING enriched_dir",
    )
    .bind(day.to_date())
    .bind(shard_count)
    .bind(shard_index)
    .fetch_optional(conn)
    .await
    .map_err(Error::query("replacing the shard's previous part"))
}

/// Records a shard's part (its rows go in with [`insert_hourly`] and [`insert_video_daily`]).
pub async fn insert_part(conn: &mut PgConnection, part: &Part<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO batch_shard_parts (day, shard_count, shard_index, inputs, plays, impressions, enriched_dir) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(part.day.to_date())
    .bind(part.shard_count)
    .bind(part.shard_index)
    .bind(part.inputs)
    .bind(part.plays)
    .bind(part.impressions)
    .bind(part.enriched_dir)
    .execute(conn)
    .await
    .map_err(Error::query("recording the shard's part"))?;
    Ok(())
}

/// The recorded parts of `day` split in `shard_count` that read `inputs`: (shard index,
/// enriched plays folder), in index order.
pub async fn parts_of(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
    inputs: &str,
) -> Result<Vec<(i32, String)>, Error> {
    sqlx::query_as(
        "SELECT shard_index, enriched_dir FROM batch_shard_parts \
         WHERE day = $1 AND shard_count = $2 AND inputs = $3 ORDER BY shard_index",
    )
    .bind(day.to_date())
    .bind(shard_count)
    .bind(inputs)
    .fetch_all(conn)
    .await
    .map_err(Error::query("counting the parts recorded"))
}

/// The (plays, impressions) of the day's parts, summed.
pub async fn sum_parts(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
) -> Result<(i64, i64), Error> {
    sqlx::query_as(
        "SELECT COALESCE(SUM(plays), 0)::int8, COALESCE(SUM(impressions), 0)::int8 \
         FROM batch_shard_parts WHERE day = $1 AND shard_count = $2",
    )
    .bind(day.to_date())
    .bind(shard_count)
    .fetch_one(conn)
    .await
    .map_err(Error::query("summing the parts"))
}

/// Sums the day's parts' hourly rows into `batch_hourly`.
pub async fn sum_parts_into_hourly(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO batch_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
         SELECT hour, country, device, sop_row, sod_row, genre, new_launch, SUM(plays)::int8 \
         FROM batch_shard_hourly WHERE day = $1 AND shard_count = $2 \
         GROUP BY hour, country, device, sop_row, sod_row, genre, new_launch",
    )
    .bind(day.to_date())
    .bind(shard_count)
    .execute(conn)
    .await
    .map_err(Error::query("summing the parts into batch_hourly"))?;
    Ok(())
}

/// Sums the day's parts' per-video rows into `batch_video_daily`.
pub async fn sum_parts_into_video_daily(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO batch_video_daily (day, video_id, sod_row, plays) \
         SELECT day, video_id, sod_row, SUM(plays)::int8 \
         FROM batch_shard_video_daily WHERE day = $1 AND shard_count = $2 \
         GROUP BY day, video_id, sod_row",
    )
    .bind(day.to_date())
    .bind(shard_count)
    .execute(conn)
    .await
    .map_err(Error::query("summing the parts into batch_video_daily"))?;
    Ok(())
}

/// Deletes the day's parts (their rows go with them).
pub async fn delete_parts(
    conn: &mut PgConnection,
    day: Day,
    shard_count: i32,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM batch_shard_parts WHERE day = $1 AND shard_count = $2")
        .bind(day.to_date())
        .bind(shard_count)
        .execute(conn)
        .await
        .map_err(Error::query("removing the published parts"))?;
    Ok(())
}

/// A table of the realtime view keyed by hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealtimeHourly {
    /// `rt_hourly`.
    Plays,
    /// `rt_too_late`.
    TooLate,
}

impl RealtimeHourly {
    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            RealtimeHourly::Plays => "rt_hourly",
            RealtimeHourly::TooLate => "rt_too_late",
        }
    }
}

/// Deletes the rows of `table` in days batch-complete (`batch_days.completed_at`) for more than
/// `older_than_days` days; returns how many. Hours are compared as ranges so the primary keys'
/// indexes serve the delete.
pub async fn prune_realtime_hourly(
    conn: &mut PgConnection,
    table: RealtimeHourly,
    older_than_days: i32,
) -> Result<u64, Error> {
    let sql = format!(
        "DELETE FROM {} r USING batch_days b \
         WHERE b.completed_at < now() - make_interval(days => $1) \
           AND r.hour >= (b.day::timestamp AT TIME ZONE 'UTC') \
           AND r.hour < ((b.day + 1)::timestamp AT TIME ZONE 'UTC')",
        table.table()
    );
    Ok(sqlx::query(&sql)
        .bind(older_than_days)
        .execute(conn)
        .await
        .map_err(Error::query("pruning the realtime view"))?
        .rows_affected())
}

/// Deletes the `rt_video_daily` rows of days batch-complete for more than `older_than_days`
/// days; returns how many.
pub async fn prune_realtime_video_daily(
    conn: &mut PgConnection,
    older_than_days: i32,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "DELETE FROM rt_video_daily r USING batch_days b \
         WHERE b.completed_at < now() - make_interval(days => $1) AND r.day = b.day",
    )
    .bind(older_than_days)
    .execute(conn)
    .await
    .map_err(Error::query("pruning the realtime view"))?
    .rows_affected())
}
