//! Right-sized, exactly-once archive files (docs/reference.md §5): committed files wait under
//! `_pending/`, each hour is published as one `p<p>.parquet` per topic-partition, and neither our
//! readers nor a foreign one (DuckDB over the Hive layout) ever sees a row twice or misses one —
//! after a clean run, on S3, after a kill at each step of a compaction, and with a late event
//! for an hour already published.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use playsource_archive::layout::parse_hour_segment;
use playsource_archive::ArchiveStore;
use playsource_domain::{Day, Ts};
use playsource_kafka::Topics;
use sqlx::PgPool;

const SESSION: Duration = Duration::from_secs(6);

fn start() -> Ts {
    Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap()
}

fn days() -> std::ops::RangeInclusive<Day> {
    Day::parse("2026-11-20").unwrap()..=Day::parse("2026-11-23").unwrap()
}

/// The workload's events, each once per message, as our readers and DuckDB must see them.
fn expected(w: &Workload) -> [BTreeMap<String, usize>; 2] {
    [
        id_counts(w.impressions.iter().map(|e| e.event_id.as_ref())),
        id_counts(w.plays.iter().map(|e| e.event_id.as_ref())),
    ]
}

/// Checks the Hive layout of `topic`: only `p<p>.parquet` files, so at most one per
/// topic-partition and hour; and nothing left pending. Returns the number of files.
fn one_file_per_partition_and_hour(store: &ArchiveStore, topic: &str) -> usize {
    let files = store.list_data_files(topic, days()).unwrap();
    let mut per_hour: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rel in &files {
        assert!(
            !rel.starts_with('_'),
            "left pending after the stream caught up: {rel}"
        );
        let (dir, name) = rel.rsplit_once('/').unwrap();
        assert!(
            parse_hour_segment(dir.rsplit('/').next().unwrap()).is_some(),
            "{rel}"
        );
        let p = name
            .strip_prefix('p')
            .and_then(|n| n.strip_suffix(".parquet"));
        assert!(
            p.is_some_and(|p| p.parse::<u32>().is_ok()),
            "not one compacted file per partition: {rel}"
        );
        per_hour
            .entry(dir.to_owned())
            .or_default()
            .push(name.to_owned());
    }
    for (dir, names) in &per_hour {
        assert!(names.len() <= PARTITIONS as usize, "{dir}: {names:?}");
    }
    assert!(store.list(&format!("_pending/{topic}")).unwrap().is_empty());
    files.len()
}

