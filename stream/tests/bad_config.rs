//! Bad configuration is one clear error, not a hang or a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use sqlx::PgPool;

#[tokio::test]
async fn an_unreachable_database_names_host_and_port_without_password() {
    let archive = tempfile::tempdir().unwrap();
    let cfg = config(&topics("nodb"), "g", archive.path());
    let err = playsource_stream::run_with_url(
        cfg,
        "postgres://someone:hunter2@127.0.0.1:1/playsource",
        Default::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot connect to Postgres at 127.0.0.1:1/playsource"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_zero_flush_interval_is_refused(pool: PgPool) {
    let archive = tempfile::tempdir().unwrap();
    let mut cfg = config(&topics("zero"), "g", archive.path());
    cfg.flush_interval = Duration::ZERO;
    let err = playsource_stream::run(cfg, pool, Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("flush interval"), "{err}");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_topic_for_impressions_and_plays_is_refused(pool: PgPool) {
    let archive = tempfile::tempdir().unwrap();
    let mut t = topics("same");
    t.plays = t.impressions.clone();
    let err = playsource_stream::run(config(&t, "g", archive.path()), pool, Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("different names"), "{err}");
}
