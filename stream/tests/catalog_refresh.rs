//! A catalog version loaded while the stream runs, before its cache's next refresh (docs/reference.md §2):
//! the stream holds version 1 with a one-hour TTL; version 2 is loaded effective in the middle of
//! the workload, then the workload arrives. Every play from the effective time on must be counted
//! with version 2 although the cache was not refreshed: the flush that would commit plays counted
//! with version 1 is withheld and the unit rebuilt with the new catalog — from nothing, or (when
//! the plays before the effective time were committed first) by replaying to the committed
//! offsets. The views equal a bulk reference that enriches each half with its own version, and
//! the archive is exact (real tansu broker, real Postgres).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use playsource_kafka::Topics;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

async fn committed(pool: &PgPool, group: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn leases(pool: &PgPool, group: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM stream_leases WHERE group_id = $1")
        .bind(group)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_committed(pool: &PgPool, group: &str, want: usize) {
    tokio::time::timeout(Duration::from_secs(120), async {
        while committed(pool, group).await < want as i64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the stream did not commit what was produced");
}

/// Runs the case; with `committed_first`, the events before the effective time are produced and
/// committed before version 2 is loaded (and the rest after), otherwise all come after the load.
async fn version_loaded_while_running(pool: PgPool, t: Topics, committed_first: bool) {
    create_topics(&t).await;
    let start = Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
    let w = workload(5, 400, start, 3);
    let mid = Ts(start.0 + 90 * 60 * 1000);
    let v2 = catalog_v2(&w);
    load_catalog(&pool, &w.catalog).await;

    // The stream starts on version 1 and would not refresh its cache for an hour.
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    let mut cfg = config(&t, &group, archive.path());
    cfg.exit_when_idle = None;
    cfg.catalog_ttl = Duration::from_secs(3600);
    let stop = CancellationToken::new();
    let run = tokio::spawn(playsource_stream::run(cfg, pool.clone(), stop.clone()));
    // A lease is taken after the catalog was read.
    tokio::time::timeout(Duration::from_secs(60), async {
        while leases(&pool, &group).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the stream took no partition");

    let p = producer();
    let (mut imps, mut plays) = (w.impressions.clone(), w.plays.clone());
    if committed_first {
        let (i1, i2): (Vec<_>, Vec<_>) = imps.into_iter().partition(|i| i.ts < mid);
        let (p1, p2): (Vec<_>, Vec<_>) = plays.into_iter().partition(|p| p.ts < mid);
        produce_raw(&p, &t.impressions, &imp_msgs(&i1)).await;
        produce_raw(&p, &t.plays, &play_msgs(&p1)).await;
        wait_committed(&pool, &group, i1.len() + p1.len()).await;
        (imps, plays) = (i2, p2);
    }
    // Version 2, effective mid-workload, loaded while the stream runs; then the (rest of the)
    // workload.
    let loaded = playsource_store::catalog::load_version(&pool, &v2, mid.to_datetime(), "v2")
        .await
        .unwrap();
    assert_eq!(loaded.version, Some(2));
    produce_raw(&p, &t.impressions, &imp_msgs(&imps)).await;
    produce_raw(&p, &t.plays, &play_msgs(&plays)).await;
    wait_committed(&pool, &group, w.impressions.len() + w.plays.len()).await;
    stop.cancel();
    let summary = run.await.unwrap().unwrap();

    let expected = two_version_reference(&w, mid, v2);
    assert_eq!(rt_hourly(&pool).await, expected.hourly_rows());
    assert_eq!(rt_video_daily(&pool).await, expected.video_rows());
    archive_exact(archive.path(), &t, &w);
    assert!(
        summary.catalog_rebuilds > 0,
        "no unit was rebuilt for the new version"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_version_loaded_before_the_cache_refresh_counts_its_plays(pool: PgPool) {
    version_loaded_while_running(pool, topics("catrefresh"), false).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rebuild_replays_what_was_committed_before_the_version(pool: PgPool) {
    version_loaded_while_running(pool, topics("catrefresh-half"), true).await;
}
