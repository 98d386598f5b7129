//! `kill -9` of a real stream process at arbitrary points loses nothing and counts nothing twice.
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

/// The workers' group session timeout: short, so the test need not wait 45 s after each kill.
const SESSION: Duration = Duration::from_secs(6);

#[sqlx::test(migrations = "../migrations")]
async fn kill_9_mid_run_loses_nothing_and_counts_nothing_twice(pool: PgPool) {
    let t = topics("kill");
    create_topics(&t).await;
    let w = workload(
        7,
        900,
        Ts::parse_rfc3339("2026-11-21T06:00:00Z").unwrap(),
        5,
    );
    load_catalog(&pool, &w.catalog).await;
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let archive = tempfile::tempdir().unwrap();
    // The workers' logs; set PLAYSOURCE_KEEP_LOGS to keep them after the test.
    let logs_dir = tempfile::Builder::new()
        .prefix("kill-logs")
        .tempdir()
        .unwrap();
    let (logs, _guard) = if std::env::var_os("PLAYSOURCE_KEEP_LOGS").is_some() {
        let kept = logs_dir.keep();
        eprintln!("worker logs in {}", kept.display());
        (kept, None)
    } else {
        (logs_dir.path().to_path_buf(), Some(logs_dir))
    };
    let group = format!("g-{}", t.plays);
    let imps = imp_msgs(&w.impressions);
    let plays = play_msgs(&w.plays);
    let p = producer();
    let rounds = 3;
    let (ci, cp) = (imps.len().div_ceil(rounds), plays.len().div_ceil(rounds));
    let mut last_commit = 0i64;
    for r in 0..rounds {
        produce_raw(
            &p,
            &t.impressions,
            &imps[(r * ci).min(imps.len())..((r + 1) * ci).min(imps.len())],
        )
        .await;
        produce_raw(
            &p,
            &t.plays,
            &plays[(r * cp).min(plays.len())..((r + 1) * cp).min(plays.len())],
        )
        .await;
        let mut child = KillOnDrop(
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
                .env(
                    "PLAYSOURCE_SESSION_TIMEOUT_MS",
                    SESSION.as_millis().to_string(),
                )
                .env(
                    "PLAYSOURCE_SNAPSHOT_INTERVAL_SECS",
                    if r % 2 == 0 { "0" } else { "3600" },
                )
                .env("RUST_LOG", "playsource_stream=debug")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(logs.join(format!("worker-{r}.log"))).unwrap())
                .spawn()
                .unwrap(),
        );
        // Kill it once it committed something new (at a different moment each round).
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(next_offset), 0)::int8 FROM stream_offsets WHERE group_id = $1",
            )
            .bind(&group)
            .fetch_one(&pool)
            .await
            .unwrap();
            // Kill only once this worker holds every partition (a stable group), so the next
            // run waits for one session timeout rather than a rebalance with several dead members.
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM stream_leases WHERE group_id = $1 AND owner LIKE $2",
            )
            .bind(&group)
            .bind(format!("%-{}-%", child.0.id()))
            .fetch_one(&pool)
            .await
            .unwrap();
            if n > last_commit && held == i64::from(PARTITIONS) {
                last_commit = n;
                break;
            }
            assert!(Instant::now() < deadline, "the worker never committed");
            assert!(
                child.0.try_wait().unwrap().is_none(),
                "the worker exited early"
            );
            tokio::time::sleep(Duration::from_millis(10 + 40 * r as u64)).await;
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        // A killed member keeps its partitions until its session times out; a member that joins
        // before then may be left without partitions by tansu (RELIABILITY.md, finding 1).
        tokio::time::sleep(SESSION + Duration::from_secs(3)).await;
    }
    let mut cfg = config(&t, &group, archive.path());
    cfg.session_timeout = SESSION;
    run_until_idle_within(cfg, &pool, Duration::from_secs(300)).await;
    // imp_msgs/play_msgs are one message per workload event.
    archive_exact(archive.path(), &t, &w);
    assert_views_exact(&pool, &w).await;
}
