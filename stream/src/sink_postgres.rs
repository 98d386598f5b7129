//! Postgres: where the realtime view stands. Leases (fencing), committed offsets, snapshots and the
//! one-transaction flush that writes view deltas, too-late counts, offsets, staged archive files
//! and snapshots together.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use playsource_domain::aggregate::Counts;
use playsource_domain::{PerTopic, Topic, Ts};
use rustc_hash::FxHashMap;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use crate::archive_sink::StagedFile;
use crate::error::Error;
use crate::metrics as m;

/// Connects to Postgres; the error names the host and port, never a password.
pub async fn connect(url: &str) -> Result<PgPool, Error> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|cause| Error::Connect {
            target: redact(url),
            cause,
        })
}

/// `host:port/db` of a connection URL, without credentials.
fn redact(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

/// Takes the lease of a unit: a new epoch that fences every earlier owner. Refused when another
/// group feeds the realtime view (it took the view over): this member must stop.
pub async fn acquire_lease(
    pool: &PgPool,
    group: &str,
    partition: i32,
    owner: &str,
) -> Result<i64, Error> {
    let feeder = playsource_store::feeder::current(pool).await?;
    if let Some(feeder) = feeder.filter(|f| f != group) {
        return Err(Error::Store(playsource_store::Error::NotFeeder {
            feeder,
            group: group.to_owned(),
        }));
    }
    sqlx::query_scalar(
        "INSERT INTO stream_leases (group_id, partition, owner, epoch) VALUES ($1, $2, $3, 1)
         ON CONFLICT (group_id, partition) DO UPDATE
         SET epoch = stream_leases.epoch + 1, owner = EXCLUDED.owner, acquired_at = now()
         RETURNING epoch",
    )
    .bind(group)
    .bind(partition)
    .bind(owner)
    .fetch_one(pool)
    .await
    .map_err(Error::db("take a partition lease"))
}

/// The current lease epoch of a unit, if it was ever taken.
pub async fn lease_epoch(pool: &PgPool, group: &str, partition: i32) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT epoch FROM stream_leases WHERE group_id = $1 AND partition = $2")
        .bind(group)
        .bind(partition)
        .fetch_optional(pool)
        .await
        .map_err(Error::db("read a partition lease"))
}

/// The committed next offset of a topic-partition, if any.
pub async fn committed_offset(
    pool: &PgPool,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM stream_offsets WHERE group_id = $1 AND topic = $2 AND partition = $3",
    )
    .bind(group)
    .bind(topic)
    .bind(partition)
    .fetch_optional(pool)
    .await
    .map_err(Error::db("read the committed offsets"))
}

/// A stored snapshot: the offsets it is exact at and the encoded engine.
pub struct StoredSnapshot {
    pub impressions_offset: i64,
    pub plays_offset: i64,
    pub state: Vec<u8>,
}

/// The unit's snapshot, if one of this format and these topics exists.
pub async fn load_snapshot(
    pool: &PgPool,
    group: &str,
    partition: i32,
    topics: &PerTopic<String>,
    format: i32,
) -> Result<Option<StoredSnapshot>, Error> {
    let row: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT impressions_offset, plays_offset, state FROM stream_snapshots
         WHERE group_id = $1 AND partition = $2 AND impressions_topic = $3 AND plays_topic = $4
           AND format = $5",
    )
    .bind(group)
    .bind(partition)
    .bind(&topics[Topic::Impressions])
    .bind(&topics[Topic::Plays])
    .bind(format)
    .fetch_optional(pool)
    .await
    .map_err(Error::db("read a snapshot"))?;
    Ok(row.map(|(i, p, state)| StoredSnapshot {
        impressions_offset: i,
        plays_offset: p,
        state,
    }))
}

/// Staged archive files committed but not yet moved: (staged, final) relative paths.
pub async fn staged_files(
    pool: &PgPool,
    group: &str,
    partition: i32,
) -> Result<Vec<(String, String)>, Error> {
    sqlx::query_as(
        "SELECT staged_path, final_path FROM stream_archive_staged
         WHERE group_id = $1 AND partition = $2 ORDER BY staged_path",
    )
    .bind(group)
    .bind(partition)
    .fetch_all(pool)
    .await
    .map_err(Error::db("read the staged archive files"))
}

