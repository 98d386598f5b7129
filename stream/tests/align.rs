//! Event-time alignment of the two topics: when one topic runs far ahead of the other in event
//! time it is held until the other catches up or goes quiet, and the views stay exact.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn a_topic_far_ahead_is_held_and_the_views_stay_exact(pool: PgPool) {
    let t = topics("align");
    create_topics(&t).await;
    let w = workload(
        21,
        1500,
        Ts::parse_rfc3339("2026-11-21T00:00:00Z").unwrap(),
        24,
    );
    load_catalog(&pool, &w.catalog).await;
    // A backlog: impressions of the whole day, plays of its first hours only (as if the plays'
    // producer were down since): impressions run hours ahead of plays.
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
    let first = run_until_idle_within(cfg.clone(), &pool, Duration::from_secs(300)).await;
    assert!(first.holds > 0, "impressions ran ahead and were held");
    assert_eq!(
        first.consumed as usize,
        w.impressions.len() + early.len(),
        "held messages are read again, and counted once"
    );
    // The plays' producer comes back.
    produce_raw(&p, &t.plays, &play_msgs(&late)).await;
    let second = run_until_idle_within(cfg, &pool, Duration::from_secs(300)).await;
    assert_eq!(second.consumed as usize, late.len());
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}
