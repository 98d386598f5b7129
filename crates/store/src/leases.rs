//! Where the stream stands, per consumer group: partition leases and their fencing epochs
//! (`stream_leases`), committed offsets (`stream_offsets`), checkpoint manifests
//! (`stream_checkpoints`) and archive files staged but not yet moved (`stream_archive_staged`).
//! The statements only: which to run in a flush, and what a result means, is the stream's.

use chrono::{DateTime, Utc};
use playsource_domain::Ts;
use sqlx::{PgConnection, PgPool};

use crate::realtime::ts_utc;
use crate::Error;

/// Takes the lease of `partition` for `owner`: a new epoch (1 for the first), which fences every
/// earlier owner. Returns the epoch.
pub async fn acquire(
    pool: &PgPool,
    group: &str,
    partition: i32,
    owner: &str,
) -> Result<i64, Error> {
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
    .map_err(Error::query("taking a partition lease"))
}

/// The current lease epoch of a partition, if it was ever taken.
pub async fn epoch(pool: &PgPool, group: &str, partition: i32) -> Result<Option<i64>, Error> {
    sqlx::query_scalar("SELECT epoch FROM stream_leases WHERE group_id = $1 AND partition = $2")
        .bind(group)
        .bind(partition)
        .fetch_optional(pool)
        .await
        .map_err(Error::query("reading a partition lease"))
}

