//! Bad input: a corrupt file fails the run and leaves the previous view (and enriched plays)
//! intact; a missing or empty day is a clear error naming where it looked, unless
//! `allow_empty`; a plays file lacking a column names the file and the column.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use playsource_archive::ArchiveLayout;
use playsource_batch::{run_day, BatchOptions, Error};
use playsource_domain::Catalog;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn a_corrupt_file_fails_the_run_and_keeps_the_previous_view(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(3, d.plus(-8), d, 40, 400);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 1);
    insert_catalog(&pool, &w.catalog).await;
    let opts = BatchOptions::new(dir.path());
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let good = run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    let hourly = batch_hourly(&pool, "batch_hourly", d).await;
    let video = batch_video_daily(&pool, d).await;
    let day_row = batch_day(&pool, d).await.unwrap();
    let enriched: Vec<_> = std::fs::read_dir(&good.enriched_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();

    // A file that is not Parquet lands in an hour of the day.
    let bad = ArchiveLayout::new(dir.path())
        .partition_dir("plays", d, 13)
        .join("zz-corrupt.parquet");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"PAR1 this is not really parquet").unwrap();
    let err = run_day(&pool, catalog, &opts, d).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("zz-corrupt.parquet"), "{msg}");
    assert!(matches!(err, Error::Archive(_)), "{err:?}");

    assert_eq!(batch_hourly(&pool, "batch_hourly", d).await, hourly);
    assert_eq!(batch_video_daily(&pool, d).await, video);
    assert_eq!(batch_day(&pool, d).await.unwrap(), day_row);
    let after: Vec<_> = std::fs::read_dir(&good.enriched_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(after, enriched);
    let staging = dir.path().join("enriched_plays/_staging");
    assert_eq!(
        std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0,
        "staging left behind"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_missing_day_names_the_folder_unless_allowed_empty(pool: PgPool) {
    let d = day("2026-11-21");
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(Catalog::default());
    let mut opts = BatchOptions::new(dir.path());
    let err = run_day(&pool, catalog.clone(), &opts, d).await.unwrap_err();
    let msg = err.to_string();
    let folder = dir.path().join("plays/date=2026-11-21");
    assert!(msg.contains(&folder.display().to_string()), "{msg}");
    assert!(msg.contains("--allow-empty"), "{msg}");
    assert!(batch_day(&pool, d).await.is_none());

    opts.allow_empty = true;
    let s = run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(s.plays, 0);
    let (generation, plays, impressions, _) = batch_day(&pool, d).await.unwrap();
    assert_eq!((plays, impressions), (0, 0));
    assert!(generation > 0);
    assert!(batch_hourly(&pool, "batch_hourly", d).await.is_empty());
    // The empty day still has an enriched plays file with the schema.
    assert_eq!(std::fs::read_dir(&s.enriched_dir).unwrap().count(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_day_of_only_invalid_or_foreign_rows_is_empty(pool: PgPool) {
    let d = day("2026-11-21");
    let dir = tempfile::tempdir().unwrap();
    // Plays of another day, filed under D by mistake: nothing of D.
    let w = workload(5, d.plus(1), d.plus(1), 10, 50);
    let layout = ArchiveLayout::new(dir.path());
    let path = layout.partition_dir("plays", d, 0).join("misfiled.parquet");
    let mut b = playsource_archive::PlaysBuilder::default();
    for p in &w.plays {
        b.push(p, None);
    }
    playsource_archive::write_parquet_atomic(&path, &[b.finish()]).unwrap();
    let opts = BatchOptions::new(dir.path());
    let err = run_day(&pool, Arc::new(Catalog::default()), &opts, d)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::EmptyDay { .. }), "{msg}");
    assert!(
        msg.contains(&format!("{} were not of 2026-11-21", w.plays.len())),
        "{msg}"
    );
    assert!(
        msg.contains(&layout.day_dir("plays", d).display().to_string()),
        "{msg}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_file_lacking_a_column_names_file_and_column(pool: PgPool) {
    let d = day("2026-11-21");
    let dir = tempfile::tempdir().unwrap();
    let path = ArchiveLayout::new(dir.path())
        .partition_dir("plays", d, 3)
        .join("no-device.parquet");
    let schema = Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("member_id", DataType::UInt64, false),
    ]);
    let batch = RecordBatch::try_new(
        schema.into(),
        vec![
            Arc::new(StringArray::from(vec!["p1"])),
            Arc::new(UInt64Array::from(vec![1u64])),
        ],
    )
    .unwrap();
    playsource_archive::write_parquet_atomic(&path, &[batch]).unwrap();
    let err = run_day(
        &pool,
        Arc::new(Catalog::default()),
        &BatchOptions::new(dir.path()),
        d,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no-device.parquet") && msg.contains("`ts`"),
        "{msg}"
    );
}
