//! A database password never reaches what `playsource` prints: not in errors, not in logs (even
//! at `RUST_LOG=trace`), not in `--help`. Secrets come only from the environment or flags; every
//! message names `host:port/database` instead of the URL.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_playsource");
/// The password in every URL below, and its percent-encoded twin.
const SECRET: &str = "s3cr3t-Pa55w0rd";
const SECRET_ENCODED: &str = "p%40ss%3Aw0rd%2F";
const SECRET_DECODED: &str = "p@ss:w0rd/";

fn db_server() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/playsource".into());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_owned()
}

/// Runs `playsource ARGS` with `DATABASE_URL=url` at trace level; kills it after `limit`.
/// Returns (exit success, stdout + stderr).
fn run(args: &[&str], url: &str, limit: Duration) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "trace")
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status.is_some_and(|s| s.success()), out)
}

fn assert_no_secret(what: &str, out: &str) {
    for s in [SECRET, SECRET_ENCODED, SECRET_DECODED] {
        assert!(!out.contains(s), "{what} printed the password:\n{out}");
    }
}

/// URLs with the password in the user info or in the query, to servers that cannot be used.
fn bad_urls() -> Vec<(&'static str, String)> {
    let server = db_server();
    vec![
        (
            "malformed",
            format!("postgres://user:{SECRET}@[::1:5432/db"),
        ),
        (
            "unreachable",
            format!("postgres://user:{SECRET}@127.0.0.1:1/db"),
        ),
        (
            "wrong user",
            format!("postgres://no_such_user:{SECRET}@{server}/playsource"),
        ),
        (
            "missing database",
            format!("postgres://postgres:{SECRET}@{server}/no_such_db_x1"),
        ),
        (
            "encoded",
            format!("postgres://user:{SECRET_ENCODED}@127.0.0.1:1/db"),
        ),
        (
            "in the query",
            format!("postgres://user@127.0.0.1:1/db?password={SECRET}"),
        ),
        (
            "other scheme",
            format!("mysql://user:{SECRET}@127.0.0.1:1/db"),
        ),
    ]
}

#[test]
fn failing_commands_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("catalog.csv");
    std::fs::write(
        &csv,
        "video_id,title,genre,kind,launch_date\n1,A,b,movie,2020-01-01\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    let archive = dir.path().to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["catalog", "load", csv],
        &[
            "batch",
            "--date",
            "2026-11-21",
            "--archive",
            archive,
            "--no-progress",
        ],
        &["audit", "--date", "2026-11-21"],
        &["init"],
    ];
    for (kind, url) in bad_urls() {
        for args in commands {
            if kind == "missing database" && args == ["init"] {
                continue; // init would create it
            }
            let (ok, out) = run(args, &url, Duration::from_secs(60));
            let what = format!("`playsource {}` with a {kind} URL", args.join(" "));
            assert!(!ok, "{what} succeeded:\n{out}");
            assert!(!out.trim().is_empty(), "{what} printed no error");
            assert_no_secret(&what, &out);
        }
    }
}

#[test]
fn the_stream_and_the_server_never_print_the_password() {
    // All at once: the server waits 3 s for its first connection before it logs why the
    // database is not usable, and keeps running; it is stopped after that.
    std::thread::scope(|scope| {
        for (kind, url) in bad_urls() {
            let stream_url = url.clone();
            scope.spawn(move || {
                let (ok, out) = run(&["stream"], &stream_url, Duration::from_secs(60));
                assert!(!ok, "stream with a {kind} URL succeeded:\n{out}");
                assert_no_secret(&format!("`playsource stream` with a {kind} URL"), &out);
            });
            scope.spawn(move || {
                let listen = ["serve", "--listen", "127.0.0.1:0"];
                let (_, out) = run(&listen, &url, Duration::from_secs(5));
                assert!(
                    !out.trim().is_empty(),
                    "serve with a {kind} URL printed nothing"
                );
                assert_no_secret(&format!("`playsource serve` with a {kind} URL"), &out);
            });
        }
    });
}

#[test]
fn help_hides_the_environment_value() {
    let url = format!("postgres://user:{SECRET}@127.0.0.1:1/db");
    let commands: [&[&str]; 6] = [
        &["serve", "--help"],
        &["batch", "--help"],
        &["stream", "--help"],
        &["init", "--help"],
        &["catalog", "load", "--help"],
        &["audit", "--help"],
    ];
    for args in commands {
        let (_, out) = run(args, &url, Duration::from_secs(30));
        let what = format!("`playsource {}`", args.join(" "));
        assert!(
            out.contains("DATABASE_URL"),
            "{what} does not name DATABASE_URL"
        );
        assert_no_secret(&what, &out);
    }
}
