//! The batch view of a generated workload equals the naive reference of the rules, row by row;
//! re-runs give the same rows with a new generation; the enriched plays hold one row per
//! counted play.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use playsource_batch::{run_day, BatchOptions};
use playsource_domain::attribution::reference::{self, NaiveAttribution};
use playsource_domain::{AttributionConfig, Play};
use sqlx::PgPool;

/// (event_id, sop_row, sop_event_id, sod_row, sod_event_id) of every enriched play, sorted.
fn read_enriched(files: &[std::path::PathBuf]) -> Vec<NaiveAttribution> {
    enriched_attributions(&read_batches(files))
}

#[sqlx::test(migrations = "../migrations")]
async fn batch_view_equals_the_reference_and_reruns_are_idempotent(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(7, d.plus(-9), d.plus(1), 150, 3000);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 2);
    insert_catalog(&pool, &w.catalog).await;

    let cfg = AttributionConfig::default();
    let plays_of_d: Vec<Play<'_>> = w
        .plays
        .iter()
        .filter(|p| p.ts.day() == d)
        .cloned()
        .collect();
    let expected = reference::counts(&cfg, &w.impressions, &plays_of_d, &catalog_of(&w.catalog));
    assert!(
        expected.total() > 100,
        "workload too small: {}",
        expected.total()
    );

    let mut opts = BatchOptions::new(dir.path());
    opts.threads = 2;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let first = run_day(&pool, catalog.clone(), &opts, d).await.unwrap();

    let hourly = batch_hourly(&pool, "batch_hourly", d).await;
    assert_eq!(hourly, expected.hourly_rows());
    assert_eq!(batch_video_daily(&pool, d).await, expected.video_rows());
    assert_eq!(first.plays as i64, expected.total());
    let impressions_of_d = w.impressions.iter().filter(|i| i.ts.day() == d).count() as i64;
    let (gen1, plays, imps, too_late) = batch_day(&pool, d).await.unwrap();
    assert_eq!(
        (plays, imps, too_late),
        (expected.total(), impressions_of_d, 0)
    );
    let dups = plays_of_d.len() as u64 - first.plays;
    assert_eq!(first.duplicate_plays, dups);

    // The enriched plays: one row per counted play, readable as plain Parquet, each with the
    // sources the reference picks.
    let mut files = std::fs::read_dir(&first.enriched_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    files.sort();
    assert!(!files.is_empty());
    let enriched = read_enriched(&files);
    assert_eq!(enriched.len() as u64, first.plays);
    assert_eq!(
        enriched,
        reference::attribute(&cfg, &w.impressions, &plays_of_d)
    );
    // Nothing of the run is left in the staging folder.
    let staging = dir.path().join("enriched_plays/_staging");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0
    );

    // Re-run, with one thread this time: same rows, higher generation, same enriched rows.
    opts.threads = 1;
    let second = run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(batch_hourly(&pool, "batch_hourly", d).await, hourly);
    assert_eq!(batch_video_daily(&pool, d).await, expected.video_rows());
    let (gen2, ..) = batch_day(&pool, d).await.unwrap();
    assert!(gen2 > gen1, "{gen2} > {gen1}");
    assert_eq!(second.generation, gen2);
    assert_eq!(second.plays, first.plays);
    let mut files2 = std::fs::read_dir(&second.enriched_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    files2.sort();
    assert_eq!(files, files2);
}