/// Forgets staged files once moved.
pub async fn forget_staged(
    pool: &PgPool,
    group: &str,
    partition: i32,
    staged: &[String],
) -> Result<(), Error> {
    if staged.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM stream_archive_staged
         WHERE group_id = $1 AND partition = $2 AND staged_path = ANY($3)",
    )
    .bind(group)
    .bind(partition)
    .bind(staged)
    .execute(pool)
    .await
    .map_err(Error::db("forget moved archive files"))?;
    Ok(())
}

/// Too-late events per (hour, topic, country, device).
pub type TooLate = FxHashMap<(Ts, String, String, String), i64>;

/// One topic-partition's progress to commit.
#[derive(Clone, Debug)]
pub struct OffsetRow {
    pub topic: String,
    pub next_offset: i64,
    pub high_water: Option<Ts>,
}

/// A snapshot to store.
pub struct SnapshotRow {
    pub impressions_offset: i64,
    pub plays_offset: i64,
    pub state: Vec<u8>,
}

/// What one unit commits in a flush.
pub struct UnitCommit {
    pub partition: i32,
    pub epoch: i64,
    pub counts: Counts,
    pub too_late: TooLate,
    pub offsets: Vec<OffsetRow>,
    pub snapshot: Option<SnapshotRow>,
    pub staged: Vec<StagedFile>,
}

/// Outcome of [`commit`]: the units refused because another owner took them.
#[derive(Debug, Default)]
pub struct CommitOutcome {
    pub fenced: Vec<i32>,
}

fn ts_utc(ts: Ts) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ts.0).unwrap_or_default()
}

/// Writes every unit's deltas, too-late counts, offsets, staged files and snapshots in ONE
/// transaction. Each unit's lease is locked first; if any is not ours anymore, nothing is
/// written: the fenced units are dropped from `units` and the rest is retried.
///
/// `retrying` says an earlier attempt of this same commit failed, possibly after Postgres
/// committed it (the connection lost during COMMIT): units whose offsets already stand where
/// this commit would put them are then left out, so no delta is added twice.
pub async fn commit(
    pool: &PgPool,
    group: &str,
    topics: &PerTopic<String>,
    units: &mut Vec<UnitCommit>,
    retrying: bool,
) -> Result<CommitOutcome, Error> {
    commit_to(pool, group, None, topics, units, retrying).await
}

/// [`commit`], also recording each topic-partition's archived event time in `archive_progress`
/// under `archive` (a key from [`playsource_store::progress::archive_key`]) when given. A group
/// that no longer feeds the realtime view (another took it over) is fenced on every unit.
pub async fn commit_to(
    pool: &PgPool,
    group: &str,
    archive: Option<&str>,
    topics: &PerTopic<String>,
    units: &mut Vec<UnitCommit>,
    retrying: bool,
) -> Result<CommitOutcome, Error> {
    let mut outcome = CommitOutcome::default();
    loop {
        if units.is_empty() {
            return Ok(outcome);
        }
        let started = Instant::now();
        let mut tx = pool
            .begin()
            .await
            .map_err(Error::db("begin a flush transaction"))?;
        // Shared lock on the feeder row, taken before the leases as a take-over takes them.
        let feeder: Option<String> = sqlx::query_scalar(
            "SELECT group_id FROM stream_feeder WHERE view = 'realtime' FOR SHARE",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::db("read which group feeds the realtime view"))?;
        let parts: Vec<i32> = units.iter().map(|u| u.partition).collect();
        let leases: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, epoch FROM stream_leases
             WHERE group_id = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
        )
        .bind(group)
        .bind(&parts)
        .fetch_all(&mut *tx)
        .await
        .map_err(Error::db("lock the partition leases"))?;
        let taken_over = feeder.as_deref().is_some_and(|f| f != group);
        if taken_over {
            tracing::warn!(
                feeder = feeder.as_deref().unwrap_or_default(),
                "another consumer group took the realtime view over; this flush is refused"
            );
        }
        let fenced: Vec<i32> = units
            .iter()
            .filter(|u| taken_over || !leases.contains(&(u.partition, u.epoch)))
            .map(|u| u.partition)
            .collect();
        if !fenced.is_empty() {
            tx.rollback()
                .await
                .map_err(Error::db("roll back a fenced flush"))?;
            for p in &fenced {
                tracing::warn!(
                    partition = p,
                    "another owner holds this partition; dropping it"
                );
                ::metrics::counter!(m::FENCED).increment(1);
            }
            units.retain(|u| !fenced.contains(&u.partition));
            outcome.fenced.extend(fenced);
            continue;
        }
        let applied = if retrying {
            already_applied(&mut tx, group, units).await?
        } else {
            Vec::new()
        };
        let todo: Vec<&UnitCommit> = units
            .iter()
            .filter(|u| !applied.contains(&u.partition))
            .collect();
        if !applied.is_empty() {
            tracing::info!(partitions = ?applied, "the failed commit had landed; not adding it again");
        }
        write_all(&mut tx, group, topics, &todo).await?;
        if let Some(archive) = archive {
            write_progress(&mut tx, group, archive, &todo).await?;
        }
        tx.commit()
            .await
            .map_err(Error::db("commit a flush transaction"))?;
        ::metrics::histogram!(m::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        ::metrics::counter!(m::FLUSHES).increment(1);
        return Ok(outcome);
    }
}

