//! The temporal catalog in batch (docs/reference.md §2): a catalog change effective in the middle of a
//! day gives the views of a bulk reference that enriches each play with the version in effect at
//! its ts (computed per half, each with its own plain one-version catalog); a change effective
//! after the plays changes nothing; a file identical to the version in effect records nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use playsource_batch::{run_day, BatchOptions};
use playsource_domain::attribution::reference;
use playsource_domain::{AttributionConfig, Catalog, Play, VideoMeta, HOUR_MS};
use playsource_store::catalog::{list_versions, load_version};
use sqlx::PgPool;

/// Other genres, and launch dates that make every video a new launch on `d`.
fn changed(v1: &[VideoMeta], d: playsource_domain::Day) -> Vec<VideoMeta> {
    v1.iter()
        .map(|v| VideoMeta {
            genre: format!("{}-v2", v.genre),
            launch_date: d.plus(-1),
            ..v.clone()
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_change_in_the_middle_of_the_day_enriches_each_play_with_its_version(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(11, d.plus(-9), d.plus(1), 150, 3000);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 2);
    let v1 = w.catalog.clone();
    let v2 = changed(&v1, d);
    let mid = playsource_domain::Ts(d.start().0 + 12 * HOUR_MS);
    let first = load_version(&pool, &v1, None, "v1.csv").await.unwrap();
    assert_eq!((first.version, first.effective_from), (Some(1), None));
    let second = load_version(&pool, &v2, mid.to_datetime(), "v2.csv")
        .await
        .unwrap();
    assert_eq!(second.version, Some(2));
    assert_eq!(second.changed, v2.len());
    // The same file again, effective at the same time: nothing new.
    let again = load_version(&pool, &v2, mid.to_datetime(), "v2.csv")
        .await
        .unwrap();
    assert_eq!((again.version, again.changed), (None, 0));
    assert_eq!(list_versions(&pool).await.unwrap().len(), 2);

    let cfg = AttributionConfig::default();
    let of = |before: bool| -> Vec<Play<'_>> {
        w.plays
            .iter()
            .filter(|p| p.ts.day() == d && (p.ts < mid) == before)
            .cloned()
            .collect()
    };
    let mut expected =
        reference::counts(&cfg, &w.impressions, &of(true), &Catalog::new(v1.clone()));
    let after = reference::counts(&cfg, &w.impressions, &of(false), &Catalog::new(v2.clone()));
    assert!(expected.total() > 50 && after.total() > 50);
    expected.merge(&after);
    let all: Vec<Play<'_>> = w
        .plays
        .iter()
        .filter(|p| p.ts.day() == d)
        .cloned()
        .collect();
    let v1_only = reference::counts(&cfg, &w.impressions, &all, &Catalog::new(v1.clone()));
    assert_ne!(
        v1_only.hourly_rows(),
        expected.hourly_rows(),
        "the change must show"
    );

    let mut opts = BatchOptions::new(dir.path());
    opts.threads = 2;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(
        batch_hourly(&pool, "batch_hourly", d).await,
        expected.hourly_rows()
    );
    assert_eq!(batch_video_daily(&pool, d).await, expected.video_rows());

    // A third version effective after the plays: a re-run gives the same rows.
    let v3: Vec<VideoMeta> = v1
        .iter()
        .map(|v| VideoMeta {
            genre: "later".into(),
            ..v.clone()
        })
        .collect();
    let third = load_version(&pool, &v3, d.plus(2).start().to_datetime(), "v3.csv")
        .await
        .unwrap();
    assert_eq!(third.version, Some(3));
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(
        batch_hourly(&pool, "batch_hourly", d).await,
        expected.hourly_rows()
    );
}
