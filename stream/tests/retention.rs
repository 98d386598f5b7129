//! Kafka retention ate messages the stream had not read yet (issue #15 item 4), fed against a
//! real broker: a tansu of the test's own on SQLite storage. tansu 0.6 cannot delete records
//! through the protocol (DeleteRecords drops the connection), but it answers ListOffsets
//! `earliest` with the smallest offset left in its `record` table, so deleting a partition's
//! oldest rows from the SQLite file (broker stopped, as retention would) raises the partition's
//! low watermark past the stream's committed offset.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/fault_check.rs"]
mod fault_check;
#[path = "common/fault_env.rs"]
mod fault_env;
#[path = "common/faults.rs"]
mod faults;
#[path = "common/retention_cut.rs"]
mod retention_cut;

use std::path::Path;
use std::time::Duration;

use common::*;
use fault_env::{tansu_bin, Broker};
use faults::{produce_tracked, Logs};
use playsource_domain::Ts;
use playsource_kafka::Topics;
use playsource_stream::StreamConfig;
use retention_cut::{delete_below, watermarks};
use sqlx::PgPool;

/// A stream configuration for the test's own broker: fast flushes, exit when idle.
fn config_on(brokers: &str, t: &Topics, group: &str, archive: &Path) -> StreamConfig {
    let mut cfg = StreamConfig::new(brokers, archive);
    cfg.topics = t.clone();
    cfg.group_id = group.to_owned();
    cfg.flush_interval = Duration::from_millis(200);
    cfg.exit_when_idle = Some(Duration::from_secs(3));
    cfg
}

/// Produces `msgs` to `topic` on `brokers`: where each one landed.
async fn produce_at(brokers: &str, topic: &str, msgs: &Msgs) -> Vec<(i32, i64)> {
    let p = playsource_kafka::producer(brokers).unwrap();
    produce_tracked(&p, topic, msgs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// The retention-loss counter per (topic, partition) label pair, from the rendered metrics.
fn retention_lost(rendered: &str) -> Vec<(String, String, u64)> {
    let name = playsource_stream::metrics::RETENTION_LOST;
    let label = |line: &str, key: &str| {
        let from = line.find(&format!("{key}=\""))? + key.len() + 2;
        let len = line[from..].find('"')?;
        Some(line[from..from + len].to_owned())
    };
    rendered
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| {
            let value = l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64;
            (
                label(l, "topic").unwrap(),
                label(l, "partition").unwrap(),
                value,
            )
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn messages_retention_deleted_before_the_stream_read_them_are_counted_and_skipped(
    pool: PgPool,
) {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let bin = tansu_bin().expect(
        "no tansu binary: install tansu (cargo install tansu) or point PLAYSOURCE_TANSU at it",
    );
    let logs = Logs::new("retention");
    let mut broker = Broker::start(bin, &logs).await;
    let brokers = broker.brokers();
    let t = topics("ret");
    create_topics_on(&brokers, &t).await;
    let archive = tempfile::tempdir().unwrap();
    let group = format!("g-{}", t.plays);

    // Part one, read and committed by a first run.
    let start = Ts::parse_rfc3339("2026-11-21T10:00:00Z").unwrap();
    let w1 = workload(41, 200, start, 2);
    load_catalog(&pool, &w1.catalog).await;
    produce_at(&brokers, &t.impressions, &imp_msgs(&w1.impressions)).await;
    let plays1 = produce_at(&brokers, &t.plays, &play_msgs(&w1.plays)).await;
    run_until_idle(config_on(&brokers, &t, &group, archive.path()), &pool).await;
    assert!(
        retention_lost(&metrics.render()).is_empty(),
        "nothing was lost yet"
    );

    // Part two, three days later (no attribution window reaches back to part one, so the state
    // the lost messages took with them does not matter), produced while the stream is down.
    let w2 = workload(42, 200, Ts(start.0 + 3 * 86_400_000), 2);
    produce_at(&brokers, &t.impressions, &imp_msgs(&w2.impressions)).await;
    let plays2 = produce_at(&brokers, &t.plays, &play_msgs(&w2.plays)).await;

    // The plays partition with most of part two loses the first half of it to "retention".
    let p = (0..PARTITIONS)
        .max_by_key(|q| plays2.iter().filter(|(pp, _)| pp == q).count())
        .unwrap();
    let committed = playsource_stream::sink_postgres::committed_offset(&pool, &group, &t.plays, p)
        .await
        .unwrap()
        .expect("the first run committed the plays partition");
    let end1 = plays1
        .iter()
        .filter(|(pp, _)| *pp == p)
        .map(|(_, o)| o + 1)
        .max()
        .unwrap_or(0);
    assert_eq!(committed, end1, "the first run read part one to its end");
    let lost = plays2.iter().filter(|(pp, _)| *pp == p).count() as i64 / 2;
    assert!(lost > 0, "part two has plays on partition {p}");
    let cut = committed + lost;
    broker.stop().await;
    assert_eq!(
        delete_below(&broker.db(), &t.plays, p, cut),
        cut,
        "every record below the cut was in tansu's SQLite file"
    );
    broker.restart().await;
    let (low, high) = watermarks(&brokers, &t.plays, p);
    assert_eq!(
        low, cut,
        "tansu reports the smallest offset left as the earliest"
    );

    // Second run: counts the lost messages, continues from the earliest retained, ends idle.
    run_until_idle(config_on(&brokers, &t, &group, archive.path()), &pool).await;
    assert_eq!(
        retention_lost(&metrics.render()),
        vec![(t.plays.clone(), p.to_string(), lost as u64)],
        "exactly the deleted unread plays of partition {p} are counted, nothing else"
    );
    let committed = playsource_stream::sink_postgres::committed_offset(&pool, &group, &t.plays, p)
        .await
        .unwrap();
    assert_eq!(
        committed,
        Some(high),
        "the partition was read to its end after the gap"
    );

    // The views equal the reference over every event except the lost plays.
    let gone = |at: &(i32, i64)| at.0 == p && at.1 < cut;
    let survivors: Vec<_> = w2
        .plays
        .iter()
        .zip(&plays2)
        .filter(|(_, at)| !gone(at))
        .map(|(play, _)| play.clone())
        .collect();
    assert_eq!(survivors.len() as i64, w2.plays.len() as i64 - lost);
    let reference = Workload {
        impressions: w1
            .impressions
            .iter()
            .chain(&w2.impressions)
            .cloned()
            .collect(),
        plays: w1.plays.iter().cloned().chain(survivors).collect(),
        catalog: w1.catalog.clone(),
    };
    assert_views_exact(&pool, &reference).await;
}
