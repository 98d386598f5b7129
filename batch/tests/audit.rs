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
    for sql in [
        "INSERT INTO rt_hourly SELECT * FROM batch_hourly",
        "INSERT INTO rt_video_daily SELECT * FROM batch_video_daily",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
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
    assert!(text.contains("DRIFT") && text.contains("hourly"), "{text}");

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
        bad.len() == 1
            && bad[0].view == "hourly"
            && bad[0].cell.starts_with(&format!("{country} ")),
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
        .any(|row| row.cell.contains("sop=audit_test_row") && !row.explained));

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

/// A drift that cancels out in every dimension on its own: two cells of one hour with different
/// countries and genres swap a play's genre. Each hour total, country, device, SoP, SoD, genre
/// and new-launch sum agrees; the cells do not.
#[sqlx::test(migrations = "../migrations")]
async fn a_drift_that_cancels_per_dimension_is_caught(pool: PgPool) {
    let (d, _dir) = published_day(&pool).await;
    type Row = (
        chrono::DateTime<chrono::Utc>,
        String,
        String,
        String,
        String,
        String,
        bool,
    );
    let pair: Option<(Row, Row)> = {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT hour, country, device, sop_row, sod_row, genre, new_launch FROM rt_hourly WHERE plays > 0 ORDER BY plays DESC, hour",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.iter().find_map(|a| {
            rows.iter()
                .find(|b| b.0 == a.0 && b.1 != a.1 && b.5 != a.5)
                .map(|b| (a.clone(), b.clone()))
        })
    };
    let (a, b) = pair.expect("two cells of one hour with other countries and genres");
    let change = |row: &Row, genre: &str, delta: i64| {
        let (h, c, dev, sop, sod, _, nl) = row.clone();
        let genre = genre.to_owned();
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO rt_hourly VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (hour, country, device, sop_row, sod_row, genre, new_launch) \
                 DO UPDATE SET plays = rt_hourly.plays + EXCLUDED.plays",
            )
            .bind(h)
            .bind(c)
            .bind(dev)
            .bind(sop)
            .bind(sod)
            .bind(genre)
            .bind(nl)
            .bind(delta)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    change(&a, &a.5, -1).await;
    change(&a, &b.5, 1).await;
    change(&b, &b.5, -1).await;
    change(&b, &a.5, 1).await;
    let r = audit(&pool, d).await;
    assert!(!r.is_clean(), "{}", r.render());
    assert_eq!(r.realtime_plays, r.batch_plays);
    assert_eq!(r.unexplained(), 4, "{}", r.render());
    assert!(r.render().contains("DRIFT"));
}