/// The units whose every offset row is already stored as this commit would store it: an earlier
/// attempt of the commit landed. (A unit whose offsets did not move has no deltas to add either.)
async fn already_applied(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    units: &[UnitCommit],
) -> Result<Vec<i32>, Error> {
    let parts: Vec<i32> = units.iter().map(|u| u.partition).collect();
    let stored: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM stream_offsets
         WHERE group_id = $1 AND partition = ANY($2)",
    )
    .bind(group)
    .bind(&parts)
    .fetch_all(&mut **tx)
    .await
    .map_err(Error::db("read the stored offsets"))?;
    Ok(units
        .iter()
        .filter(|u| {
            !u.offsets.is_empty()
                && u.offsets.iter().all(|o| {
                    stored
                        .iter()
                        .any(|(t, p, n)| *t == o.topic && *p == u.partition && *n == o.next_offset)
                })
        })
        .map(|u| u.partition)
        .collect())
}

async fn write_all(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    topics: &PerTopic<String>,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    let mut counts = Counts::default();
    let mut too_late = TooLate::default();
    for u in units {
        counts.merge(&u.counts);
        for (k, v) in &u.too_late {
            *too_late.entry(k.clone()).or_default() += v;
        }
    }
    write_hourly(tx, &counts).await?;
    write_video_daily(tx, &counts).await?;
    write_too_late(tx, &too_late).await?;
    write_offsets(tx, group, units).await?;
    write_staged(tx, group, units).await?;
    write_snapshots(tx, group, topics, units).await
}

async fn write_hourly(tx: &mut Transaction<'_, Postgres>, counts: &Counts) -> Result<(), Error> {
    let rows = counts.hourly_rows();
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
        country.push(r.country);
        device.push(r.device);
        sop.push(r.sop_row);
        sod.push(r.sod_row);
        genre.push(r.genre);
        nl.push(r.new_launch);
        plays.push(r.plays);
    }
    let hour_keys = hour.clone();
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
    .execute(&mut **tx)
    .await
    .map_err(Error::db("add to rt_hourly"))?;
    // A retraction can leave a cell at zero: drop it, so readers never see empty rows.
    let mut touched: Vec<DateTime<Utc>> = hour_keys;
    touched.dedup();
    sqlx::query("DELETE FROM rt_hourly WHERE hour = ANY($1::timestamptz[]) AND plays = 0")
        .bind(touched)
        .execute(&mut **tx)
        .await
        .map_err(Error::db("drop empty rt_hourly rows"))?;
    Ok(())
}

