//! How far the stream has archived each topic-partition (`archive_progress`), and the batch
//! layer's completeness gate on it (docs/reference.md §4): day D is complete when every partition of both
//! topics was archived past D + 1 day + allowed lateness in event time, or was read to the end of
//! its log at a wall-clock time past that point. An archive with no recorded progress (written by
//! another tool) counts as complete.

use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

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
