//! The S3 test server set-up shared by every test that puts an archive on object storage (the
//! server `scripts/services.sh` starts: `PLAYSOURCE_S3_ENDPOINT`, default
//! `http://127.0.0.1:9000`, bucket `PLAYSOURCE_S3_BUCKET`, default `playsource-test`). The
//! archive is reached as users reach it: an `s3://bucket/prefix` URL configured by the `AWS_*`
//! variables, which are set in this process (and returned for child processes).
//!
//! Only with the `test-support` feature (a dev-dependency feature of the crates whose tests use
//! it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::ArchiveStore;

/// The S3 test server's endpoint.
pub fn endpoint() -> String {
    std::env::var("PLAYSOURCE_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

/// The test bucket.
pub fn bucket() -> String {
    std::env::var("PLAYSOURCE_S3_BUCKET").unwrap_or_else(|_| "playsource-test".into())
}

/// Whether the S3 tests are to be skipped: only when `PLAYSOURCE_S3_ENDPOINT` is unset,
/// `PLAYSOURCE_SKIP_S3=1` and not under CI (`CI=true`: a missing server is a failure there).
/// Prints why when skipping.
pub fn skip(test: &str) -> bool {
    let skip = std::env::var_os("PLAYSOURCE_S3_ENDPOINT").is_none()
        && std::env::var("PLAYSOURCE_SKIP_S3").is_ok_and(|v| v == "1")
        && !std::env::var("CI").is_ok_and(|v| v == "true");
    if skip {
        eprintln!(
            "skipping {test}: PLAYSOURCE_SKIP_S3=1 and PLAYSOURCE_S3_ENDPOINT is unset (start the S3 test server with scripts/services.sh to run it)"
        );
    }
    skip
}

/// The `AWS_*` variables that reach the test server: for a child process's environment.
pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// A fresh `s3://bucket/<name>-<pid>-<nanos>` URL on the test server; sets the `AWS_*`
/// variables of [`aws_env`] in this process.
pub fn fresh_url(name: &str) -> String {
    for (k, v) in aws_env() {
        std::env::set_var(k, v);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://{}/{name}-{}-{nanos}", bucket(), std::process::id())
}

/// A fresh, empty archive on the test server, opened from its URL as `--archive` would be;
/// `None` (with a message) when [`skip`] says so.
pub fn fresh_archive(name: &str) -> Option<(String, ArchiveStore)> {
    if skip(name) {
        return None;
    }
    let url = fresh_url(name);
    let store = ArchiveStore::open(&url).expect("the S3 test archive opens");
    assert!(store.local_root().is_none());
    Some((url, store))
}
