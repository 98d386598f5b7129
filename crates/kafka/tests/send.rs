//! The producer pipeline (`send::Pipeline`, `send::pump`) and the co-partitioning check
//! (`admin::check_inputs`) against a real Kafka-protocol broker (tansu at 127.0.0.1:9092, or
//! `KAFKA_BROKERS`). Every test uses its own topic names.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::{Duration, Instant};

use playsource_kafka::admin::{check_inputs, ensure_topics};
use playsource_kafka::send::{pump, Message, Pipeline};
use playsource_kafka::{Error, Topics};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| playsource_kafka::DEFAULT_BROKERS.into())
}

fn unique_topics(tag: &str) -> Topics {
    let s = uuid::Uuid::new_v4().simple();
    Topics {
        impressions: format!("send-{tag}-imp-{s}"),
        plays: format!("send-{tag}-plays-{s}"),
        enriched: format!("send-{tag}-enriched-{s}"),
        dlq: format!("send-{tag}-dlq-{s}"),
    }
}

/// Reads `topic` (partitions 0..n) from the beginning until `expected` messages arrived or
/// nothing came for 10 s, and returns how many it read.
fn count_messages(topic: &str, partitions: i32, expected: u64) -> u64 {
    let c: BaseConsumer = playsource_kafka::client_config(&brokers())
        .set("group.id", format!("send-test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut n = 0;
    let mut idle = Instant::now();
    while n < expected && idle.elapsed() < Duration::from_secs(10) {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            m.unwrap();
            n += 1;
            idle = Instant::now();
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_inputs_names_a_missing_topic_and_unequal_counts() {
    let b = brokers();
    let missing = unique_topics("missing");
    let err = check_inputs(&b, &missing.impressions, &missing.plays)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingTopic { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&missing.impressions)
            && msg.contains("does not exist on")
            && msg.contains("playsource init"),
        "what, where, what to do: {msg}"
    );

    let two = unique_topics("two");
    let three = unique_topics("three");
    ensure_topics(&b, &two, 2).await.unwrap();
    ensure_topics(&b, &three, 3).await.unwrap();
    assert_eq!(
        check_inputs(&b, &two.impressions, &two.plays)
            .await
            .unwrap(),
        2
    );
    // Only the plays topic is missing.
    let err = check_inputs(&b, &two.impressions, &missing.plays)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&missing.plays), "{err}");

    let err = check_inputs(&b, &two.impressions, &three.plays)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PartitionMismatch {
                impressions_partitions: 2,
                plays_partitions: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("same partition count") && msg.contains("co-partitioned"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_delivers_every_message_and_counts_per_topic() {
    let b = brokers();
    let t = unique_topics("deliver");
    ensure_topics(&b, &t, 2).await.unwrap();
    let producer = playsource_kafka::producer(&b).unwrap();
    let mut p: Pipeline<u64> =
        Pipeline::new(producer, vec![t.impressions.clone(), t.plays.clone()], None);
    for i in 0..1_000u64 {
        let topic = usize::from(i % 5 < 3);
        let key = (i % 17).to_string();
        p.send(topic, key.as_bytes(), b"{}", i).await.unwrap();
    }
    p.flush().await.unwrap();
    assert_eq!(p.delivered(), &[400, 600]);
    assert_eq!(p.latest(), Some(&999));
    assert!(p.failure().is_none());
    assert_eq!(count_messages(&t.impressions, 2, 400), 400);
    assert_eq!(count_messages(&t.plays, 2, 600), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_keeps_the_earliest_failed_delivery_and_stops() {
    // Nothing listens on port 1: every delivery times out.
    let producer: FutureProducer = playsource_kafka::client_config("127.0.0.1:1")
        .set("message.timeout.ms", "1000")
        .set("log_level", "0")
        .create()
        .unwrap();
    let mut p: Pipeline<u64> = Pipeline::new(producer, vec!["a".into(), "b".into()], None);
    for tag in [7u64, 3, 9] {
        p.send(0, b"k", b"v", tag).await.unwrap();
    }
    p.drain().await;
    let f = p.failure().unwrap();
    assert_eq!((f.topic, f.tag), (0, 3), "the earliest tag is kept");
    assert_eq!(p.delivered(), &[0, 0]);
    assert!(
        p.send(1, b"k", b"v", 1).await.is_err(),
        "nothing more is sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_sends_until_a_read_error_and_returns_it() {
    let b = brokers();
    let t = unique_topics("pump");
    ensure_topics(&b, &t, 1).await.unwrap();
    let producer = playsource_kafka::producer(&b).unwrap();
    let mut p: Pipeline<u64> = Pipeline::new(producer, vec![t.impressions.clone()], None);
    // Three chunks of 10 messages, then a read error; the fifth chunk is never read.
    let mut chunks_seen = 0;
    let (read, err) = pump(
        &mut p,
        0u64,
        |read: &mut u64| {
            *read += 1;
            match *read {
                1..=3 => Ok(Some(
                    (0..10)
                        .map(|i| Message {
                            topic: 0,
                            key: b"k".to_vec(),
                            payload: b"{}".to_vec(),
                            tag: *read * 100 + i,
                        })
                        .collect(),
                )),
                4 => Err("file 4 is broken"),
                _ => panic!("read on after an error"),
            }
        },
        2,
        |_| chunks_seen += 1,
    )
    .await
    .unwrap();
    assert_eq!(read, 4);
    assert_eq!(err, Some("file 4 is broken"));
    assert_eq!(chunks_seen, 3);
    assert_eq!(
        p.delivered(),
        &[30],
        "every message before the error is delivered"
    );
    assert_eq!(p.latest(), Some(&309));
    assert_eq!(count_messages(&t.impressions, 1, 30), 30);
}

#[tokio::test]
async fn dry_run_counts_without_sending() {
    let mut p: Pipeline<u64> = Pipeline::dry_run(vec!["x".into(), "y".into()]);
    for i in 0..5 {
        p.send(usize::from(i % 2 == 1), b"k", b"v", i)
            .await
            .unwrap();
    }
    assert_eq!(p.delivered(), &[3, 2]);
    assert_eq!(p.handed_over(), 5);
}
