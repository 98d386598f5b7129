//! `kill -9` of a real stream process at arbitrary points loses nothing and counts nothing twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use playsource_archive::store::test_support;
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
    kill_9_rounds(pool, false).await;
}

/// The same with the archive on the S3 server `scripts/services.sh` starts
/// (`PLAYSOURCE_S3_ENDPOINT`, bucket `PLAYSOURCE_S3_BUCKET`), reached through `AWS_*` variables.
#[sqlx::test(migrations = "../migrations")]
async fn kill_9_mid_run_with_the_archive_on_s3_loses_nothing(pool: PgPool) {
    kill_9_rounds(pool, true).await;
}

async fn kill_9_rounds(pool: PgPool, s3: bool) {
    if s3 && test_support::skip("kill_9_mid_run_with_the_archive_on_s3_loses_nothing") {
        return;
    }
    let t = topics(if s3 { "kill-s3" } else { "kill" });
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
    let aws: Vec<(&str, String)> = if s3 {
        test_support::aws_env()
    } else {
        Vec::new()
    };
    let location = if s3 {
        format!("s3://{}/kill-{}", test_support::bucket(), t.plays)
    } else {
        archive.path().display().to_string()
    };
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
                .env("PLAYSOURCE_ARCHIVE", &location)
                .envs(aws.iter().map(|(k, v)| (k, v)))
                .env("PLAYSOURCE_FLUSH_INTERVAL_MS", "150")
                .env(
                    "PLAYSOURCE_SESSION_TIMEOUT_MS",
                    SESSION.as_millis().to_string(),
                )
                .env(
                    "PLAYSOURCE_CHECKPOINT_INTERVAL_SECS",
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
    if s3 {
        for (k, v) in &aws {
            std::env::set_var(k, v);
        }
        cfg.archive = playsource_archive::ArchiveStore::open(&location).unwrap();
    }
    let store = cfg.archive.clone();
    run_until_idle_within(cfg, &pool, Duration::from_secs(300)).await;
    // imp_msgs/play_msgs are one message per workload event.
    if !s3 {
        archive_exact(archive.path(), &t, &w);
    }
    archive_exact_in(&store, &t, &w);
    assert_views_exact(&pool, &w).await;
    // The checkpoints the runs left are layer files in the archive's store (S3 or local), and
    // the manifest names only files that exist.
    let layers: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT layers FROM stream_checkpoints WHERE group_id = $1")
            .bind(&group)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!layers.is_empty(), "the final run checkpoints its units");
    for file in layers.iter().flatten() {
        assert!(store.exists(file).unwrap(), "{file} is named but missing");
    }
}

/// Every valid event archived exactly once (by event id, redeliveries included), read through
/// the archive store, and nothing left in staging.
fn archive_exact_in(
    store: &playsource_archive::ArchiveStore,
    t: &playsource_kafka::Topics,
    w: &Workload,
) {
    use playsource_archive::read::{ImpressionReader, PlayReader, ReadStats};
    use std::collections::BTreeMap;
    let days = playsource_domain::Day::parse("2026-11-20").unwrap()
        ..=playsource_domain::Day::parse("2026-11-23").unwrap();
    let mut stats = ReadStats::default();
    let (mut imps, mut plays) = (BTreeMap::<String, usize>::new(), BTreeMap::new());
    for rel in store.list_data_files(&t.impressions, days.clone()).unwrap() {
        for b in ImpressionReader::open_in(store, &rel).unwrap() {
            b.unwrap().for_each(None, &mut stats, |_, e| {
                *imps.entry(e.event_id.to_string()).or_default() += 1;
            });
        }
    }
    for rel in store.list_data_files(&t.plays, days).unwrap() {
        for b in PlayReader::open_in(store, &rel).unwrap() {
            b.unwrap().for_each(None, &mut stats, |_, e| {
                *plays.entry(e.event_id.to_string()).or_default() += 1;
            });
        }
    }
    let mut want_imps = BTreeMap::<String, usize>::new();
    for e in &w.impressions {
        *want_imps.entry(e.event_id.to_string()).or_default() += 1;
    }
    let mut want_plays = BTreeMap::<String, usize>::new();
    for e in &w.plays {
        *want_plays.entry(e.event_id.to_string()).or_default() += 1;
    }
    assert_eq!(imps, want_imps, "impressions archived once each");
    assert_eq!(plays, want_plays, "plays archived once each");
    assert_eq!(stats.invalid, 0);
    let staged = store.list("_staging").unwrap();
    assert!(staged.is_empty(), "left in staging: {staged:?}");
}
