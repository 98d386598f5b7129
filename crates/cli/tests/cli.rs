//! The built `playsource` binary against real Postgres and a real Kafka-protocol broker.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::process::{Command, Output};

use sqlx::{Connection, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_playsource");

fn base_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into())
}

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh database on the test server, dropped on drop.
struct TempDb {
    name: String,
    url: String,
}

impl TempDb {
    async fn create() -> TempDb {
        let name = format!("playsource_cli_{}", suffix());
        let mut admin = PgConnection::connect(&base_url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (server, _) = base_url()
            .rsplit_once('/')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        TempDb {
            url: format!("{server}/{name}"),
            name,
        }
    }

    async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    async fn drop_it(self) {
        let mut admin = PgConnection::connect(&base_url()).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

/// Runs the binary with a clean environment for the settings it reads.
fn playsource(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BROKERS")
        .env_remove("PLAYSOURCE_ARCHIVE")
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The error of a failed run: exactly one line, `error: ...`.
fn one_sentence_error(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure, got {o:?}");
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_owned()
}

struct TopicArgs {
    imp: String,
    plays: String,
    enriched: String,
    dlq: String,
}

impl TopicArgs {
    fn unique() -> TopicArgs {
        let s = suffix();
        TopicArgs {
            imp: format!("cli-imp-{s}"),
            plays: format!("cli-plays-{s}"),
            enriched: format!("cli-enriched-{s}"),
            dlq: format!("cli-dlq-{s}"),
        }
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--brokers".into(),
            brokers(),
            "--impressions-topic".into(),
            self.imp.clone(),
            "--plays-topic".into(),
            self.plays.clone(),
            "--enriched-topic".into(),
            self.enriched.clone(),
            "--dlq-topic".into(),
            self.dlq.clone(),
        ]
    }
}

fn init(db: &str, topics: &TopicArgs, partitions: Option<&str>) -> Output {
    let mut args: Vec<String> = vec!["init".into(), "--database-url".into(), db.into()];
    args.extend(topics.flags());
    if let Some(p) = partitions {
        args.extend(["--partitions".into(), p.into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    playsource(&refs)
}

#[test]
fn help_lists_every_subcommand() {
    let o = playsource(&["--help"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    for sub in [
        "init", "stream", "batch", "serve", "catalog", "gen", "audit", "replay", "demo",
    ] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(sub)),
            "{sub} missing from:\n{out}"
        );
    }
    let o = playsource(&["init", "--help"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for flag in [
        "--partitions",
        "--database-url",
        "--brokers",
        "--impressions-topic",
        "--dlq-topic",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
    let o = playsource(&["catalog", "load", "--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("FILE.csv"));
}

#[tokio::test]
async fn init_migrates_creates_topics_and_reruns_cleanly() {
    let db = TempDb::create().await;
    let topics = TopicArgs::unique();

    let o = init(&db.url, &topics, Some("3"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 partitions"), "{}", stdout(&o));

    let mut conn = db.connect().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('catalog', 'rt_hourly', 'rt_video_daily', 'batch_hourly', 'batch_video_daily', 'batch_days', 'stream_offsets')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 7);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(applied >= 1);
    for t in [&topics.imp, &topics.plays, &topics.enriched, &topics.dlq] {
        let n = playsource_kafka::admin::partition_count(&brokers(), t)
            .await
            .unwrap();
        assert_eq!(n, Some(3), "{t}");
    }

    // Again, with the default --partitions: nothing changes, nothing fails.
    let o = init(&db.url, &topics, None);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(again, applied);
    assert_eq!(
        playsource_kafka::admin::partition_count(&brokers(), &topics.plays)
            .await
            .unwrap(),
        Some(3)
    );
    conn.close().await.unwrap();
    db.drop_it().await;
}

#[tokio::test]
async fn init_creates_a_missing_database() {
    let name = format!("playsource_cli_{}", suffix());
    let (server, _) = base_url()
        .rsplit_once('/')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let db = TempDb {
        url: format!("{server}/{name}"),
        name,
    };
    let o = init(&db.url, &TopicArgs::unique(), Some("1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut conn = db.connect().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    conn.close().await.unwrap();
    db.drop_it().await;
}

#[tokio::test]
async fn init_refuses_input_topics_with_different_partition_counts() {
    let db = TempDb::create().await;
    let a = TopicArgs::unique();
    let b = TopicArgs::unique();
    assert!(init(&db.url, &a, Some("4")).status.success());
    assert!(init(&db.url, &b, Some("8")).status.success());

    // impressions from the first set (4), plays from the second (8).
    let mixed = TopicArgs {
        imp: a.imp.clone(),
        plays: b.plays.clone(),
        ..TopicArgs::unique()
    };
    let line = one_sentence_error(&init(&db.url, &mixed, None));
    assert!(line.contains(&a.imp) && line.contains(&b.plays), "{line}");
    assert!(
        line.contains("4 partitions") && line.contains("has 8"),
        "{line}"
    );
    assert!(line.contains("recreate"), "{line}");
    db.drop_it().await;
}

/// The stream's timeouts and alignment knobs are checked before anything connects: a session
/// timeout outside 1 s ..= 1 h, a retry timeout that is not a number, an alignment buffer of 0 MiB
/// or a drift that is not a number is refused, naming the flag and the range.
#[test]
fn stream_timeout_flags_out_of_range_are_refused() {
    for (args, needle) in [
        (
            &["stream", "--session-timeout-ms", "500"][..],
            "1000..=3600000",
        ),
        (
            &["stream", "--session-timeout-ms", "3600001"][..],
            "1000..=3600000",
        ),
        (
            &["stream", "--retry-timeout-secs", "soon"][..],
            "invalid digit",
        ),
        (&["stream", "--align-buffer-mb", "0"][..], "1..=1048576"),
        (
            &["stream", "--max-drift-secs", "a minute"][..],
            "invalid digit",
        ),
    ] {
        let o = playsource(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = stderr(&o);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: invalid value"), "{args:?}: {err}");
        assert!(
            first.contains(args[1]) && first.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn unreachable_postgres_is_one_sentence() {
    let line = one_sentence_error(&playsource(&[
        "init",
        "--database-url",
        "postgres://postgres:hunter2@127.0.0.1:1/playsource",
    ]));
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(line.contains("--database-url"), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
}

#[tokio::test]
async fn catalog_load_good_then_bad_file() {
    let db = TempDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    assert!(init(&db.url, &TopicArgs::unique(), Some("1"))
        .status
        .success());

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "video_id,title,genre,kind,launch_date\n7,\"Seven, the film\",thriller,movie,2026-11-01\n18446744073709551615,Max,kids,show,2025-01-01\n",
    )
    .unwrap();
    let o = playsource(&[
        "catalog",
        "load",
        "--database-url",
        &db.url,
        good.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("loaded 2 videos"), "{}", stdout(&o));

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "video_id,title,genre,kind,launch_date\n8,Eight,drama,movie,2026-11-01\n9,Nine,drama,movie,2026-13-01\n",
    )
    .unwrap();
    let o = playsource(&[
        "catalog",
        "load",
        "--database-url",
        &db.url,
        bad.to_str().unwrap(),
    ]);
    let line = one_sentence_error(&o);
    assert!(line.contains("bad.csv"), "{line}");
    assert!(line.contains("line 3"), "{line}");
    assert!(line.contains("`launch_date`"), "{line}");

    let mut conn = db.connect().await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT video_id::text FROM catalog ORDER BY 1")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        ids,
        ["18446744073709551615", "7"],
        "nothing of the bad file was loaded"
    );
    conn.close().await.unwrap();
    db.drop_it().await;
}

/// The commands that do not read an object store yet say so instead of writing a local folder
/// named `s3:`.
#[test]
fn demo_refuses_an_object_store_archive() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["demo", "--archive", "s3://bucket/prefix"])
        .current_dir(dir.path())
        .env_remove("PLAYSOURCE_ARCHIVE")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let err = one_sentence_error(&o);
    assert!(err.contains("object-store URL"), "{err}");
    assert!(err.contains("`demo`"), "{err}");
    assert!(!dir.path().join("s3:").exists());
}

/// `gen --to archive --archive s3://...` against the S3 server `scripts/services.sh` starts
/// (`PLAYSOURCE_S3_ENDPOINT`, bucket `PLAYSOURCE_S3_BUCKET`), configured as users configure it:
/// the `AWS_*` variables and `AWS_ENDPOINT_URL`.
#[test]
fn gen_writes_an_s3_archive() {
    use playsource_archive::store::test_support;
    if test_support::skip("gen_writes_an_s3_archive") {
        return;
    }
    let aws = test_support::aws_env();
    let url = format!("s3://{}/cli-gen-{}", test_support::bucket(), suffix());
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "gen",
            "--to",
            "archive",
            "--archive",
            &url,
            "--members",
            "50",
        ])
        .args(["--start", "2026-11-20T00:00:00Z", "--seed", "5"])
        .envs(aws.clone())
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&url), "{}", stdout(&o));
    assert!(!dir.path().join("s3:").exists());
    for (k, v) in &aws {
        std::env::set_var(k, v);
    }
    let store = playsource_archive::ArchiveStore::open(&url).unwrap();
    let files = store.list("").unwrap();
    assert!(!files.is_empty());
    assert!(
        files
            .iter()
            .all(|(rel, _)| rel.starts_with("impressions/date=") || rel.starts_with("plays/date=")),
        "{files:?}"
    );
    // `replay --dry-run` reads the same events from the bucket as from the same archive on disk.
    let local = dir.path().join("archive");
    let o = Command::new(BIN)
        .args(["gen", "--to", "archive", "--archive"])
        .arg(&local)
        .args([
            "--members",
            "50",
            "--start",
            "2026-11-20T00:00:00Z",
            "--seed",
            "5",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let replayed = |archive: &str| {
        let o = Command::new(BIN)
            .args(["replay", "--dry-run", "--no-progress", "--archive", archive])
            .args(["--from", "2026-11-19", "--to", "2026-11-22"])
            .envs(aws.clone())
            .current_dir(dir.path())
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        let counts = out
            .split_once("would replay ")
            .and_then(|(_, rest)| rest.split_once(" of ["))
            .map(|(counts, _)| counts.to_owned())
            .unwrap_or_else(|| panic!("no dry-run summary in {out}"));
        (counts, out)
    };
    let (on_s3, out) = replayed(&url);
    assert!(out.contains(&url), "{out}");
    let (on_disk, _) = replayed(local.to_str().unwrap());
    assert_eq!(on_s3, on_disk);
    assert!(!on_s3.starts_with("0 "), "{on_s3}");
}
