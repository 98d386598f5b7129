//! Hostile input (issue #15): an event from a broken clock (year 2099) and a rejected message too
//! large for the dead-letter topic, both produced before a clean workload. The clean events are
//! counted exactly, the hostile ones land on the DLQ (the large one cut to fit), no watermark
//! moves to 2099 and the stream keeps running. A missing DLQ topic is an error at start-up.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use playsource_stream::ExitReason;
use sqlx::PgPool;

const START: &str = "2026-11-21T10:00:00Z";

/// A play whose `ts` is in 2099 (a producer with a broken clock), for member 7.
fn play_2099() -> (String, Vec<u8>) {
    (
        "7".into(),
        br#"{"event_id":"p-2099","ts":"2099-01-01T00:00:00Z","member_id":7,"video_id":1,"country":"US","device":"tv"}"#.to_vec(),
    )
}

/// An invalid impression of `size` bytes (no `ts`, a long unknown field).
fn huge_invalid(size: usize) -> (String, Vec<u8>) {
    let head = br#"{"event_id":"huge","pad":""#;
    let mut v = head.to_vec();
    v.resize(size - 2, b'x');
    v.extend_from_slice(b"\"}");
    ("9".into(), v)
}

/// A producer allowed to send messages far past Kafka's default limit.
fn big_producer() -> rdkafka::producer::FutureProducer {
    playsource_kafka::producer_with_max_bytes(BROKERS, 20_000_000).unwrap()
}

/// The DLQ's messages until `want` were read or 30 s passed.
fn read_dlq(topic: &str, want: usize) -> Vec<Record> {
    read_records(topic, want, Duration::from_secs(30))
}

/// The greatest realtime high water the stream committed (what `/v1/freshness` reports).
async fn max_high_water(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(high_water)) * 1000)::bigint FROM stream_offsets",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

fn ts(s: &str) -> Ts {
    Ts::parse_rfc3339(s).unwrap()
}

/// Produces `first_imps` and `first_plays`, then workload `w`.
async fn produce_after(
    t: &playsource_kafka::Topics,
    w: &Workload,
    first_imps: &[(String, Vec<u8>)],
    first_plays: &[(String, Vec<u8>)],
) {
    let p = big_producer();
    produce_raw(&p, &t.impressions, first_imps).await;
    produce_raw(&p, &t.plays, first_plays).await;
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
}