#[sqlx::test(migrations = "../migrations")]
async fn neighbouring_days_are_left_alone_and_too_late_plays_are_summed(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(11, d.plus(-9), d.plus(1), 60, 800);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 1);
    insert_catalog(&pool, &w.catalog).await;
    // The stream found 3 plays of D too late (and some of D+1, which must not count).
    for (hour, events) in [
        ("2026-11-21T04:00:00Z", 2i64),
        ("2026-11-21T23:00:00Z", 1),
        ("2026-11-22T00:00:00Z", 5),
    ] {
        sqlx::query("INSERT INTO rt_too_late (hour, topic, country, device, events) VALUES ($1, 'plays', 'US', 'tv', $2)")
            .bind(ts(hour).to_datetime().unwrap())
            .bind(events)
            .execute(&pool)
            .await
            .unwrap();
    }
    let opts = BatchOptions::new(dir.path());
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    run_day(&pool, catalog.clone(), &opts, d.plus(-1))
        .await
        .unwrap();
    let before = batch_hourly(&pool, "batch_hourly", d.plus(-1)).await;
    assert!(!before.is_empty());
    let s = run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(s.too_late_plays, 3);
    assert_eq!(batch_day(&pool, d).await.unwrap().3, 3);
    assert_eq!(
        batch_hourly(&pool, "batch_hourly", d.plus(-1)).await,
        before
    );
    let cfg = AttributionConfig::default();
    let plays_of: Vec<Play<'_>> = w
        .plays
        .iter()
        .filter(|p| p.ts.day() == d.plus(-1))
        .cloned()
        .collect();
    let expected = reference::counts(&cfg, &w.impressions, &plays_of, &catalog_of(&w.catalog));
    assert_eq!(before, expected.hourly_rows());
}

/// A range is computed a day ahead of its publish: every day still equals the reference, each
/// publish is reported in order, and a failing day stops the range with its error after the days
/// before it were published, leaving the one after it unpublished and nothing staged.
#[sqlx::test(migrations = "../migrations")]
async fn a_range_computed_ahead_of_its_publishes_equals_the_reference_day_by_day(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(11, d.plus(-9), d.plus(3), 150, 3000);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 2);
    insert_catalog(&pool, &w.catalog).await;
    let cfg = AttributionConfig::default();
    let mut opts = BatchOptions::new(dir.path());
    opts.threads = 2;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());

    let days = [d, d.plus(1), d.plus(2)];
    let mut reported = Vec::new();
    playsource_batch::run_days(&pool, catalog.clone(), &opts, &days, |s| {
        reported.push((s.day, s.plays))
    })
    .await
    .unwrap();
    for (i, &x) in days.iter().enumerate() {
        let plays: Vec<Play<'_>> = w
            .plays
            .iter()
            .filter(|p| p.ts.day() == x)
            .cloned()
            .collect();
        let expected = reference::counts(&cfg, &w.impressions, &plays, &catalog_of(&w.catalog));
        assert!(expected.total() > 50, "workload too small on {x}");
        assert_eq!(
            batch_hourly(&pool, "batch_hourly", x).await,
            expected.hourly_rows(),
            "{x}"
        );
        assert_eq!(
            batch_video_daily(&pool, x).await,
            expected.video_rows(),
            "{x}"
        );
        assert_eq!(reported[i], (x, expected.total() as u64));
    }

    // The middle day's plays are gone: the first day is published again, the range stops there.
    let (gen_first, ..) = batch_day(&pool, d).await.unwrap();
    let (gen_last, ..) = batch_day(&pool, d.plus(2)).await.unwrap();
    std::fs::remove_dir_all(dir.path().join(format!("plays/date={}", d.plus(1)))).unwrap();
    let mut reported = Vec::new();
    let (failed, err) =
        playsource_batch::run_days(&pool, catalog, &opts, &days, |s| reported.push(s.day))
            .await
            .unwrap_err();
    assert_eq!(failed, d.plus(1));
    assert!(
        matches!(err, playsource_batch::Error::MissingDay { .. }),
        "{err}"
    );
    assert_eq!(reported, [d]);
    assert!(batch_day(&pool, d).await.unwrap().0 > gen_first);
    assert_eq!(
        batch_day(&pool, d.plus(2)).await.unwrap().0,
        gen_last,
        "the day after was left alone"
    );
    let staging = dir.path().join("enriched_plays/_staging");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0
    );
}
