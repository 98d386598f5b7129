//! `playsource batch` and `playsource audit` as a user runs them: exit codes, what they print,
//! and one-sentence errors (real Postgres, an archive written with the archive crate).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use playsource_archive::store::test_support;
use playsource_archive::{ArchiveStore, ImpressionsWriter, PlaysWriter};
use playsource_domain::{decode_impression, decode_play};
use sqlx::PgPool;

const BIN: &str = env!("CARGO_BIN_EXE_playsource");

/// The URL of the test's own database.
async fn url_of(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into());
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn run(url: &str, archive: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env("PLAYSOURCE_ARCHIVE", archive)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Archives the batch layer's golden case `rules_edges` (day 2026-11-21).
fn write_golden(archive: &Path) {
    write_golden_in(&ArchiveStore::local(archive));
}

/// [`write_golden`] into any archive (a local folder or an object store).
fn write_golden_in(store: &ArchiveStore) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../batch/tests/golden/rules_edges");
    let read = |name: &str| -> Vec<String> {
        let v: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        v.iter().map(|e| e.to_string()).collect()
    };
    let mut iw = ImpressionsWriter::in_store(store.clone(), "impressions").unwrap();
    for s in read("impressions.json") {
        iw.push(&decode_impression(s.as_bytes()).unwrap(), None);
    }
    iw.flush("part-0").unwrap();
    let mut pw = PlaysWriter::in_store(store.clone(), "plays").unwrap();
    for s in read("plays.json") {
        pw.push(&decode_play(s.as_bytes()).unwrap(), None);
    }
    pw.flush("part-0").unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn batch_then_audit_exit_codes(pool: PgPool) {
    let url = url_of(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_golden(&archive);

    let out = run(
        &url,
        &archive,
        &["batch", "--date", "2026-11-21", "--no-progress"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("2026-11-21: published generation "),
        "{stdout}"
    );
    assert!(stdout.contains(" 7 plays (1 repeats left out"), "{stdout}");
    assert!(archive.join("enriched_plays/date=2026-11-21").is_dir());
    let plays: i64 = sqlx::query_scalar("SELECT sum(plays)::int8 FROM batch_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(plays, 7);

    // The realtime view is empty: drift, exit 1, with the table on stdout.
    let out = run(
        &url,
        &archive,
        &["audit", "--date", "2026-11-21", "--limit", "3"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("DRIFT") && stdout.contains("not shown"),
        "{stdout}"
    );

    // Identical realtime rows in the hourly view only: the per-video view still drifts.
    sqlx::query("INSERT INTO rt_hourly SELECT * FROM batch_hourly")
        .execute(&pool)
        .await
        .unwrap();
    let out = run(&url, &archive, &["audit", "--date", "2026-11-21"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("video_daily"),
        "{}",
        text(&out.stdout)
    );

    // Identical realtime rows: no drift, exit 0.
    sqlx::query("INSERT INTO rt_video_daily SELECT * FROM batch_video_daily")
        .execute(&pool)
        .await
        .unwrap();
    let out = run(&url, &archive, &["audit", "--date", "2026-11-21"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no drift"));

    // A day that is not batch-complete cannot be audited: exit 2, one sentence.
    let out = run(&url, &archive, &["audit", "--date", "2026-11-22"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("playsource batch --date 2026-11-22"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn batch_errors_are_one_sentence(pool: PgPool) {
    let url = url_of(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_golden(&archive);

    // A range stops at the first missing day and says what was published.
    let out = run(
        &url,
        &archive,
        &[
            "batch",
            "--from",
            "2026-11-21",
            "--to",
            "2026-11-23",
            "--no-progress",
        ],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let err_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        err_line.contains("batch of 2026-11-23 failed (2026-11-21 to 2026-11-22 were published)"),
        "{err_line}"
    );
    assert!(
        err_line.contains("plays/date=2026-11-23") && err_line.contains("--allow-empty"),
        "{err_line}"
    );
    // 2026-11-22 has one play (play-next-day): it was published.
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_days")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(days, 2);

    // --allow-empty publishes the missing day.
    let out = run(
        &url,
        &archive,
        &[
            "batch",
            "--date",
            "2026-11-23",
            "--allow-empty",
            "--no-progress",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 plays"));

    for (args, needle) in [
        (&["batch", "--date", "21-11-2026"][..], "YYYY-MM-DD"),
        (
            &["batch", "--from", "2026-11-22", "--to", "2026-11-21"][..],
            "is after --to",
        ),
        (
            &["batch", "--date", "2026-11-21", "--threads", "0"][..],
            "--threads 0",
        ),
        (
            &["batch", "--from", "2000-01-01", "--to", "2026-01-01"][..],
            "spans more than",
        ),
        (&["audit", "--date", "yesterdayish"][..], "YYYY-MM-DD"),
    ] {
        let out = run(&url, &archive, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn batch_refuses_a_day_the_stream_has_not_archived_unless_forced(pool: PgPool) {
    let url = url_of(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_golden(&archive);
    // The stream archived plays/3 only up to 21:00 of the day and stopped (was last at the end of
    // its log at 23:00): the day is not complete.
    sqlx::query(
        "INSERT INTO archive_progress (archive, topic, partition, group_id, high_water, caught_up_at)
         VALUES ($1, 'plays', 3, 'g', '2026-11-21T21:00:00Z', '2026-11-21T23:00:00Z'),
                ($1, 'impressions', 3, 'g', '2026-11-23T00:00:00Z', NULL)",
    )
    .bind(playsource_store::progress::archive_key(&archive))
    .execute(&pool)
    .await
    .unwrap();

    let out = run(
        &url,
        &archive,
        &["batch", "--date", "2026-11-21", "--no-progress"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let err_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        err_line.contains("the archive is not complete for 2026-11-21")
            && err_line.contains("plays/3 (event time archived up to 2026-11-21T21:00:00Z")
            && !err_line.contains("impressions/3")
            && err_line.contains("--force"),
        "{err_line}"
    );
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_days")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(days, 0, "nothing was published");

    let out = run(
        &url,
        &archive,
        &["batch", "--date", "2026-11-21", "--force", "--no-progress"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("--force: published although the archive is not complete")
            && stdout.contains("plays/3"),
        "{stdout}"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn batch_shards_record_parts_and_the_last_publishes(pool: PgPool) {
    let url = url_of(&pool).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_golden(&archive);
    let shard = |spec: &str| {
        run(
            &url,
            &archive,
            &[
                "batch",
                "--date",
                "2026-11-21",
                "--no-progress",
                "--shard",
                spec,
            ],
        )
    };

    let out = shard("2/2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("2026-11-21: shard 2/2: part recorded: ")
            && stdout.contains("filtered by member hash")
            && stdout.contains("1 of 2 parts in")
            && !stdout.contains("published"),
        "{stdout}"
    );
    let days: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_days")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(days, 0, "one shard of two publishes nothing");

    let out = shard("1/2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("2 of 2 parts in")
            && stdout.contains("published generation ")
            && stdout.contains("from 2 shards: 7 plays"),
        "{stdout}"
    );
    let plays: i64 = sqlx::query_scalar("SELECT sum(plays)::int8 FROM batch_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(plays, 7, "the same 7 plays as one machine");

    for (args, says) in [
        (vec!["--shard", "3/2"], "is not I/N"),
        (
            vec!["--shard", "1/2", "--prune-realtime", "3"],
            "--prune-realtime with --shard",
        ),
    ] {
        let mut all = vec!["batch", "--date", "2026-11-21", "--no-progress"];
        all.extend(args);
        let out = run(&url, &archive, &all);
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// `batch` and `audit` over an archive on the S3 test server, configured as users configure it
/// (`--archive s3://...`, the `AWS_*` variables): the day is published, its enriched plays land
/// in the bucket, and the audit reads the views as for a local archive.
#[sqlx::test(migrations = "../../migrations")]
async fn batch_and_audit_over_an_s3_archive(pool: PgPool) {
    let Some((url, store)) = test_support::fresh_archive("cli-batch") else {
        return;
    };
    write_golden_in(&store);
    let db = url_of(&pool).await;
    let run_s3 = |args: &[&str]| -> Output {
        Command::new(BIN)
            .args(args)
            .env("DATABASE_URL", &db)
            .env("PLAYSOURCE_ARCHIVE", &url)
            .envs(test_support::aws_env())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run_s3(&["batch", "--date", "2026-11-21", "--no-progress"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(" 7 plays (1 repeats left out"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "enriched plays in {url}/enriched_plays/date=2026-11-21"
        )),
        "{stdout}"
    );
    let enriched = store.list("enriched_plays/date=2026-11-21").unwrap();
    assert!(!enriched.is_empty());
    assert!(store.list("enriched_plays/_staging").unwrap().is_empty());

    for sql in [
        "INSERT INTO rt_hourly SELECT * FROM batch_hourly",
        "INSERT INTO rt_video_daily SELECT * FROM batch_video_daily",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let out = run_s3(&["audit", "--date", "2026-11-21"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("no drift"));

    // Three shards over the same bucket: the last publishes the same rows.
    let before: i64 = sqlx::query_scalar("SELECT sum(plays)::int8 FROM batch_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let out = run_s3(&[
            "batch",
            "--date",
            "2026-11-21",
            "--shard",
            &shard,
            "--no-progress",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).contains("published generation"), i == 3);
    }
    let after: i64 = sqlx::query_scalar("SELECT sum(plays)::int8 FROM batch_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, before);
    assert!(store.list("enriched_plays/_staging").unwrap().is_empty());
}
