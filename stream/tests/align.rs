//! Event-time alignment of the two topics: when one topic runs far ahead of the other in event
//! time it is held until the other catches up or goes quiet, and the views stay exact — whether
//! its messages fit the alignment buffer or it must also be paused and read again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use playsource_stream::RunSummary;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn a_topic_far_ahead_is_held_in_memory_and_the_views_stay_exact(pool: PgPool) {
    let s = impressions_a_day_ahead(&pool, "align", None).await;
    assert_eq!(s.align_pauses, 0, "the default buffer holds them all");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_topic_held_past_the_buffer_is_paused_read_again_and_the_views_stay_exact(pool: PgPool) {
    let s = impressions_a_day_ahead(&pool, "alignpause", Some(256 << 10)).await;
    assert!(
        s.align_pauses > 0,
        "256 KiB cannot hold a day of impressions"
    );
}

/// A backlog of a day of impressions and the first three hours of plays (as if the plays'
/// producer were down since), then the rest of the plays: the views and archive stay exact, and
/// held messages are counted once. Returns the first run's summary.
async fn impressions_a_day_ahead(pool: &PgPool, name: &str, buffer: Option<usize>) -> RunSummary {
    let t = topics(name);
    create_topics(&t).await;
    let w = workload(
        21,
        1500,
        Ts::parse_rfc3339("2026-11-21T00:00:00Z").unwrap(),
        24,
    );
    load_catalog(pool, &w.catalog).await;
    let cut = Ts::parse_rfc3339("2026-11-21T03:00:00Z").unwrap();
    let early: Vec<_> = w.plays.iter().filter(|p| p.ts < cut).cloned().collect();
    let late: Vec<_> = w.plays.iter().filter(|p| p.ts >= cut).cloned().collect();
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&early)).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    let mut cfg = config(&t, &group, archive.path());
    cfg.max_drift = Some(Duration::from_secs(60));
    if let Some(bytes) = buffer {
        cfg.align_buffer_bytes = bytes;
    }
    let first = run_until_idle_within(cfg.clone(), pool, Duration::from_secs(300)).await;
    assert!(first.holds > 0, "impressions ran ahead and were held");
    assert_eq!(
        first.consumed as usize,
        w.impressions.len() + early.len(),
        "held messages are read again, and counted once"
    );
    // The plays' producer comes back.
    produce_raw(&p, &t.plays, &play_msgs(&late)).await;
    let second = run_until_idle_within(cfg, pool, Duration::from_secs(300)).await;
    assert_eq!(second.consumed as usize, late.len());
    assert_views_exact(pool, &w).await;
    archive_exact(archive.path(), &t, &w);
    first
}
