//! Malformed messages go to the dead-letter topic with `error` and `source` headers while their
//! neighbours are counted; a stale lease epoch cannot commit.
#![allow(clippy::unwrap_used, clippy::useless_vec)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::aggregate::{Counts, PlayFacts};
use playsource_domain::{Ts, VideoId};
use playsource_stream::sink_postgres::{self, OffsetRow, UnitCommit};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn malformed_messages_go_to_the_dlq_and_neighbours_are_counted(pool: PgPool) {
    let t = topics("dlq");
    create_topics(&t).await;
    let w = workload(
        4,
        200,
        Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap(),
        1,
    );
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    let mut imps = imp_msgs(&w.impressions);
    let mut plays = play_msgs(&w.plays);
    // Bad messages between good ones, keyed like their neighbours.
    let bad_imps = vec![
        ("7".to_string(), b"not json".to_vec()),
        ("7".to_string(), br#"{"event_id":"x","ts":"2026-11-21T10:00:00Z"}"#.to_vec()),
        ("9".to_string(), br#"{"event_id":"y","ts":"2026-11-21T10:00:00Z","member_id":9,"video_id":1,"page":"home","row_type":"unattributed","row_index":0,"rank":0,"country":"US","device":"tv"}"#.to_vec()),
    ];
    let bad_plays = vec![
        ("3".to_string(), br#"{"event_id":"z","ts":"yesterday","member_id":3,"video_id":1,"country":"US","device":"tv"}"#.to_vec()),
        ("3".to_string(), br#"{"event_id":"w","ts":"2026-11-21T10:00:00Z","member_id":0,"video_id":1,"country":"US","device":"tv"}"#.to_vec()),
    ];
    for (i, b) in bad_imps.iter().enumerate() {
        imps.insert(10 + i * 40, b.clone());
    }
    for (i, b) in bad_plays.iter().enumerate() {
        plays.insert(5 + i * 30, b.clone());
    }
    produce_raw(&p, &t.impressions, &imps).await;
    produce_raw(&p, &t.plays, &plays).await;
    // A message with no value at all (a tombstone).
    let tombstone: rdkafka::producer::FutureRecord<'_, str, [u8]> =
        rdkafka::producer::FutureRecord::to(&t.plays).key("4");
    p.send(tombstone, Duration::from_secs(10)).await.unwrap();
    let archive = tempfile::tempdir().unwrap();
    let summary = run_until_idle(config(&t, "g-dlq", archive.path()), &pool).await;
    // The neighbours are counted exactly.
    assert_views_exact(&pool, &w).await;
    assert_eq!(summary.consumed as usize, imps.len() + plays.len() + 1);
    // The archive holds only the valid messages.
    let (_, imp_rows) = topic_rows(archive.path(), &t.impressions);
    assert_eq!(imp_rows as usize, w.impressions.len());

    // Every rejected message is on the DLQ with its key, bytes and headers.
    let c: BaseConsumer = playsource_kafka::client_config(BROKERS)
        .set("group.id", format!("check-{}", t.dlq))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for part in 0..PARTITIONS {
        tpl.add_partition_offset(&t.dlq, part, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let want = bad_imps.len() + bad_plays.len() + 1;
    while got.len() < want && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let h = m.headers().unwrap();
            let mut error = None;
            let mut source = None;
            for hd in h.iter() {
                let v = String::from_utf8(hd.value.unwrap().to_vec()).unwrap();
                match hd.key {
                    "error" => error = Some(v),
                    "source" => source = Some(v),
                    _ => {}
                }
            }
            got.push((
                String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
                error.unwrap(),
                source.unwrap(),
            ));
        }
    }
    assert_eq!(got.len(), want, "{got:?}");
    let tomb = got.iter().find(|g| g.1.is_empty()).unwrap();
    assert_eq!(tomb.0, "4");
    assert!(tomb.2.contains("null"), "{}", tomb.2);
    assert!(tomb.3.starts_with(&format!("{}/", t.plays)), "{}", tomb.3);
    for (key, bytes) in bad_imps.iter().chain(bad_plays.iter()) {
        let hit = got
            .iter()
            .find(|g| &g.1 == bytes)
            .unwrap_or_else(|| panic!("missing {key}"));
        assert_eq!(&hit.0, key);
        let topic = if bad_imps.iter().any(|b| &b.1 == bytes) {
            &t.impressions
        } else {
            &t.plays
        };
        assert!(hit.3.starts_with(&format!("{topic}/")), "source {}", hit.3);
        assert_eq!(hit.3.split('/').count(), 3);
        assert!(hit.2.contains("field"), "error {}", hit.2);
    }
    let unattributed = got.iter().find(|g| g.1 == bad_imps[2].1).unwrap();
    assert!(unattributed.2.contains("row_type"), "{}", unattributed.2);
    let bad_id = got.iter().find(|g| g.1 == bad_plays[1].1).unwrap();
    assert!(bad_id.2.contains("member_id"), "{}", bad_id.2);
}

fn one_play() -> Counts {
    let mut c = Counts::default();
    c.add(
        &PlayFacts {
            ts: Ts::parse_rfc3339("2026-11-21T10:30:00Z").unwrap(),
            video_id: VideoId(5),
            country: "US",
            device: "tv",
            sop_row: "top_picks",
            sod_row: "billboard",
            genre: "drama",
            new_launch: false,
        },
        1,
    );
    c
}

fn commit_of(partition: i32, epoch: i64, next: i64) -> UnitCommit {
    UnitCommit {
        partition,
        epoch,
        counts: one_play(),
        too_late: Default::default(),
        offsets: vec![OffsetRow {
            topic: "plays".into(),
            next_offset: next,
            high_water: None,
        }],
        checkpoint: None,
        staged: Vec::new(),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_epoch_cannot_commit(pool: PgPool) {
    let topics = playsource_domain::PerTopic::new("impressions".to_string(), "plays".to_string());
    let old = sink_postgres::acquire_lease(&pool, "g", 3, "old-owner")
        .await
        .unwrap();
    let other = sink_postgres::acquire_lease(&pool, "g", 1, "old-owner")
        .await
        .unwrap();
    let new = sink_postgres::acquire_lease(&pool, "g", 3, "new-owner")
        .await
        .unwrap();
    assert!(new > old);

    // The stale owner flushes partitions 3 (taken over) and 1 (still its own).
    let mut units = vec![commit_of(3, old, 100), commit_of(1, other, 7)];
    let outcome = sink_postgres::commit(&pool, "g", &topics, &mut units, false)
        .await
        .unwrap();
    assert_eq!(outcome.fenced, vec![3]);
    assert_eq!(units.len(), 1);
    let offsets: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, next_offset FROM stream_offsets WHERE group_id = 'g' ORDER BY partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        offsets,
        vec![(1, 7)],
        "only the partition still owned is committed"
    );
    let plays: i64 = sqlx::query_scalar("SELECT SUM(plays)::int8 FROM rt_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(plays, 1, "the fenced unit's deltas were not written");

    // The new owner commits.
    let mut units = vec![commit_of(3, new, 100)];
    let outcome = sink_postgres::commit(&pool, "g", &topics, &mut units, false)
        .await
        .unwrap();
    assert!(outcome.fenced.is_empty());
    let plays: i64 = sqlx::query_scalar("SELECT SUM(plays)::int8 FROM rt_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(plays, 2);
    let owner: String = sqlx::query_scalar(
        "SELECT owner FROM stream_leases WHERE group_id = 'g' AND partition = 3",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(owner, "new-owner");
}

/// A commit retried after a failure it cannot tell from success (the connection lost during
/// COMMIT) adds nothing twice: the landed unit is recognised by its stored offsets.
#[sqlx::test(migrations = "../migrations")]
async fn a_retried_commit_that_had_landed_is_not_added_twice(pool: PgPool) {
    let topics = playsource_domain::PerTopic::new("impressions".to_string(), "plays".to_string());
    let e3 = sink_postgres::acquire_lease(&pool, "g", 3, "me")
        .await
        .unwrap();
    let e1 = sink_postgres::acquire_lease(&pool, "g", 1, "me")
        .await
        .unwrap();
    let sum = || async {
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(SUM(plays), 0)::int8 FROM rt_hourly")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // The first attempt landed for both units.
    let mut units = vec![commit_of(3, e3, 100), commit_of(1, e1, 7)];
    sink_postgres::commit(&pool, "g", &topics, &mut units, false)
        .await
        .unwrap();
    assert_eq!(sum().await, 2);
    // Its retry changes nothing.
    sink_postgres::commit(&pool, "g", &topics, &mut units, true)
        .await
        .unwrap();
    assert_eq!(sum().await, 2, "a landed commit was added again");
    // A retry of a commit that did not land is written: partition 3 moves on, 1 stays.
    let mut units = vec![commit_of(3, e3, 150), commit_of(1, e1, 7)];
    sink_postgres::commit(&pool, "g", &topics, &mut units, true)
        .await
        .unwrap();
    assert_eq!(
        sum().await,
        3,
        "partition 3's new deltas are written, 1's landed ones are not"
    );
    let next: i64 = sqlx::query_scalar(
        "SELECT next_offset FROM stream_offsets WHERE group_id = 'g' AND partition = 3",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(next, 150);
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_or_mismatched_topics_are_clear_errors(pool: PgPool) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let t = topics("badtopics");
    let archive = tempfile::tempdir().unwrap();
    // Neither input topic exists.
    let err = playsource_stream::run(
        config(&t, "g-bad", archive.path()),
        pool.clone(),
        Default::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("does not exist") && err.contains(&t.impressions),
        "{err}"
    );
    // Both exist with different partition counts.
    let admin: AdminClient<DefaultClientContext> =
        playsource_kafka::client_config(BROKERS).create().unwrap();
    let new = [
        NewTopic::new(&t.impressions, 2, TopicReplication::Fixed(1)),
        NewTopic::new(&t.plays, 3, TopicReplication::Fixed(1)),
    ];
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let mut err = String::new();
    // Metadata can lag a moment behind topic creation.
    for _ in 0..50 {
        err = playsource_stream::run(
            config(&t, "g-bad", archive.path()),
            pool.clone(),
            Default::default(),
        )
        .await
        .unwrap_err()
        .to_string();
        if err.contains("co-partitioned") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(err.contains("co-partitioned"), "{err}");
}

/// A unit taken over while its old owner is writing its archive files: the new owner clears the
/// unit's staging folder, so the old owner's write fails. That is a fencing, not an archive
/// failure: the old owner drops the unit and carries on (it used to exit). The same failed write
/// while the unit is still its own is the archive error it is.
#[sqlx::test(migrations = "../migrations")]
async fn a_staging_write_racing_a_takeover_is_fenced_not_fatal(pool: PgPool) {
    use playsource_stream::archive_sink::{unit_staging_dir, ArchiveBuffer};
    use playsource_stream::dlq::Publisher;
    use playsource_stream::flush::{flush, Shared};
    use playsource_stream::retry::RetryPolicy;
    use std::sync::Arc;

    let t = topics("race");
    let archive = tempfile::tempdir().unwrap();
    let cfg = config(&t, "g-race", archive.path());
    let shared = Arc::new(Shared {
        publisher: Publisher::new(BROKERS).unwrap(),
        topics: playsource_domain::PerTopic::new(t.impressions.clone(), t.plays.clone()),
        pool: pool.clone(),
        retry: RetryPolicy {
            budget: Duration::from_secs(5),
            cancel: Default::default(),
        },
        cfg,
        compaction: Default::default(),
    });
    let old = sink_postgres::acquire_lease(&pool, "g-race", 2, "old-owner")
        .await
        .unwrap();
    // The unit's staging folder cannot be written: a file stands where its folder goes (as if
    // the folder were removed under the writer).
    let staging = archive.path().join(unit_staging_dir("g-race", 2));
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::write(&staging, b"not a folder").unwrap();
    let unit = |epoch| {
        let mut buf = ArchiveBuffer::default();
        let play = br#"{"event_id":"a","ts":"2026-11-21T10:00:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}"#;
        buf.push_play(&playsource_domain::decode_play(play).unwrap(), 2, 40);
        playsource_stream::unit::UnitFlush {
            commit: commit_of(2, epoch, 41),
            archive: buf.take(),
            dlq: Vec::new(),
            enriched: Vec::new(),
            catalog_use: None,
            checkpoint: None,
        }
    };

    // Still the owner: the failed write is an error naming the path.
    let err = match flush(Arc::clone(&shared), vec![unit(old)]).await {
        Ok(_) => panic!("a failed archive write of an owned unit must fail the flush"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("p2"), "{err}");

    // Taken over: the same failure fences the unit; nothing of it is committed.
    let new = sink_postgres::acquire_lease(&pool, "g-race", 2, "new-owner")
        .await
        .unwrap();
    let done = flush(Arc::clone(&shared), vec![unit(old)]).await.unwrap();
    assert_eq!(done.fenced, vec![(2, old)]);
    assert!(done.committed.is_empty());
    let offsets: i64 = sqlx::query_scalar("SELECT count(*) FROM stream_offsets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(offsets, 0, "the fenced unit wrote nothing");
    assert!(new > old);
}
