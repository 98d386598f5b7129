//! Restarts: a clean stop and an abort mid-run (no final flush) lose nothing and count nothing
//! twice; state is rebuilt by replay, from a snapshot or from the earliest offsets.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

/// Splits each topic's messages at its event-time midpoint, so the second half only follows.
fn halves(w: &Workload) -> [(Msgs, Msgs); 2] {
    let mid = Ts(start().0 + 2 * 3_600_000);
    let i1: Vec<_> = w
        .impressions
        .iter()
        .filter(|i| i.ts < mid)
        .cloned()
        .collect();
    let i2: Vec<_> = w
        .impressions
        .iter()
        .filter(|i| i.ts >= mid)
        .cloned()
        .collect();
    let p1: Vec<_> = w.plays.iter().filter(|p| p.ts < mid).cloned().collect();
    let p2: Vec<_> = w.plays.iter().filter(|p| p.ts >= mid).cloned().collect();
    [
        (imp_msgs(&i1), play_msgs(&p1)),
        (imp_msgs(&i2), play_msgs(&p2)),
    ]
}

async fn archive_exact(archive: &std::path::Path, t: &playsource_kafka::Topics, w: &Workload) {
    let (_, imp_rows) = parquet_rows(&archive.join(&t.impressions));
    let (_, play_rows) = parquet_rows(&archive.join(&t.plays));
    assert_eq!(
        imp_rows as usize,
        w.impressions.len(),
        "impressions archived once each"
    );
    assert_eq!(
        play_rows as usize,
        w.plays.len(),
        "plays archived once each"
    );
    let (staged, _) = parquet_rows(&archive.join("_staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_clean_restart_continues_exactly(pool: PgPool) {
    let t = topics("restart");
    create_topics(&t).await;
    let w = workload(5, 500, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    let first = run_until_idle(config(&t, "g-restart", archive.path()), &pool).await;
    assert_eq!(first.consumed as usize, i1.len() + p1.len());
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stream_snapshots WHERE group_id = 'g-restart'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(snapshots > 0, "a clean stop snapshots its units");
    produce_raw(&p, &t.impressions, &i2).await;
    produce_raw(&p, &t.plays, &p2).await;
    let second = run_until_idle(config(&t, "g-restart", archive.path()), &pool).await;
    assert_eq!(
        second.consumed as usize,
        i2.len() + p2.len(),
        "the second run reads only new messages"
    );
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w).await;
}

async fn abort_mid_run(pool: PgPool, name: &str, snapshot_every: Duration) {
    let t = topics(name);
    create_topics(&t).await;
    let w = workload(6, 700, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{name}");
    let mut cfg = config(&t, &group, archive.path());
    cfg.exit_when_idle = None;
    cfg.snapshot_interval = snapshot_every;
    let token = CancellationToken::new();
    let handle = tokio::spawn(playsource_stream::run(cfg, pool.clone(), token));
    // Kill it (no final flush) right after it committed something, while it still works.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM stream_offsets WHERE group_id = $1")
            .bind(&group)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    produce_raw(&p, &t.impressions, &i2[..i2.len() / 2]).await;
    produce_raw(&p, &t.plays, &p2[..p2.len() / 2]).await;
    handle.abort();
    let _ = handle.await;
    produce_raw(&p, &t.impressions, &i2[i2.len() / 2..]).await;
    produce_raw(&p, &t.plays, &p2[p2.len() / 2..]).await;
    let cfg = config(&t, &group, archive.path());
    let after = run_until_idle(cfg, &pool).await;
    if snapshot_every > Duration::from_secs(60) {
        assert!(
            after.replayed > 0,
            "no snapshot: the engine is rebuilt by replay"
        );
    }
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_abort_without_snapshots_rebuilds_by_replay(pool: PgPool) {
    abort_mid_run(pool, "abortreplay", Duration::from_secs(3600)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_abort_with_snapshots_rebuilds_from_the_snapshot(pool: PgPool) {
    abort_mid_run(pool, "abortsnap", Duration::ZERO).await;
}