async fn write_video_daily(
    tx: &mut Transaction<'_, Postgres>,
    counts: &Counts,
) -> Result<(), Error> {
    let rows = counts.video_rows();
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut day: Vec<NaiveDate> = Vec::with_capacity(n);
    let mut video: Vec<String> = Vec::with_capacity(n);
    let mut sod: Vec<String> = Vec::with_capacity(n);
    let mut plays: Vec<i64> = Vec::with_capacity(n);
    for r in rows {
        day.push(r.day.to_date());
        video.push(r.video_id.0.to_string());
        sod.push(r.sod_row);
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
    .execute(&mut **tx)
    .await
    .map_err(Error::db("add to rt_video_daily"))?;
    sqlx::query(
        "DELETE FROM rt_video_daily WHERE video_id = ANY($1::text[]::numeric[]) AND plays = 0",
    )
    .bind(video_keys)
    .execute(&mut **tx)
    .await
    .map_err(Error::db("drop empty rt_video_daily rows"))?;
    Ok(())
}

async fn write_too_late(
    tx: &mut Transaction<'_, Postgres>,
    too_late: &TooLate,
) -> Result<(), Error> {
    if too_late.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = too_late.iter().collect();
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
    .execute(&mut **tx)
    .await
    .map_err(Error::db("add to rt_too_late"))?;
    Ok(())
}

async fn write_offsets(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    let mut topic = Vec::new();
    let mut part = Vec::new();
    let mut next = Vec::new();
    let mut hw: Vec<Option<DateTime<Utc>>> = Vec::new();
    for u in units {
        for o in &u.offsets {
            topic.push(o.topic.as_str());
            part.push(u.partition);
            next.push(o.next_offset);
            hw.push(o.high_water.map(ts_utc));
        }
    }
    if topic.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO stream_offsets (group_id, topic, partition, next_offset, high_water, updated_at)
         SELECT $1, t.topic, t.p, t.o, t.hw, now()
         FROM UNNEST($2::text[], $3::int4[], $4::int8[], $5::timestamptz[]) AS t(topic, p, o, hw)
         ON CONFLICT (group_id, topic, partition) DO UPDATE
         SET next_offset = EXCLUDED.next_offset,
             high_water = GREATEST(stream_offsets.high_water, EXCLUDED.high_water),
             updated_at = now()",
    )
    .bind(group)
    .bind(topic)
    .bind(part)
    .bind(next)
    .bind(hw)
    .execute(&mut **tx)
    .await
    .map_err(Error::db("store the stream offsets"))?;
    Ok(())
}

async fn write_progress(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    archive: &str,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    let mut topic = Vec::new();
    let mut part = Vec::new();
    let mut hw: Vec<Option<DateTime<Utc>>> = Vec::new();
    for u in units {
        for o in &u.offsets {
            topic.push(o.topic.as_str());
            part.push(u.partition);
            hw.push(o.high_water.map(ts_utc));
        }
    }
    if topic.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO archive_progress (archive, topic, partition, group_id, high_water, updated_at)
         SELECT $1, t.topic, t.p, $2, t.hw, now()
         FROM UNNEST($3::text[], $4::int4[], $5::timestamptz[]) AS t(topic, p, hw)
         ON CONFLICT (archive, topic, partition) DO UPDATE
         SET group_id = EXCLUDED.group_id,
             high_water = GREATEST(archive_progress.high_water, EXCLUDED.high_water),
             updated_at = now()",
    )
    .bind(archive)
    .bind(group)
    .bind(topic)
    .bind(part)
    .bind(hw)
    .execute(&mut **tx)
    .await
    .map_err(Error::db("record the archive's progress"))?;
    Ok(())
}

