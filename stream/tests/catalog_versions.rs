//! The temporal catalog in the stream (docs/reference.md §2): with a version effective in the middle of
//! the workload, every play before it is counted with the first version's genre and new-launch
//! flag and every play from it on with the second's — the views equal a bulk reference that
//! enriches each half with its own plain one-version catalog (real tansu broker, real Postgres).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_domain::attribution::reference;
use playsource_domain::{AttributionConfig, Catalog, Day, Play, Ts, VideoMeta};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn a_version_effective_mid_workload_splits_plays_by_ts(pool: PgPool) {
    let t = topics("catv");
    create_topics(&t).await;
    let start = Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
    let w = workload(3, 400, start, 3);
    let mid = Ts(start.0 + 90 * 60 * 1000);
    let v2: Vec<VideoMeta> = w
        .catalog
        .iter()
        .map(|v| VideoMeta {
            genre: format!("{}_v2", v.genre),
            launch_date: Day::parse("2026-11-20").unwrap(),
            ..v.clone()
        })
        .collect();
    load_catalog(&pool, &w.catalog).await;
    let loaded = playsource_store::catalog::load_version(&pool, &v2, mid.to_datetime(), "v2")
        .await
        .unwrap();
    assert_eq!(loaded.version, Some(2));

    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    run_until_idle(config(&t, &group, archive.path()), &pool).await;

    let cfg = AttributionConfig::default();
    let half = |before: bool| -> Vec<Play<'_>> {
        w.plays
            .iter()
            .filter(|p| (p.ts < mid) == before)
            .cloned()
            .collect()
    };
    let mut expected = reference::counts(
        &cfg,
        &w.impressions,
        &half(true),
        &Catalog::new(w.catalog.clone()),
    );
    let after = reference::counts(&cfg, &w.impressions, &half(false), &Catalog::new(v2));
    assert!(expected.total() > 20 && after.total() > 20);
    expected.merge(&after);
    assert_eq!(rt_hourly(&pool).await, expected.hourly_rows());
    assert_eq!(rt_video_daily(&pool).await, expected.video_rows());
}
