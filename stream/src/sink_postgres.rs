//! Postgres: where the realtime view stands. Leases (fencing), committed offsets, checkpoint manifests and the
//! one-transaction flush that writes view deltas, too-late counts, offsets, staged archive files
//! and checkpoint manifests together. The statements are in `playsource_store::{leases, realtime, progress,
//! feeder}`; this module decides what goes in a flush, fences stale owners and counts metrics.

use std::time::Instant;

use chrono::{DateTime, Utc};
use playsource_domain::aggregate::Counts;
use playsource_domain::{PerTopic, Topic, Ts};
use playsource_store::leases::{self, Offset, Staged};
use playsource_store::{feeder, progress, realtime};
use rustc_hash::FxHashMap;
use sqlx::{PgConnection, PgPool};

use crate::archive_sink::StagedFile;
use crate::error::Error;
use crate::metrics as m;

pub use playsource_store::leases::StoredCheckpoint;

/// Takes the lease of a unit: a new epoch that fences every earlier owner. Refused when another
/// group feeds the realtime view (it took the view over): this member must stop.
pub async fn acquire_lease(
    pool: &PgPool,
    group: &str,
    partition: i32,
    owner: &str,
) -> Result<i64, Error> {
    let feeder = feeder::current(pool).await?;
    if let Some(feeder) = feeder.filter(|f| f != group) {
        return Err(Error::Store(playsource_store::Error::NotFeeder {
            feeder,
            group: group.to_owned(),
        }));
    }
    leases::acquire(pool, group, partition, owner)
        .await
        .map_err(Error::db("take a partition lease"))
}

/// The current lease epoch of a unit, if it was ever taken.
pub async fn lease_epoch(pool: &PgPool, group: &str, partition: i32) -> Result<Option<i64>, Error> {
    leases::epoch(pool, group, partition)
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
    leases::committed_offset(pool, group, topic, partition)
        .await
        .map_err(Error::db("read the committed offsets"))
}

/// The unit's checkpoint manifest, if one of this format and these topics exists.
pub async fn load_checkpoint(
    pool: &PgPool,
    group: &str,
    partition: i32,
    topics: &PerTopic<String>,
    format: i32,
) -> Result<Option<StoredCheckpoint>, Error> {
    leases::load_checkpoint(
        pool,
        group,
        partition,
        [&topics[Topic::Impressions], &topics[Topic::Plays]],
        format,
    )
    .await
    .map_err(Error::db("read a checkpoint manifest"))
}

/// Staged archive files committed but not yet moved: (staged, final) relative paths.
pub async fn staged_files(
    pool: &PgPool,
    group: &str,
    partition: i32,
) -> Result<Vec<(String, String)>, Error> {
    leases::staged_files(pool, group, partition)
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
    leases::forget_staged(pool, group, partition, staged)
        .await
        .map_err(Error::db("forget moved archive files"))
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

/// A checkpoint manifest to store.
pub type CheckpointRow = StoredCheckpoint;

/// What one unit commits in a flush.
pub struct UnitCommit {
    pub partition: i32,
    pub epoch: i64,
    pub counts: Counts,
    pub too_late: TooLate,
    pub offsets: Vec<OffsetRow>,
    pub checkpoint: Option<CheckpointRow>,
    pub staged: Vec<StagedFile>,
}

/// Outcome of [`commit`]: the units refused because another owner took them.
#[derive(Debug, Default)]
pub struct CommitOutcome {
    pub fenced: Vec<i32>,
}

/// Writes every unit's deltas, too-late counts, offsets, staged files and checkpoint manifests in ONE
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
        let feeder = feeder::lock_shared(&mut tx)
            .await
            .map_err(Error::db("read which group feeds the realtime view"))?;
        let parts: Vec<i32> = units.iter().map(|u| u.partition).collect();
        let leases = leases::lock(&mut tx, group, &parts)
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
        write_all(&mut tx, group, archive, topics, &todo).await?;
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
    conn: &mut PgConnection,
    group: &str,
    units: &[UnitCommit],
) -> Result<Vec<i32>, Error> {
    let parts: Vec<i32> = units.iter().map(|u| u.partition).collect();
    let stored = leases::stored_offsets(conn, group, &parts)
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

/// Everything of `units` in the caller's transaction: summed view deltas and too-late counts,
/// offsets (and the archive's progress), staged files, checkpoint manifests.
async fn write_all(
    conn: &mut PgConnection,
    group: &str,
    archive: Option<&str>,
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
    realtime::add_hourly(conn, &counts.hourly_rows())
        .await
        .map_err(Error::db("add to rt_hourly"))?;
    realtime::add_video_daily(conn, &counts.video_rows())
        .await
        .map_err(Error::db("add to rt_video_daily"))?;
    realtime::add_too_late(conn, &too_late)
        .await
        .map_err(Error::db("add to rt_too_late"))?;
    let offsets: Vec<Offset<'_>> = units
        .iter()
        .flat_map(|u| {
            u.offsets.iter().map(|o| Offset {
                topic: &o.topic,
                partition: u.partition,
                next_offset: o.next_offset,
                high_water: o.high_water,
            })
        })
        .collect();
    leases::store_offsets(conn, group, &offsets)
        .await
        .map_err(Error::db("store the stream offsets"))?;
    let staged: Vec<Staged<'_>> = units
        .iter()
        .flat_map(|u| {
            u.staged.iter().map(|s| Staged {
                partition: u.partition,
                staged_path: &s.staged,
                final_path: &s.final_path,
                rows: i64::try_from(s.rows).unwrap_or(i64::MAX),
            })
        })
        .collect();
    leases::stage_files(conn, group, &staged)
        .await
        .map_err(Error::db("list the staged archive files"))?;
    write_checkpoints(conn, group, topics, units).await?;
    if let Some(archive) = archive {
        progress::record(conn, group, archive, &offsets)
            .await
            .map_err(Error::db("record the archive's progress"))?;
    }
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
    progress::mark_caught_up(pool, group, archive, at, ends)
        .await
        .map_err(Error::db("record that partitions were read to their end"))
}

/// The committed (topic, partition) rows of `group`.
pub async fn committed_partitions(pool: &PgPool, group: &str) -> Result<Vec<(String, i32)>, Error> {
    leases::committed_partitions(pool, group)
        .await
        .map_err(Error::db("read the committed offsets"))
}

async fn write_checkpoints(
    conn: &mut PgConnection,
    group: &str,
    topics: &PerTopic<String>,
    units: &[&UnitCommit],
) -> Result<(), Error> {
    for u in units {
        let Some(c) = &u.checkpoint else { continue };
        leases::store_checkpoint(
            conn,
            group,
            u.partition,
            [&topics[Topic::Impressions], &topics[Topic::Plays]],
            crate::checkpoint::FORMAT,
            c,
        )
        .await
        .map_err(Error::db("store a checkpoint manifest"))?;
    }
    Ok(())
}
