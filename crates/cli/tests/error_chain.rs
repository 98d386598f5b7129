//! Every error says its cause once (issue #20.1): failing commands whose errors carry causes from
//! different crates (sqlx, rdkafka, std::io, parquet; wrapped by store, kafka, stream, batch and
//! archive) print one `error:` line in which no part appears twice. The binary prints errors with
//! their chain (`{e:#}`), so a cause kept both in the message and as the error's `source()` would
//! show up again after it.

#![allow(clippy::unwrap_used)] // test setup: a failed step should fail the test loudly

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

mod scratch;

use scratch::{Scratch, BIN};

/// The one `error:` line of a failed run.
fn error_line(what: &str, o: &Output) -> String {
    assert!(!o.status.success(), "{what}: expected a failure, got {o:?}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("{what}: no `error:` line on stderr: {err}"));
    line.to_owned()
}

/// The parts of the line (split at `: ` and `; `) of 12 characters or more that appear twice.
fn repeated_parts(line: &str) -> Vec<&str> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for part in line
        .split(": ")
        .flat_map(|p| p.split("; "))
        .map(str::trim)
        .filter(|p| p.chars().count() >= 12)
    {
        *seen.entry(part).or_default() += 1;
    }
    let mut repeated: Vec<&str> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(p, _)| p)
        .collect();
    repeated.sort_unstable();
    repeated
}

/// `playsource ARGS` with none of the environment fallbacks set.
fn bare(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BROKERS")
        .env_remove("PLAYSOURCE_ARCHIVE")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A database URL on a port where nothing listens.
const CLOSED_DB: &str = "postgres://postgres@127.0.0.1:1/playsource";

/// Writes bytes that are not Parquet where an archive file of `topic_dir` on 2026-11-21 belongs.
fn corrupt_file(root: &Path, topic_dir: &str) {
    let dir = root.join(topic_dir).join("date=2026-11-21").join("hour=10");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.parquet"), b"this is not a Parquet file").unwrap();
}

#[tokio::test]
async fn failing_commands_say_each_cause_once() {
    let w = Scratch::new("errchain");
    let brokers = brokers();
    w.ok(&["init", "--brokers", &brokers]);
    let plays = w.plays_topic();
    let imps = format!("t-imp-{}", w.id);

    // Checked after the scratch database is dropped, so a failure leaves nothing behind.
    let mut runs: Vec<(&str, Output)> = Vec::new();
    let mut check = |what: &'static str, o: Output| runs.push((what, o));

    // store::Error::Connect (sqlx) through `init`.
    check(
        "init against a closed port",
        bare(&["init", "--database-url", CLOSED_DB, "--brokers", &brokers]),
    );
    // stream::Error::Connect (sqlx pool timeout) through `stream`.
    check(
        "stream against a closed database port",
        bare(&[
            "stream",
            "--database-url",
            CLOSED_DB,
            "--brokers",
            &brokers,
            "--archive",
            w.archive.path().to_str().unwrap(),
            "--retry-timeout-secs",
            "1",
        ]),
    );
    // stream::Error::Io (std::io) through `stream`: the archive root is a file.
    let file_root = w.archive.path().join("a-file");
    std::fs::write(&file_root, b"not a folder").unwrap();
    check(
        "stream with a file as archive root",
        w.run(&[
            "stream",
            "--brokers",
            &brokers,
            "--archive",
            file_root.to_str().unwrap(),
            "--retry-timeout-secs",
            "1",
            "--exit-when-idle",
            "2",
        ]),
    );
    // kafka::Error::Connect (rdkafka) through `stream`: no broker.
    check(
        "stream against a missing broker",
        w.run(&[
            "stream",
            "--brokers",
            "127.0.0.1:1",
            "--retry-timeout-secs",
            "1",
        ]),
    );
    // archive::Error::Parquet (parquet) through `batch` and `replay`.
    corrupt_file(w.archive.path(), &plays);
    corrupt_file(w.archive.path(), &imps);
    check(
        "batch of a corrupt archive file",
        w.run(&["batch", "--date", "2026-11-21", "--force"]),
    );
    check(
        "replay of a corrupt archive file",
        w.run(&[
            "replay",
            "--brokers",
            &brokers,
            "--from",
            "2026-11-21",
            "--to",
            "2026-11-22",
            "--dry-run",
        ]),
    );
    // archive::Error (missing root) through `replay`.
    check(
        "replay of a missing archive",
        w.run(&[
            "replay",
            "--brokers",
            &brokers,
            "--archive",
            w.archive.path().join("nowhere").to_str().unwrap(),
            "--from",
            "2026-11-21",
            "--to",
            "2026-11-22",
            "--dry-run",
        ]),
    );
    // store::Error::ReadFile (std::io) and store::Error::Csv through `catalog load`.
    check(
        "catalog load of a missing file",
        w.run(&[
            "catalog",
            "load",
            w.archive.path().join("nowhere.csv").to_str().unwrap(),
        ]),
    );
    let bad_csv = w.archive.path().join("bad.csv");
    std::fs::write(
        &bad_csv,
        "video_id,title,genre,kind,launch_date\n1,A,Drama,movie,someday\n",
    )
    .unwrap();
    check(
        "catalog load of a bad file",
        w.run(&["catalog", "load", bad_csv.to_str().unwrap()]),
    );
    w.drop_db().await;
    assert_eq!(runs.len(), 9);
    for (what, o) in &runs {
        let line = error_line(what, o);
        eprintln!("{what}: {line}");
        let repeated = repeated_parts(&line);
        assert!(
            repeated.is_empty(),
            "{what}: the error repeats {repeated:?}: {line}"
        );
    }
}

#[test]
fn the_check_catches_a_repeated_cause() {
    // What `stream` printed against a closed database port before causes were said once.
    let twice = "error: the streaming layer stopped: cannot connect to Postgres at h:1/x: pool timed out while waiting for an open connection; check --database-url: pool timed out while waiting for an open connection";
    assert_eq!(
        repeated_parts(twice),
        ["pool timed out while waiting for an open connection"]
    );
    assert!(repeated_parts(
        "error: cannot read /x.csv: No such file or directory (os error 2); check the path"
    )
    .is_empty());
}
