//! Fast takeover after `kill -9` (docs/stream.md, "Fast takeover"): a replica restarted under the
//! same `--replica-name` removes its dead predecessor from the group (LeaveGroup) and gets the
//! partitions at once, instead of waiting for the broker to expire it (a 45 s session timeout
//! here; on tansu 0.6 a member that joins before then may even be left without partitions).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use playsource_domain::Ts;
use sqlx::PgPool;

/// Kills the worker if the test fails while it runs.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_replica_restarted_under_its_name_takes_over_without_waiting_for_the_session(
    pool: PgPool,
) {
    let t = topics("takeover");
    create_topics(&t).await;
    let w = workload(
        9,
        400,
        Ts::parse_rfc3339("2026-11-21T06:00:00Z").unwrap(),
        4,
    );
    load_catalog(&pool, &w.catalog).await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    let replica = format!("r-{}", t.plays);
    let imps = imp_msgs(&w.impressions);
    let plays = play_msgs(&w.plays);
    let (hi, hp) = (imps.len() / 2, plays.len() / 2);
    let p = producer();
    produce_raw(&p, &t.impressions, &imps[..hi]).await;
    produce_raw(&p, &t.plays, &plays[..hp]).await;
    let log = tempfile::NamedTempFile::new().unwrap();
    // The first replica creates the group with the default 45 s session timeout.
    let mut first = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_playsource-stream-worker"))
            .env("DATABASE_URL", &url)
            .env("KAFKA_BROKERS", BROKERS)
            .env("IMPRESSIONS_TOPIC", &t.impressions)
            .env("PLAYS_TOPIC", &t.plays)
            .env("ENRICHED_TOPIC", &t.enriched)
            .env("DLQ_TOPIC", &t.dlq)
            .env("PLAYSOURCE_GROUP_ID", &group)
            .env("PLAYSOURCE_ARCHIVE", archive.path())
            .env("PLAYSOURCE_FLUSH_INTERVAL_MS", "150")
            .env("PLAYSOURCE_REPLICA_NAME", &replica)
            .env("RUST_LOG", "playsource_stream=info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    // Kill it once it holds every partition and committed the first half.
    let want = i64::try_from(hi + hp).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
        )
        .bind(&group)
        .fetch_one(&pool)
        .await
        .unwrap();
        if n >= want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first replica never committed the first half; its log: {}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.0.kill().unwrap(); // SIGKILL: it never leaves the group by itself
    first.0.wait().unwrap();
    let killed = Instant::now();
    produce_raw(&p, &t.impressions, &imps[hi..]).await;
    produce_raw(&p, &t.plays, &plays[hp..]).await;
    // Restarted at once under the same name: everything is in the view well before the dead
    // member's 45 s session would have run out.
    let mut cfg = config(&t, &group, archive.path());
    cfg.replica_name = Some(replica);
    let summary = run_until_idle_within(cfg, &pool, Duration::from_secs(40)).await;
    let took = killed.elapsed();
    assert!(summary.consumed > 0);
    assert!(
        took < Duration::from_secs(30),
        "the restart took {took:?}: it waited for the session timeout"
    );
    assert_views_exact(&pool, &w).await;
    archive_exact(archive.path(), &t, &w);
}