/// Event id → rows, as DuckDB reads the published Hive layout of `topic`.
fn duckdb_ids(archive: &Path, topic: &str) -> BTreeMap<String, usize> {
    let python = std::env::var("PLAYSOURCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let glob = archive.join(topic).join("*/*/*.parquet");
    let script = format!(
        "import duckdb, glob\np = '{}'\nif glob.glob(p):\n    for (i,) in duckdb.sql(f\"SELECT event_id FROM read_parquet('{{p}}', hive_partitioning=true)\").fetchall():\n        print(i)\n",
        glob.display()
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set PLAYSOURCE_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    id_counts(String::from_utf8(out.stdout).unwrap().lines())
}

/// Our readers and DuckDB both see every event exactly once, in one file per partition and hour.
fn check_local(archive: &Path, t: &Topics, w: &Workload) {
    let store = ArchiveStore::local(archive);
    let [imps, plays] = expected(w);
    assert_eq!(archived_ids(&store, &t.impressions, false, days()), imps);
    assert_eq!(archived_ids(&store, &t.plays, true, days()), plays);
    assert!(one_file_per_partition_and_hour(&store, &t.impressions) > 0);
    assert!(one_file_per_partition_and_hour(&store, &t.plays) > 0);
    assert_eq!(
        duckdb_ids(archive, &t.impressions),
        imps,
        "DuckDB impressions"
    );
    assert_eq!(duckdb_ids(archive, &t.plays), plays, "DuckDB plays");
}

async fn produce(t: &Topics, w: &Workload) {
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn hours_are_published_once_per_partition_and_read_once_by_duckdb(pool: PgPool) {
    let t = topics("compact");
    create_topics(&t).await;
    let w = workload(21, 200, start(), 5);
    load_catalog(&pool, &w.catalog).await;
    produce(&t, &w).await;
    let archive = tempfile::tempdir().unwrap();
    let cfg = config(&t, &format!("g-{}", t.plays), archive.path());
    run_until_idle(cfg, &pool).await;
    assert_views_exact(&pool, &w).await;
    check_local(archive.path(), &t, &w);
}

#[sqlx::test(migrations = "../migrations")]
async fn hours_are_published_once_per_partition_on_s3(pool: PgPool) {
    let t = topics("compacts3");
    create_topics(&t).await;
    let w = workload(22, 200, start(), 5);
    load_catalog(&pool, &w.catalog).await;
    produce(&t, &w).await;
    let endpoint =
        std::env::var("PLAYSOURCE_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    let bucket = std::env::var("PLAYSOURCE_S3_BUCKET").unwrap_or_else(|_| "playsource-test".into());
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        std::env::set_var(k, v);
    }
    let url = format!("s3://{bucket}/compact-{}-{}", t.plays, std::process::id());
    let store = ArchiveStore::open(&url).unwrap();
    let mut cfg = config(&t, &format!("g-{}", t.plays), Path::new("unused"));
    cfg.archive = store.clone();
    run_until_idle(cfg, &pool).await;
    let [imps, plays] = expected(&w);
    assert_eq!(archived_ids(&store, &t.impressions, false, days()), imps);
    assert_eq!(archived_ids(&store, &t.plays, true, days()), plays);
    let files = one_file_per_partition_and_hour(&store, &t.impressions)
        + one_file_per_partition_and_hour(&store, &t.plays);
    // Five hours of events (six hour folders at most) per topic, four partitions.
    assert!(files <= 2 * 6 * PARTITIONS as usize, "{files} files");
}

/// A worker killed at `point` of its first compaction; then a clean run finishes the work.
async fn killed_at(pool: PgPool, point: &str, seed: u64) {
    let t = topics(&format!("ck{seed}"));
    create_topics(&t).await;
    let w = workload(seed, 150, start(), 4);
    load_catalog(&pool, &w.catalog).await;
    produce(&t, &w).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    let opts = pool.connect_options();
    let url = format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("postgres")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_playsource-stream-worker"))
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
        .env("PLAYSOURCE_TEST_CRASH_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker never reached {point}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "the worker crashed at {point}");
    // Mid-compaction: our readers already see every committed row once.
    // (Redeliveries are messages too: an event id may be expected more than once.)
    let store = ArchiveStore::local(archive.path());
    let want = expected(&w);
    for (k, (topic, plays)) in [(&t.impressions, false), (&t.plays, true)]
        .into_iter()
        .enumerate()
    {
        let ids = archived_ids(&store, topic, plays, days());
        assert!(!ids.is_empty());
        for (id, n) in &ids {
            assert!(
                want[k].get(id).is_some_and(|m| n <= m),
                "{id} archived {n} times after a kill at {point}"
            );
        }
        // DuckDB over the published layout: whole files only, no row twice.
        for (id, n) in duckdb_ids(archive.path(), topic) {
            assert!(
                want[k].get(&id).is_some_and(|m| n <= *m),
                "DuckDB sees {id} {n} times after a kill at {point}"
            );
        }
    }
    tokio::time::sleep(SESSION + Duration::from_secs(3)).await;
    let mut cfg = config(&t, &group, archive.path());
    cfg.session_timeout = SESSION;
    run_until_idle_within(cfg, &pool, Duration::from_secs(300)).await;
    assert_views_exact(&pool, &w).await;
    check_local(archive.path(), &t, &w);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_kill_while_writing_the_published_file_loses_and_doubles_nothing(pool: PgPool) {
    killed_at(pool, "compact-write", 31).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_kill_after_the_write_before_deleting_pending_files_loses_and_doubles_nothing(
    pool: PgPool,
) {
    killed_at(pool, "compact-written", 32).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_kill_midway_through_deleting_pending_files_loses_and_doubles_nothing(pool: PgPool) {
    killed_at(pool, "compact-deleting", 33).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_late_event_for_a_published_hour_is_added_to_its_file(pool: PgPool) {
    let t = topics("compactlate");
    create_topics(&t).await;
    let mut w = workload(41, 120, start(), 3);
    load_catalog(&pool, &w.catalog).await;
    produce(&t, &w).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);
    run_until_idle(config(&t, &group, archive.path()), &pool).await;
    check_local(archive.path(), &t, &w);
    // An impression for the first hour, long after it was published (too late for the view,
    // archived all the same).
    let mut late = w.impressions[0].clone();
    late.event_id = "late-impression".into();
    late.ts = Ts(start().0 + 60_000);
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(std::slice::from_ref(&late))).await;
    w.impressions.push(late);
    // The same group again: the broker may hold the previous member until its session times out
    // (45 s) before it assigns the partitions, so this run gets more than the usual two minutes
    // on a loaded machine (it once took 133 s in CI).
    run_until_idle_within(
        config(&t, &group, archive.path()),
        &pool,
        Duration::from_secs(240),
    )
    .await;
    let store = ArchiveStore::local(archive.path());
    let [imps, _] = expected(&w);
    assert_eq!(archived_ids(&store, &t.impressions, false, days()), imps);
    one_file_per_partition_and_hour(&store, &t.impressions);
    assert_eq!(duckdb_ids(archive.path(), &t.impressions), imps, "DuckDB");
    let hour = archive
        .path()
        .join(&t.impressions)
        .join("date=2026-11-21/hour=10");
    let files: Vec<_> = std::fs::read_dir(hour).unwrap().collect();
    assert!(files.len() <= PARTITIONS as usize);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_take_over_waits_for_a_compaction_and_fences_the_old_owner(pool: PgPool) {
    use playsource_store::compaction::hold_lease;
    use playsource_stream::sink_postgres::acquire_lease;
    let old = acquire_lease(&pool, "g-z", 0, "old").await.unwrap();
    let hold = hold_lease(&pool, "g-z", 0, old).await.unwrap().unwrap();
    let p2 = pool.clone();
    let take = tokio::spawn(async move { acquire_lease(&p2, "g-z", 0, "new").await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !take.is_finished(),
        "the take-over waits while the old owner rewrites a published file"
    );
    hold.release().await.unwrap();
    let new = tokio::time::timeout(Duration::from_secs(10), take)
        .await
        .unwrap()
        .unwrap();
    assert!(new > old);
    assert!(
        hold_lease(&pool, "g-z", 0, old).await.unwrap().is_none(),
        "the old owner can no longer compact"
    );
    assert!(hold_lease(&pool, "g-z", 0, new).await.unwrap().is_some());
    assert!(
        hold_lease(&pool, "g-z", 1, new).await.unwrap().is_none(),
        "no lease, no compaction"
    );
}
