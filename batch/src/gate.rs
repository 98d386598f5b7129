//! The completeness gate (docs/reference.md §4): `batch --date D` publishes D only when the archive is
//! complete for D: every partition of both topics the stream recorded for this archive was
//! archived past D + 1 day + allowed lateness in event time, or was read to the end of its log at
//! a wall-clock time past that point. An archive for which no stream recorded progress (written
//! by another tool) counts as complete. `--force` publishes anyway and says so.

use chrono::{DateTime, Utc};
use playsource_domain::Day;
use playsource_store::progress::{self, Behind};
use sqlx::PgPool;

use crate::error::Error;
use crate::run::BatchOptions;

/// The instant the archive must be past for `day`: D + 1 day + allowed lateness.
pub fn complete_point(day: Day, opts: &BatchOptions) -> DateTime<Utc> {
    let ms = day.plus(1).start().0 + opts.attribution.allowed_lateness_ms;
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The partitions behind for `day` (empty: complete).
pub async fn behind(pool: &PgPool, opts: &BatchOptions, day: Day) -> Result<Vec<Behind>, Error> {
    let archive = progress::archive_key(&opts.archive.location());
    let topics = [opts.impressions_topic.as_str(), opts.plays_topic.as_str()];
    Ok(progress::behind(pool, &archive, &topics, complete_point(day, opts)).await?)
}

/// Lists partitions for an error or a warning: `impressions/0 (...), plays/1 (...)`.
pub fn describe(behind: &[Behind]) -> String {
    behind
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `day`: `Ok(vec![])` when complete; with `opts.force` the partitions behind are
/// returned (and logged) instead of failing.
pub async fn check(pool: &PgPool, opts: &BatchOptions, day: Day) -> Result<Vec<Behind>, Error> {
    let behind = behind(pool, opts, day).await?;
    if behind.is_empty() {
        return Ok(behind);
    }
    let point = complete_point(day, opts);
    if opts.force {
        tracing::warn!(
            %day,
            point = %point.format("%Y-%m-%dT%H:%M:%SZ"),
            behind = %describe(&behind),
            "--force: publishing a day the archive is not complete for"
        );
        return Ok(behind);
    }
    Err(Error::Incomplete {
        day,
        point: point.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        count: behind.len(),
        behind: describe(&behind),
    })
}