fn assert_future_dead_letter(d: &Record, t: &playsource_kafka::Topics) {
    assert_eq!(d.key, "7");
    assert_eq!(d.value, play_2099().1, "the original bytes");
    let error = &d.headers["error"];
    assert!(error.contains("`ts`"), "{error}");
    assert!(error.contains("2099-01-01T00:00:00.000Z"), "{error}");
    assert!(error.contains("ahead"), "{error}");
    assert!(d.headers["source"].starts_with(&format!("{}/", t.plays)));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_play_from_2099_produced_first_is_rejected_and_moves_no_watermark(pool: PgPool) {
    let t = topics("future");
    create_topics(&t).await;
    let w = workload(15, 200, ts(START), 1);
    load_catalog(&pool, &w.catalog).await;
    produce_after(&t, &w, &[], &[play_2099()]).await;
    let archive = tempfile::tempdir().unwrap();
    let summary = run_until_idle(config(&t, "g-future", archive.path()), &pool).await;
    assert_eq!(summary.exit, ExitReason::Idle);
    assert_views_exact(&pool, &w).await;
    // The archive holds the workload only, so batch agrees.
    archive_exact(archive.path(), &t, &w);
    let hw = max_high_water(&pool).await.unwrap();
    assert!(hw < ts("2027-01-01T00:00:00Z").0, "high water {hw}");
    let dead = read_dlq(&t.dlq, 1);
    assert_eq!(dead.len(), 1);
    assert_future_dead_letter(&dead[0], &t);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_restart_replays_the_2099_play_and_rejects_it_again(pool: PgPool) {
    let t = topics("future-replay");
    create_topics(&t).await;
    let w = workload(16, 200, ts(START), 1);
    load_catalog(&pool, &w.catalog).await;
    let p = big_producer();
    produce_raw(&p, &t.plays, &[play_2099()]).await;
    let half = w.impressions.len() / 2;
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions[..half])).await;
    let archive = tempfile::tempdir().unwrap();
    let cfg = config(&t, "g-future-replay", archive.path());
    run_until_idle(cfg.clone(), &pool).await;
    // As after an abort before any checkpoint: the restart rebuilds its engines by replay, from
    // the earliest offsets, through the 2099 play.
    sqlx::query("DELETE FROM stream_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions[half..])).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let summary = run_until_idle(cfg, &pool).await;
    assert!(summary.replayed > 0, "the restart replayed nothing");
    assert_views_exact(&pool, &w).await;
    let hw = max_high_water(&pool).await.unwrap();
    assert!(hw < ts("2027-01-01T00:00:00Z").0, "high water {hw}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rejected_message_too_large_for_the_dlq_goes_there_cut_to_fit(pool: PgPool) {
    let t = topics("huge");
    create_topics(&t).await;
    let w = workload(17, 200, ts(START), 1);
    load_catalog(&pool, &w.catalog).await;
    let huge = huge_invalid(1_200_000);
    produce_after(&t, &w, std::slice::from_ref(&huge), &[]).await;
    let archive = tempfile::tempdir().unwrap();
    let summary = run_until_idle(config(&t, "g-huge", archive.path()), &pool).await;
    assert_eq!(summary.exit, ExitReason::Idle);
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
    let dead = read_dlq(&t.dlq, 1);
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(d.key, "9");
    assert_eq!(d.headers["truncated"], "1200000");
    assert!(d.headers["error"].contains("`ts`"), "{:?}", d.headers);
    assert!(d.headers["source"].starts_with(&format!("{}/", t.impressions)));
    // Cut to fit Kafka's default max.message.bytes (tansu reports none), a prefix of the original.
    assert!(d.value.len() < playsource_stream::dlq::DEFAULT_MAX_MESSAGE_BYTES);
    assert!(d.value.len() > 1_000_000, "cut to {} bytes", d.value.len());
    assert_eq!(&huge.1[..d.value.len()], &d.value[..]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_missing_dlq_topic_is_an_error_at_start_up(pool: PgPool) {
    let t = topics("nodlq");
    create_topics(&t).await;
    let mut cfg = config(&t, "g-nodlq", tempfile::tempdir().unwrap().path());
    cfg.topics.dlq = format!("{}-missing", t.dlq);
    let run = playsource_stream::run(cfg, pool, Default::default());
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("start-up did not fail in time")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "dead-letter topic `{}-missing` does not exist",
            t.dlq
        )),
        "{err}"
    );
    assert!(err.contains("playsource init"), "{err}");
}

/// Issue #15's "done when": both hostile messages first, then a clean workload.
#[sqlx::test(migrations = "../migrations")]
async fn hostile_messages_first_leave_the_views_exact_and_the_stream_running(pool: PgPool) {
    let t = topics("hostile");
    create_topics(&t).await;
    let w = workload(18, 300, ts(START), 2);
    load_catalog(&pool, &w.catalog).await;
    let huge = huge_invalid(1_000_000);
    produce_after(&t, &w, std::slice::from_ref(&huge), &[play_2099()]).await;
    let archive = tempfile::tempdir().unwrap();
    let summary = run_until_idle(config(&t, "g-hostile", archive.path()), &pool).await;
    assert_eq!(summary.exit, ExitReason::Idle, "the stream kept running");
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
    let hw = max_high_water(&pool).await.unwrap();
    assert!(hw < ts("2027-01-01T00:00:00Z").0, "high water {hw}");
    let dead = read_dlq(&t.dlq, 2);
    assert_eq!(dead.len(), 2);
    let future = dead.iter().find(|d| d.key == "7").unwrap();
    assert_future_dead_letter(future, &t);
    let big = dead.iter().find(|d| d.key == "9").unwrap();
    assert!(big.headers.contains_key("error"));
    assert!(big.headers.contains_key("source"));
    assert_eq!(big.value, huge.1, "1 MB fits Kafka's default limit whole");
}