/// Records that the topic-partitions whose committed offsets reached their log end as seen at
/// wall-clock `at` were read to the end with everything flushed: `ends` holds (topic, partition,
/// high watermark fetched after `at`). Returns how many were marked.
pub async fn mark_caught_up(
    pool: &PgPool,
    group: &str,
    archive: &str,
    at: DateTime<Utc>,
    ends: &[(String, i32, i64)],
) -> Result<u64, Error> {
    if ends.is_empty() {
        return Ok(0);
    }
    let topic: Vec<&str> = ends.iter().map(|e| e.0.as_str()).collect();
    let part: Vec<i32> = ends.iter().map(|e| e.1).collect();
    let end: Vec<i64> = ends.iter().map(|e| e.2).collect();
    let done = sqlx::query(
        "INSERT INTO archive_progress (archive, topic, partition, group_id, high_water, caught_up_at, updated_at)
         SELECT $1, o.topic, o.partition, $2, o.high_water, $3, now()
         FROM stream_offsets o
         JOIN UNNEST($4::text[], $5::int4[], $6::int8[]) AS e(topic, p, log_end)
           ON o.topic = e.topic AND o.partition = e.p
         WHERE o.group_id = $2 AND o.next_offset >= e.log_end
         ON CONFLICT (archive, topic, partition) DO UPDATE
         SET caught_up_at = GREATEST(archive_progress.caught_up_at, EXCLUDED.caught_up_at),
             updated_at = now()",
    )
    .bind(archive)
    .bind(group)
    .bind(at)
    .bind(topic)
    .bind(part)
    .bind(end)
    .execute(pool)
    .await
    .map_err(Error::db("record that partitions were read to their end"))?;
    Ok(done.rows_affected())
}

/// The committed (topic, partition) rows of `group`.
pub async fn committed_partitions(pool: &PgPool, group: &str) -> Result<Vec<(String, i32)>, Error> {
    sqlx::query_as(
        "SELECT topic, partition FROM stream_offsets WHERE group_id = $1 ORDER BY topic, partition",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(Error::db("read the committed offsets"))
}

async fn write_staged(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    let mut part = Vec::new();
    let mut staged = Vec::new();
    let mut fin = Vec::new();
    let mut rows = Vec::new();
    for u in units {
        for s in &u.staged {
            part.push(u.partition);
            staged.push(s.staged.as_str());
            fin.push(s.final_path.as_str());
            rows.push(i64::try_from(s.rows).unwrap_or(i64::MAX));
        }
    }
    if part.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO stream_archive_staged (group_id, partition, staged_path, final_path, rows)
         SELECT $1, t.p, t.s, t.f, t.r FROM UNNEST($2::int4[], $3::text[], $4::text[], $5::int8[])
           AS t(p, s, f, r)
         ON CONFLICT (group_id, partition, staged_path) DO UPDATE SET final_path = EXCLUDED.final_path",
    )
    .bind(group)
    .bind(part)
    .bind(staged)
    .bind(fin)
    .bind(rows)
    .execute(&mut **tx)
    .await
    .map_err(Error::db("list the staged archive files"))?;
    Ok(())
}

async fn write_snapshots(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    topics: &PerTopic<String>,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    for u in units {
        let Some(s) = &u.snapshot else { continue };
        sqlx::query(
            "INSERT INTO stream_snapshots (group_id, partition, impressions_topic, plays_topic,
                 impressions_offset, plays_offset, format, taken_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8)
             ON CONFLICT (group_id, partition) DO UPDATE SET
                 impressions_topic = EXCLUDED.impressions_topic, plays_topic = EXCLUDED.plays_topic,
                 impressions_offset = EXCLUDED.impressions_offset, plays_offset = EXCLUDED.plays_offset,
                 format = EXCLUDED.format, taken_at = now(), state = EXCLUDED.state",
        )
        .bind(group)
        .bind(u.partition)
        .bind(&topics[Topic::Impressions])
        .bind(&topics[Topic::Plays])
        .bind(s.impressions_offset)
        .bind(s.plays_offset)
        .bind(crate::snapshot::FORMAT)
        .bind(&s.state)
        .execute(&mut **tx)
        .await
        .map_err(Error::db("store a snapshot"))?;
        ::metrics::counter!(m::SNAPSHOTS).increment(1);
        ::metrics::gauge!(m::SNAPSHOT_BYTES, "partition" => u.partition.to_string())
            .set(s.state.len() as f64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x?sslmode=off"),
            "db:5432/x"
        );
        assert_eq!(redact("postgres://db/x"), "db/x");
    }
}
