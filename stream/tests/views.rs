//! The realtime views equal the reference counts of a generated workload, whatever the order the
//! two topics are produced in (real tansu broker, real Postgres).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_domain::attribution::reference;
use playsource_domain::{EnrichedPlay, Ts};
use sqlx::PgPool;

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn interleaved_production_gives_the_reference_views(pool: PgPool) {
    let t = topics("mix");
    create_topics(&t).await;
    let w = workload(1, 400, start(), 3);
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    // Interleave the topics in chunks, as a live system would.
    let imps = imp_msgs(&w.impressions);
    let plays = play_msgs(&w.plays);
    let (ci, cp) = (imps.len().div_ceil(5), plays.len().div_ceil(5));
    for k in 0..5 {
        produce_raw(
            &p,
            &t.impressions,
            &imps[(k * ci).min(imps.len())..((k + 1) * ci).min(imps.len())],
        )
        .await;
        produce_raw(
            &p,
            &t.plays,
            &plays[(k * cp).min(plays.len())..((k + 1) * cp).min(plays.len())],
        )
        .await;
    }
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    let summary = run_until_idle(config(&t, &group, archive.path()), &pool).await;
    assert_eq!(summary.consumed as usize, imps.len() + plays.len());
    assert_views_exact(&pool, &w).await;

    // Offsets: every topic-partition's next offset is stored, summing to the messages produced.
    let stored: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
    )
    .bind(&group)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored as usize, imps.len() + plays.len());

    // Archive: each valid message once, nothing left in staging.
    let (imp_files, imp_rows) = topic_rows(archive.path(), &t.impressions);
    let (_, play_rows) = topic_rows(archive.path(), &t.plays);
    assert!(!imp_files.is_empty());
    assert_eq!(imp_rows as usize, imps.len());
    assert_eq!(play_rows as usize, plays.len());
    let (staged, _) = parquet_rows(&archive.path().join("_staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");
    // Enriched plays: every counted play at revision 0, and its latest revision carries the
    // reference's sources.
    let cfg = playsource_domain::AttributionConfig::default();
    let naive = reference::attribute(&cfg, &w.impressions, &w.plays);
    let published = read_topic(&t.enriched, usize::MAX);
    let mut latest: std::collections::BTreeMap<String, EnrichedPlay> = Default::default();
    let mut first = 0;
    for (key, bytes) in &published {
        let e: EnrichedPlay = serde_json::from_slice(bytes).unwrap();
        assert_eq!(key, &e.member_id.to_string(), "keyed by member_id");
        first += usize::from(e.revision == 0);
        let newer = latest
            .get(&e.event_id)
            .is_none_or(|l| l.revision < e.revision);
        if newer {
            latest.insert(e.event_id.clone(), e);
        }
    }
    assert_eq!(first, naive.len(), "one revision 0 per counted play");
    assert_eq!(latest.len(), naive.len());
    for a in &naive {
        let e = &latest[&a.play_event_id];
        assert_eq!((&e.sop_row, &e.sod_row), (&a.sop_row, &a.sod_row), "{e:?}");
        assert_eq!(e.sop.as_ref().map(|s| &s.event_id), a.sop_event_id.as_ref());
        assert_eq!(e.sod.as_ref().map(|s| &s.event_id), a.sod_event_id.as_ref());
    }
    for f in &imp_files {
        let rel = f
            .strip_prefix(archive.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(rel.contains("/date=2026-11-21/hour="), "{rel}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn all_impressions_before_any_play_gives_the_reference_views(pool: PgPool) {
    let t = topics("impfirst");
    create_topics(&t).await;
    let w = workload(2, 300, start(), 2);
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let archive = tempfile::tempdir().unwrap();
    run_until_idle(config(&t, "g-impfirst", archive.path()), &pool).await;
    assert_views_exact(&pool, &w).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn all_plays_before_any_impression_gives_the_reference_views(pool: PgPool) {
    let t = topics("playfirst");
    create_topics(&t).await;
    let w = workload(3, 300, start(), 2);
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    let archive = tempfile::tempdir().unwrap();
    run_until_idle(config(&t, "g-playfirst", archive.path()), &pool).await;
    assert_views_exact(&pool, &w).await;
}
