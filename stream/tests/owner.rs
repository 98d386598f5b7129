//! One realtime view, one owner (docs/reference.md §4): a stream of a second consumer group refuses to
//! start and changes nothing; `--take-over` hands the view over so the new group continues exactly
//! where the old one stood (nothing counted twice, nothing skipped) and a still-running member of
//! the old group is fenced. Also the archive progress the flush records for the batch gate.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use playsource_store::progress::archive_key;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// archive, topic, partition, high_water, caught_up_at.
type ProgressRow = (
    String,
    String,
    i32,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

/// Each topic's messages split at the workload's event-time midpoint.
fn halves(w: &Workload) -> [(Msgs, Msgs); 2] {
    let mid = Ts(start().0 + 2 * 3_600_000);
    let (i1, i2): (Vec<_>, Vec<_>) = w.impressions.iter().cloned().partition(|i| i.ts < mid);
    let (p1, p2): (Vec<_>, Vec<_>) = w.plays.iter().cloned().partition(|p| p.ts < mid);
    [
        (imp_msgs(&i1), play_msgs(&p1)),
        (imp_msgs(&i2), play_msgs(&p2)),
    ]
}

/// Two consumer group ids of this test's own: tests run in parallel on one broker, and a group
/// shared by two tests would rebalance their members against each other.
fn groups(t: &playsource_kafka::Topics) -> (String, String) {
    (format!("a-{}", t.plays), format!("b-{}", t.plays))
}

async fn feeder(pool: &PgPool) -> Option<String> {
    playsource_store::feeder::current(pool).await.unwrap()
}

async fn committed(pool: &PgPool, group: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_second_group_is_refused_and_a_take_over_continues_exactly(pool: PgPool) {
    let t = topics("owner-takeover");
    let (ga, gb) = groups(&t);
    create_topics(&t).await;
    let w = workload(21, 600, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();
    let first = run_until_idle(config(&t, &ga, archive.path()), &pool).await;
    assert_eq!(first.consumed as usize, i1.len() + p1.len());
    assert_eq!(feeder(&pool).await.as_deref(), Some(ga.as_str()));
    let before = rt_hourly(&pool).await;

    // A blue/green deploy with a new group id, without --take-over: refused, nothing changes.
    let err = playsource_stream::run(
        config(&t, &gb, archive.path()),
        pool.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("fed by consumer group `{ga}`")) && err.contains("--take-over"),
        "unclear refusal: {err}"
    );
    assert_eq!(
        rt_hourly(&pool).await,
        before,
        "the refused group changed the view"
    );
    assert_eq!(committed(&pool, &gb).await, 0);
    assert_eq!(feeder(&pool).await.as_deref(), Some(ga.as_str()));

    // A restart of the feeding group itself is not refused.
    let again = run_until_idle(config(&t, &ga, archive.path()), &pool).await;
    assert_eq!(again.consumed, 0);

    // --take-over: group B continues from A's offsets with the rest of the workload.
    produce_raw(&p, &t.impressions, &i2).await;
    produce_raw(&p, &t.plays, &p2).await;
    let mut cfg = config(&t, &gb, archive.path());
    cfg.take_over = true;
    let second = run_until_idle(cfg, &pool).await;
    assert_eq!(
        second.consumed as usize,
        i2.len() + p2.len(),
        "the new group reads only what the old one had not committed"
    );
    assert_eq!(feeder(&pool).await.as_deref(), Some(gb.as_str()));
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);

    // The old group now refuses to start (the view is B's), naming B.
    let err = playsource_stream::run(
        config(&t, &ga, archive.path()),
        pool.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("fed by consumer group `{gb}`")),
        "{err}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_live_member_of_the_old_group_is_fenced_by_a_take_over(pool: PgPool) {
    let t = topics("owner-live");
    let (ga, gb) = groups(&t);
    create_topics(&t).await;
    let w = workload(22, 600, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    let [(i1, p1), (i2, p2)] = halves(&w);
    let p = producer();
    produce_raw(&p, &t.impressions, &i1).await;
    produce_raw(&p, &t.plays, &p1).await;
    let archive = tempfile::tempdir().unwrap();

    // Group A runs live (no idle exit) and commits the first half.
    let mut cfg_a = config(&t, &ga, archive.path());
    cfg_a.exit_when_idle = None;
    let stop_a = CancellationToken::new();
    let live_a = tokio::spawn(playsource_stream::run(cfg_a, pool.clone(), stop_a.clone()));
    let want = (i1.len() + p1.len()) as i64;
    tokio::time::timeout(Duration::from_secs(120), async {
        while committed(&pool, &ga).await < want {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("group A did not commit the first half");

    // Group B takes over while A still runs; then the rest of the workload arrives.
    let mut cfg_b = config(&t, &gb, archive.path());
    cfg_b.take_over = true;
    let pool_b = pool.clone();
    let b = tokio::spawn(async move { run_until_idle(cfg_b, &pool_b).await });
    tokio::time::timeout(Duration::from_secs(60), async {
        while feeder(&pool).await.as_deref() != Some(gb.as_str()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("group B did not take over");
    produce_raw(&p, &t.impressions, &i2).await;
    produce_raw(&p, &t.plays, &p2).await;
    let second = b.await.unwrap();
    assert_eq!(second.consumed as usize, i2.len() + p2.len());

    // A read the second half too, but every flush of it was refused as a fencing.
    stop_a.cancel();
    match live_a.await.unwrap() {
        Ok(summary) => assert!(
            !summary.fenced.is_empty(),
            "the old group's flush after the take-over was not fenced"
        ),
        Err(e) => assert!(
            e.to_string()
                .contains(&format!("fed by consumer group `{gb}`")),
            "{e}"
        ),
    }
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_stream_records_how_far_it_archived(pool: PgPool) {
    let t = topics("owner-progress");
    create_topics(&t).await;
    let w = workload(23, 300, start(), 3);
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let archive = tempfile::tempdir().unwrap();
    let before = chrono::Utc::now();
    run_until_idle(config(&t, "g-p", archive.path()), &pool).await;
    let rows: Vec<ProgressRow> = sqlx::query_as(
        "SELECT archive, topic, partition, high_water, caught_up_at FROM archive_progress
             ORDER BY topic, partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    let key = archive_key(archive.path());
    let last_ts = |topic: &str| {
        if topic == t.plays {
            w.plays.iter().map(|p| p.ts.0).max()
        } else {
            w.impressions.iter().map(|i| i.ts.0).max()
        }
    };
    for (a, topic, part, hw, caught_up) in &rows {
        assert_eq!(
            a, &key,
            "progress is recorded under the archive's absolute path"
        );
        let hw = hw.expect("an archived partition records its event-time high water");
        assert!(hw.timestamp_millis() <= last_ts(topic).unwrap());
        assert!(hw.timestamp_millis() >= start().0, "{topic}/{part}");
        let caught_up = caught_up.expect("a partition read to its end records when");
        assert!(
            caught_up >= before,
            "{topic}/{part} read to its end before the run started?"
        );
    }
    let topics: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert!(topics.contains(&t.impressions.as_str()) && topics.contains(&t.plays.as_str()));
}
