//! The raw archive on a real S3-protocol server (the one `scripts/services.sh` starts:
//! `PLAYSOURCE_S3_ENDPOINT`, default http://127.0.0.1:9000, bucket `PLAYSOURCE_S3_BUCKET`, default
//! `playsource-test`), reached as users reach it: an `s3://bucket/prefix` archive configured by
//! the `AWS_*` variables and `AWS_ENDPOINT_URL`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use playsource_archive::store::test_support;
use playsource_archive::ArchiveStore;
use playsource_domain::{decode_play, Day, Ts};
use playsource_stream::archive_sink::{clear_staging, publish, write_staged, ArchiveBuffer};
use sqlx::PgPool;

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap()
}

/// A fresh `s3://` archive on the test server, opened from the `AWS_*` variables (the shared
/// set-up of `playsource_archive::store::test_support`); `None` when the S3 tests are skipped.
fn s3_archive(test: &str) -> Option<ArchiveStore> {
    test_support::fresh_archive(&format!("stream-{test}")).map(|(_, store)| store)
}

/// The days the workloads here fall in.
fn days() -> std::ops::RangeInclusive<Day> {
    Day::parse("2026-11-20").unwrap()..=Day::parse("2026-11-23").unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn stream_archives_each_message_once_on_s3(pool: PgPool) {
    let t = topics("s3arch");
    create_topics(&t).await;
    let w = workload(3, 200, start(), 3);
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let Some(store) = s3_archive("pipeline") else {
        return;
    };
    let group = format!("g-{}", t.plays);
    let mut cfg = config(&t, &group, std::path::Path::new("unused"));
    cfg.archive = store.clone();
    let summary = run_until_idle(cfg, &pool).await;
    assert_eq!(
        summary.consumed as usize,
        w.impressions.len() + w.plays.len()
    );
    assert_views_exact(&pool, &w).await;

    // Each message once (redeliveries are messages too), under the Hive layout of the bucket.
    let plays = archived_ids(&store, &t.plays, true, days());
    assert_eq!(
        plays,
        id_counts(w.plays.iter().map(|e| e.event_id.as_ref()))
    );
    let imps = archived_ids(&store, &t.impressions, false, days());
    assert_eq!(
        imps,
        id_counts(w.impressions.iter().map(|e| e.event_id.as_ref()))
    );
    let staged = store.list("_staging").unwrap();
    assert!(staged.is_empty(), "left in staging: {staged:?}");
}

#[test]
fn a_publish_cut_short_on_s3_is_finished_by_the_next_owner() {
    let Some(store) = s3_archive("recover") else {
        return;
    };
    let mut buf = ArchiveBuffer::default();
    let play = |id: &str, hour: u32| {
        format!(
            r#"{{"event_id":"{id}","ts":"2026-11-21T{hour:02}:00:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}}"#
        )
    };
    let (a, b, c) = (play("a", 10), play("b", 11), play("c", 10));
    buf.push_play(&decode_play(a.as_bytes()).unwrap(), 3, 10);
    buf.push_play(&decode_play(b.as_bytes()).unwrap(), 3, 11);
    buf.push_play(&decode_play(c.as_bytes()).unwrap(), 3, 12);
    let topics = playsource_domain::PerTopic::new("imps".to_string(), "plays".to_string());
    let committed = write_staged(&store, "g", 3, 7, &topics, buf.take()).unwrap();
    assert_eq!(committed.len(), 2);
    // A later flush that never committed (the owner died before its transaction).
    buf.push_play(&decode_play(a.as_bytes()).unwrap(), 3, 13);
    let uncommitted = write_staged(&store, "g", 3, 7, &topics, buf.take()).unwrap();
    let pairs: Vec<(String, String)> = committed
        .iter()
        .map(|s| (s.staged.clone(), s.final_path.clone()))
        .collect();
    // The owner is killed after publishing the first file only.
    publish(&store, &pairs[..1]).unwrap();
    // The new owner publishes what the flush transaction lists, then clears staging.
    publish(&store, &pairs).unwrap();
    publish(&store, &pairs).unwrap();
    clear_staging(&store, "g", 3).unwrap();
    assert_eq!(
        archived_ids(&store, "plays", true, days()),
        id_counts(["a", "b", "c"].into_iter())
    );
    assert!(store.list("_staging").unwrap().is_empty());
    assert!(!store.exists(&uncommitted[0].staged).unwrap());
    assert!(!store.exists(&uncommitted[0].final_path).unwrap());
}
