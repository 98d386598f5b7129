//! The completeness gate (docs/reference.md §4): a day is published only when every partition the stream
//! recorded for this archive is past D + 1 day + allowed lateness in event time or was read to
//! its end after that point; otherwise the run fails naming the partitions behind and publishes
//! nothing; `force` publishes anyway and reports them. No recorded progress (an archive written
//! by another tool), or progress recorded for another archive, does not gate.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::*;
use playsource_batch::{run_day, BatchOptions, Error};
use playsource_store::progress::archive_key;
use sqlx::PgPool;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn progress(
    pool: &PgPool,
    archive: &str,
    topic: &str,
    partition: i32,
    high_water: Option<&str>,
    caught_up_at: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO archive_progress (archive, topic, partition, group_id, high_water, caught_up_at)
         VALUES ($1, $2, $3, 'g', $4, $5)
         ON CONFLICT (archive, topic, partition) DO UPDATE
         SET high_water = EXCLUDED.high_water, caught_up_at = EXCLUDED.caught_up_at",
    )
    .bind(archive)
    .bind(topic)
    .bind(partition)
    .bind(high_water.map(at))
    .bind(caught_up_at.map(at))
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_day_the_archive_is_behind_for_is_refused_unless_forced(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(7, d.plus(-8), d, 40, 400);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 1);
    insert_catalog(&pool, &w.catalog).await;
    let mut opts = BatchOptions::new(dir.path());
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());

    // No stream ever recorded progress for this archive (another tool wrote it): complete.
    // Progress recorded for a different archive does not gate this one either.
    progress(
        &pool,
        "/elsewhere/archive",
        "plays",
        0,
        Some("2026-11-21T03:00:00Z"),
        None,
    )
    .await;
    let first = run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    assert!(first.forced_past.is_empty());
    let hourly = batch_hourly(&pool, "batch_hourly", d).await;
    let day_row = batch_day(&pool, d).await.unwrap();

    // The stream recorded this archive: impressions/0 is past the point in event time, plays/1
    // was read to its end after it, plays/0 is neither (the stream stopped at 20:00 of D and was
    // last at the end of the log at midnight, before the 5 minutes of lateness ran out).
    let key = archive_key(dir.path());
    progress(
        &pool,
        &key,
        "impressions",
        0,
        Some("2026-11-22T00:05:01Z"),
        None,
    )
    .await;
    progress(
        &pool,
        &key,
        "plays",
        1,
        Some("2026-11-21T23:00:00Z"),
        Some("2026-11-22T06:00:00Z"),
    )
    .await;
    progress(
        &pool,
        &key,
        "plays",
        0,
        Some("2026-11-21T20:00:00Z"),
        Some("2026-11-22T00:00:00Z"),
    )
    .await;
    let err = run_day(&pool, catalog.clone(), &opts, d).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert!(msg.contains("not complete for 2026-11-21"), "{msg}");
    assert!(
        msg.contains("plays/0 (event time archived up to 2026-11-21T20:00:00Z"),
        "{msg}"
    );
    assert!(
        msg.contains("2026-11-22T00:05:00Z"),
        "the message names the point: {msg}"
    );
    assert!(
        !msg.contains("plays/1") && !msg.contains("impressions/0"),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(
        batch_day(&pool, d).await.unwrap(),
        day_row,
        "nothing was published"
    );
    assert_eq!(batch_hourly(&pool, "batch_hourly", d).await, hourly);

    // --force publishes anyway and reports the partitions behind.
    opts.force = true;
    let forced = run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    assert!(forced.generation > day_row.0);
    let named: Vec<String> = forced
        .forced_past
        .iter()
        .map(|b| format!("{}/{}", b.topic, b.partition))
        .collect();
    assert_eq!(named, ["plays/0"]);

    // Once plays/0 was read to its end after the point, the day is complete.
    opts.force = false;
    progress(
        &pool,
        &key,
        "plays",
        0,
        Some("2026-11-21T20:00:00Z"),
        Some("2026-11-22T02:00:00Z"),
    )
    .await;
    let done = run_day(&pool, catalog, &opts, d).await.unwrap();
    assert!(done.forced_past.is_empty());
    assert!(done.generation > forced.generation);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_partition_with_no_event_yet_is_behind(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(8, d.plus(-8), d, 20, 100);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 1);
    insert_catalog(&pool, &w.catalog).await;
    let opts = BatchOptions::new(dir.path());
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    progress(
        &pool,
        &archive_key(dir.path()),
        "impressions",
        2,
        None,
        None,
    )
    .await;
    let msg = run_day(&pool, catalog, &opts, d)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(
            "impressions/2 (event time archived up to never, last read to the end at never)"
        ),
        "{msg}"
    );
    assert!(batch_day(&pool, d).await.is_none());
}
