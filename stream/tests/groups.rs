//! Consumer-group faults: partitions assigned to a member that never processes them (what
//! tansu 0.6 leaves behind when members die mid-rebalance) are detected, and `--exit-when-idle`
//! stops with a clear error instead of waiting for them forever.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use playsource_domain::Ts;
use playsource_stream::{CancellationToken, Error};
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;

/// A live member of the group that holds partitions and never processes them (the stuck member
/// tansu 0.6 keeps after a mid-rebalance `kill -9`, made deterministic): it heartbeats and polls
/// but writes nothing to Postgres. Leaves the group when dropped.
struct Squatter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Squatter {
    fn join(group: &str, topics: [&str; 2]) -> Squatter {
        let consumer: BaseConsumer = playsource_kafka::client_config(BROKERS)
            .set("group.id", group)
            .set("client.id", "aaa-squatter")
            .set("partition.assignment.strategy", "range")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .create()
            .unwrap();
        consumer.subscribe(&topics).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                // Polled only to stay in the group; the messages are dropped unprocessed.
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
            let _ = consumer.poll(Duration::from_millis(500));
        });
        Squatter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn exit_when_idle_stops_with_an_error_when_partitions_go_unprocessed(pool: PgPool) {
    let t = topics("stuck");
    create_topics(&t).await;
    let w = workload(
        21,
        300,
        Ts::parse_rfc3339("2026-11-22T06:00:00Z").unwrap(),
        3,
    );
    load_catalog(&pool, &w.catalog).await;
    let p = producer();
    produce_raw(&p, &t.impressions, &imp_msgs(&w.impressions)).await;
    produce_raw(&p, &t.plays, &play_msgs(&w.plays)).await;
    let group = format!("g-{}", t.plays);
    let squatter = Squatter::join(&group, [&t.impressions, &t.plays]);
    let archive = tempfile::tempdir().unwrap();
    let mut cfg = config(&t, &group, archive.path());
    cfg.session_timeout = Duration::from_secs(3);
    cfg.exit_when_idle = Some(Duration::from_secs(1));
    if let Ok(filter) = std::env::var("PLAYSOURCE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    // Bounds the wait only so a regression fails instead of hanging the suite.
    let res = tokio::time::timeout(
        Duration::from_secs(90),
        playsource_stream::run(cfg.clone(), pool.clone(), CancellationToken::new()),
    )
    .await
    .expect("--exit-when-idle waited forever on partitions nobody processes");
    let err = res.expect_err("the stream called partitions that nobody processed idle");
    assert!(matches!(err, Error::Unprocessed(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&t.plays) && msg.contains("--exit-when-idle"),
        "the error names the unprocessed partitions: {msg}"
    );
    drop(squatter);
}
