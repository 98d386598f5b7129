//! The temporal catalog in the stream (docs/reference.md §2): with a version effective in the middle of
//! the workload, every play before it is counted with the first version's genre and new-launch
//! flag and every play from it on with the second's — the views equal a bulk reference that
//! enriches each half with its own plain one-version catalog (real tansu broker, real Postgres).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_domain::Ts;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn a_version_effective_mid_workload_splits_plays_by_ts(pool: PgPool) {
    let t = topics("catv");
    create_topics(&t).await;
    let start = Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
    let w = workload(3, 400, start, 3);
    let mid = Ts(start.0 + 90 * 60 * 1000);
    let v2 = catalog_v2(&w);
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

    let expected = two_version_reference(&w, mid, v2);
    assert_eq!(rt_hourly(&pool).await, expected.hourly_rows());
    assert_eq!(rt_video_daily(&pool).await, expected.video_rows());
}
