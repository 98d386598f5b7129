//! How far the stream has archived each topic-partition (`archive_progress`), and the batch
//! layer's completeness gate on it (docs/reference.md §4): day D is complete when every partition of both
//! topics was archived past D + 1 day + allowed lateness in event time, or was read to the end of
//! its log at a wall-clock time past that point. An archive with no recorded progress (written by
//! another tool) counts as complete.

use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::leases::Offset;
use crate::realtime::ts_utc;
use crate::Error;

/// The key an archive's progress is recorded under: an object-store URL as given (without a
/// trailing `/`), a local folder made absolute (symlinks resolved when it exists), so the stream
/// and batch agree however the path was spelled.
pub fn archive_key(archive: &Path) -> String {
    let s = archive.to_string_lossy();
    if s.contains("://") {
        return s.trim_end_matches('/').to_owned();
    }
    let abs = std::fs::canonicalize(archive)
        .or_else(|_| std::path::absolute(archive))
        .unwrap_or_else(|_| archive.to_path_buf());
    let s = abs.to_string_lossy();
    let t = s.trim_end_matches('/');
    if t.is_empty() {
        "/".to_owned()
    } else {
        t.to_owned()
    }
}

/// A topic-partition the archive is not complete for yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    pub topic: String,
    pub partition: i32,
    /// Greatest event time archived (None: no event yet).
    pub high_water: Option<DateTime<Utc>>,
    /// Last wall-clock time it was read to the end of its log with everything flushed.
    pub caught_up_at: Option<DateTime<Utc>>,
}

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |d: Option<DateTime<Utc>>| {
            d.map_or_else(
                || "never".to_owned(),
                |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
        };
        write!(
            f,
            "{}/{} (event time archived up to {}, last read to the end at {})",
            self.topic,
            self.partition,
            t(self.high_water),
            t(self.caught_up_at)
        )
    }
}

/// (topic, partition, high_water, caught_up_at).
type ProgressRow = (String, i32, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The partitions of `topics` in `archive` (a key from [`archive_key`]) neither archived past
/// `point` in event time nor read to their end after it, in topic and partition order. Empty
/// when complete, including when no stream ever recorded progress for that archive.
pub async fn behind(
    pool: &PgPool,
    archive: &str,
    topics: &[&str],
    point: DateTime<Utc>,
) -> Result<Vec<Behind>, Error> {
    let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    let rows: Vec<ProgressRow> = sqlx::query_as(
        "SELECT topic, partition, high_water, caught_up_at FROM archive_progress
         WHERE archive = $1 AND topic = ANY($2)
           AND NOT (COALESCE(high_water > $3, false) OR COALESCE(caught_up_at > $3, false))
         ORDER BY topic, partition",
    )
    .bind(archive)
    .bind(&topics)
    .bind(point)
    .fetch_all(pool)
    .await
    .map_err(Error::query("reading how far the stream has archived"))?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition, high_water, caught_up_at)| Behind {
            topic,
            partition,
            high_water,
            caught_up_at,
        })
        .collect())
}

/// Records each topic-partition's archived event time (`offsets`' high water) for `archive`,
/// inside the stream's flush transaction (the high water only ever grows).
pub async fn record(
    conn: &mut PgConnection,
    group: &str,
    archive: &str,
    offsets: &[Offset<'_>],
) -> Result<(), Error> {
    if offsets.is_empty() {
        return Ok(());
    }
    let topic: Vec<&str> = offsets.iter().map(|o| o.topic).collect();
    let part: Vec<i32> = offsets.iter().map(|o| o.partition).collect();
    let hw: Vec<Option<DateTime<Utc>>> = offsets.iter().map(|o| o.high_water.map(ts_utc)).collect();
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
    .execute(conn)
    .await
    .map_err(Error::query("recording the archive's progress"))?;
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
    .map_err(Error::query("recording that partitions were read to their end"))?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::archive_key;
    use std::path::Path;

    #[test]
    fn archive_key_normalises_spellings() {
        assert_eq!(archive_key(Path::new("s3://b/prefix/")), "s3://b/prefix");
        let dir = std::env::temp_dir();
        let plain = archive_key(&dir);
        let slashed = archive_key(Path::new(&format!("{}/", dir.display())));
        assert_eq!(plain, slashed);
        assert!(Path::new(&plain).is_absolute());
    }
}