/// Locks the leases of `partitions` (in partition order, so flushes never deadlock) until the
/// end of the transaction; returns (partition, epoch) of those that exist.
pub async fn lock(
    conn: &mut PgConnection,
    group: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, Error> {
    sqlx::query_as(
        "SELECT partition, epoch FROM stream_leases
         WHERE group_id = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE",
    )
    .bind(group)
    .bind(partitions)
    .fetch_all(conn)
    .await
    .map_err(Error::query("locking the partition leases"))
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
    .map_err(Error::query("reading the committed offsets"))
}

/// The committed (topic, partition) rows of `group`, in that order.
pub async fn committed_partitions(pool: &PgPool, group: &str) -> Result<Vec<(String, i32)>, Error> {
    sqlx::query_as(
        "SELECT topic, partition FROM stream_offsets WHERE group_id = $1 ORDER BY topic, partition",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading the committed offsets"))
}

/// Each committed (topic, partition, next offset) of `group` and the seconds since it was last
/// written, by the database's clock.
pub async fn committed_ages(
    pool: &PgPool,
    group: &str,
) -> Result<Vec<(String, i32, i64, f64)>, Error> {
    sqlx::query_as(
        "SELECT topic, partition, next_offset,
                EXTRACT(EPOCH FROM (now() - updated_at))::float8
         FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading the committed offsets"))
}

/// The stored (topic, partition, next offset) rows of `partitions`, inside a transaction.
pub async fn stored_offsets(
    conn: &mut PgConnection,
    group: &str,
    partitions: &[i32],
) -> Result<Vec<(String, i32, i64)>, Error> {
    sqlx::query_as(
        "SELECT topic, partition, next_offset FROM stream_offsets
         WHERE group_id = $1 AND partition = ANY($2)",
    )
    .bind(group)
    .bind(partitions)
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading the stored offsets"))
}

/// One topic-partition's progress to commit.
#[derive(Clone, Copy, Debug)]
pub struct Offset<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub next_offset: i64,
    /// Greatest event time read (kept as the greatest ever stored).
    pub high_water: Option<Ts>,
}

/// Stores committed offsets (the high water only ever grows).
pub async fn store_offsets(
    conn: &mut PgConnection,
    group: &str,
    offsets: &[Offset<'_>],
) -> Result<(), Error> {
    if offsets.is_empty() {
        return Ok(());
    }
    let topic: Vec<&str> = offsets.iter().map(|o| o.topic).collect();
    let part: Vec<i32> = offsets.iter().map(|o| o.partition).collect();
    let next: Vec<i64> = offsets.iter().map(|o| o.next_offset).collect();
    let hw: Vec<Option<DateTime<Utc>>> = offsets.iter().map(|o| o.high_water.map(ts_utc)).collect();
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
    .execute(conn)
    .await
    .map_err(Error::query("storing the stream offsets"))?;
    Ok(())
}

/// A unit's checkpoint manifest: the offsets it is exact at, the epoch that wrote it, and its
/// layer files in the archive's store (oldest, the full one, first) with their sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub impressions_offset: i64,
    pub plays_offset: i64,
    pub epoch: i64,
    pub layers: Vec<String>,
    pub layer_bytes: Vec<i64>,
}

/// The partition's checkpoint manifest, if one of this `format` and these (impressions, plays)
/// topics exists.
pub async fn load_checkpoint(
    pool: &PgPool,
    group: &str,
    partition: i32,
    topics: [&str; 2],
    format: i32,
) -> Result<Option<StoredCheckpoint>, Error> {
    /// (impressions_offset, plays_offset, epoch, layers, layer_bytes)
    type Row = (i64, i64, i64, Vec<String>, Vec<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT impressions_offset, plays_offset, epoch, layers, layer_bytes FROM stream_checkpoints
         WHERE group_id = $1 AND partition = $2 AND impressions_topic = $3 AND plays_topic = $4
           AND format = $5",
    )
    .bind(group)
    .bind(partition)
    .bind(topics[0])
    .bind(topics[1])
    .bind(format)
    .fetch_optional(pool)
    .await
    .map_err(Error::query("reading a checkpoint manifest"))?;
    Ok(row.map(
        |(impressions_offset, plays_offset, epoch, layers, layer_bytes)| StoredCheckpoint {
            impressions_offset,
            plays_offset,
            epoch,
            layers,
            layer_bytes,
        },
    ))
}

/// Stores (replaces) the partition's checkpoint manifest of the (impressions, plays) `topics`.
pub async fn store_checkpoint(
    conn: &mut PgConnection,
    group: &str,
    partition: i32,
    topics: [&str; 2],
    format: i32,
    checkpoint: &StoredCheckpoint,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO stream_checkpoints (group_id, partition, impressions_topic, plays_topic,
             impressions_offset, plays_offset, format, epoch, layers, layer_bytes, taken_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
         ON CONFLICT (group_id, partition) DO UPDATE SET
             impressions_topic = EXCLUDED.impressions_topic, plays_topic = EXCLUDED.plays_topic,
             impressions_offset = EXCLUDED.impressions_offset, plays_offset = EXCLUDED.plays_offset,
             format = EXCLUDED.format, epoch = EXCLUDED.epoch, layers = EXCLUDED.layers,
             layer_bytes = EXCLUDED.layer_bytes, taken_at = now()",
    )
    .bind(group)
    .bind(partition)
    .bind(topics[0])
    .bind(topics[1])
    .bind(checkpoint.impressions_offset)
    .bind(checkpoint.plays_offset)
    .bind(format)
    .bind(checkpoint.epoch)
    .bind(&checkpoint.layers)
    .bind(&checkpoint.layer_bytes)
    .execute(conn)
    .await
    .map_err(Error::query("storing a checkpoint manifest"))?;
    Ok(())
}

/// An archive file written under a staging name, to be moved to its final name.
#[derive(Clone, Copy, Debug)]
pub struct Staged<'a> {
    pub partition: i32,
    pub staged_path: &'a str,
    pub final_path: &'a str,
    pub rows: i64,
}

/// Records staged archive files (moved after the transaction commits).
pub async fn stage_files(
    conn: &mut PgConnection,
    group: &str,
    files: &[Staged<'_>],
) -> Result<(), Error> {
    if files.is_empty() {
        return Ok(());
    }
    let part: Vec<i32> = files.iter().map(|f| f.partition).collect();
    let staged: Vec<&str> = files.iter().map(|f| f.staged_path).collect();
    let fin: Vec<&str> = files.iter().map(|f| f.final_path).collect();
    let rows: Vec<i64> = files.iter().map(|f| f.rows).collect();
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
    .execute(conn)
    .await
    .map_err(Error::query("listing the staged archive files"))?;
    Ok(())
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
    .map_err(Error::query("reading the staged archive files"))
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
    .map_err(Error::query("forgetting moved archive files"))?;
    Ok(())
}
