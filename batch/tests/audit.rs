//! `audit`: identical realtime rows give no drift; a realtime view missing plays that the stream
//! recorded as too late is explained; any other difference is drift; a day that is not
//! batch-complete is an error.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use playsource_batch::{audit_day, run_day, BatchOptions, Error};
use playsource_domain::{AttributionConfig, Day};
use sqlx::PgPool;

async fn published_day(pool: &PgPool) -> (Day, tempfile::TempDir) {
    let d = day("2026-11-21");
    let w = workload(9, d.plus(-8), d, 60, 600);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 1);
    insert_catalog(pool, &w.catalog).await;
    let catalog = Arc::new(playsource_batch::load_catalog(pool).await.unwrap());
    run_day(pool, catalog, &BatchOptions::new(dir.path()), d)
        .await
        .unwrap();
    // The realtime view starts as an exact copy of the batch view.
    sqlx::query("INSERT INTO rt_hourly SELECT * FROM batch_hourly")
        .execute(pool)
        .await
        .unwrap();
    (d, dir)
}

async fn audit(pool: &PgPool, d: Day) -> playsource_batch::AuditReport {
    audit_day(
        pool,
        d,
        "plays",
        "impressions",
        &AttributionConfig::default(),
    )
    .await
    .unwrap()
}

/// The (hour, country, device) of the busiest realtime cell, taking one play out of it.
async fn take_one_play(pool: &PgPool) -> (chrono::DateTime<chrono::Utc>, String, String) {
    let (hour, country, device): (chrono::DateTime<chrono::Utc>, String, String) = sqlx::query_as(
        "UPDATE rt_hourly SET plays = plays - 1 WHERE ctid = (SELECT ctid FROM rt_hourly ORDER BY plays DESC, hour LIMIT 1) \
         RETURNING hour, country, device",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (hour, country, device)
}

#[sqlx::test(migrations = "../migrations")]
async fn identical_views_have_no_drift(pool: PgPool) {
    let (d, _dir) = published_day(&pool).await;
    let r = audit(&pool, d).await;
    assert!(r.is_clean(), "{}", r.render());
    assert!(r.rows.is_empty());
    assert!(r.batch_plays > 0);
    assert_eq!(r.realtime_plays, r.batch_plays);
    assert!(r.render().contains("no drift"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_missing_play_is_drift_unless_it_was_too_late(pool: PgPool) {
    let (d, _dir) = published_day(&pool).await;
    let (hour, country, device) = take_one_play(&pool).await;
    let r = audit(&pool, d).await;
    assert!(!r.is_clean());
    assert_eq!(r.batch_plays - r.realtime_plays, 1);
    let text = r.render();
    assert!(text.contains("DRIFT") && text.contains("total"), "{text}");

    // The stream says one play of that hour, country and device was too late: explained.
    sqlx::query("INSERT INTO rt_too_late (hour, topic, country, device, events) VALUES ($1, 'plays', $2, $3, 1)")
        .bind(hour)
        .bind(&country)
        .bind(&device)
        .execute(&pool)
        .await
        .unwrap();
    let r = audit(&pool, d).await;
    assert!(r.is_clean(), "{}", r.render());
    assert!(!r.rows.is_empty());
    assert!(r.rows.iter().all(|row| row.explained && row.diff() == 1));
    assert!(r.render().contains("explained"));
}

#[sqlx::test(migrations = "../migrations")]
async fn too_late_plays_elsewhere_do_not_explain_drift(pool: PgPool) {
    let (d, _dir) = published_day(&pool).await;
    let (hour, country, device) = take_one_play(&pool).await;
    // Too late, but in another country: the per-country cell is not explained.
    let other = if country == "US" { "GB" } else { "US" };
    sqlx::query("INSERT INTO rt_too_late (hour, topic, country, device, events) VALUES ($1, 'plays', $2, $3, 1)")
        .bind(hour)
        .bind(other)
        .bind(&device)
        .execute(&pool)
        .await
        .unwrap();
    let r = audit(&pool, d).await;
    assert!(!r.is_clean(), "{}", r.render());
    let bad: Vec<_> = r.rows.iter().filter(|row| !row.explained).collect();
    assert!(
        bad.iter()
            .all(|row| row.dimension == "country" && row.value == country),
        "{bad:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn extra_realtime_plays_and_moved_sources_are_drift(pool: PgPool) {
    let (d, _dir) = published_day(&pool).await;
    // Move one play from its SoP row to another one: totals agree, sop_row does not.
    sqlx::query(
        "WITH one AS (SELECT ctid FROM rt_hourly ORDER BY plays DESC, hour LIMIT 1) \
         UPDATE rt_hourly SET sop_row = 'audit_test_row' WHERE ctid IN (SELECT ctid FROM one)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let r = audit(&pool, d).await;
    assert!(!r.is_clean(), "{}", r.render());
    assert!(r
        .rows
        .iter()
        .any(|row| row.dimension == "sop_row" && !row.explained));
    assert!(r.rows.iter().all(|row| row.dimension != "total"));

    // Too-late impressions within the SoP window explain a moved SoP.
    let hour = r.rows[0].hour;
    sqlx::query("INSERT INTO rt_too_late (hour, topic, country, device, events) VALUES ($1, 'impressions', 'US', 'tv', 100)")
        .bind(hour.to_datetime().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let r = audit(&pool, d).await;
    assert!(r.is_clean(), "{}", r.render());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_day_that_is_not_batch_complete_is_an_error(pool: PgPool) {
    let err = audit_day(
        &pool,
        day("2026-11-21"),
        "plays",
        "impressions",
        &AttributionConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotComplete { .. }));
    assert!(
        err.to_string()
            .contains("playsource batch --date 2026-11-21"),
        "{err}"
    );
}
