//! Topic administration against a real Kafka-protocol broker (tansu at 127.0.0.1:9092, or
//! `KAFKA_BROKERS`). Every test uses its own topic names.

#![allow(clippy::unwrap_used)] // tests may unwrap

use playsource_kafka::admin::{ensure_topics, partition_count};
use playsource_kafka::{Error, Topics};

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| playsource_kafka::DEFAULT_BROKERS.into())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn unique_topics() -> Topics {
    Topics {
        impressions: unique("impressions"),
        plays: unique("plays"),
        enriched: unique("enriched"),
        dlq: unique("dlq"),
    }
}

async fn counts(t: &Topics) -> [Option<i32>; 4] {
    let b = brokers();
    [
        partition_count(&b, &t.impressions).await.unwrap(),
        partition_count(&b, &t.plays).await.unwrap(),
        partition_count(&b, &t.enriched).await.unwrap(),
        partition_count(&b, &t.dlq).await.unwrap(),
    ]
}

#[tokio::test]
async fn creates_all_topics_with_n_partitions_and_reruns_cleanly() {
    let t = unique_topics();
    assert_eq!(counts(&t).await, [None; 4]);
    ensure_topics(&brokers(), &t, 3).await.unwrap();
    assert_eq!(counts(&t).await, [Some(3); 4]);
    ensure_topics(&brokers(), &t, 3).await.unwrap();
    assert_eq!(counts(&t).await, [Some(3); 4]);
}

#[tokio::test]
async fn existing_matching_inputs_are_kept_when_another_count_is_asked() {
    let t = unique_topics();
    ensure_topics(&brokers(), &t, 2).await.unwrap();
    ensure_topics(&brokers(), &t, 5).await.unwrap();
    assert_eq!(counts(&t).await, [Some(2); 4]);
}

#[tokio::test]
async fn creates_a_missing_input_topic_with_the_existing_ones_count() {
    let t = unique_topics();
    let mut first = unique_topics();
    first.impressions = t.impressions.clone();
    ensure_topics(&brokers(), &first, 4).await.unwrap();
    // `plays` is missing; asking for the same count creates it co-partitioned.
    ensure_topics(&brokers(), &t, 4).await.unwrap();
    assert_eq!(counts(&t).await, [Some(4); 4]);
}

#[tokio::test]
async fn refuses_to_create_an_input_topic_that_would_not_match() {
    let t = unique_topics();
    let mut first = unique_topics();
    first.impressions = t.impressions.clone();
    ensure_topics(&brokers(), &first, 4).await.unwrap();

    let err = ensure_topics(&brokers(), &t, 8).await.unwrap_err();
    assert!(matches!(err, Error::WouldMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&t.impressions) && msg.contains(&t.plays),
        "{msg}"
    );
    assert!(msg.contains("--partitions 4"), "says what to do: {msg}");
    assert_eq!(
        partition_count(&brokers(), &t.plays).await.unwrap(),
        None,
        "nothing created"
    );
    assert_eq!(
        partition_count(&brokers(), &t.dlq).await.unwrap(),
        None,
        "nothing created"
    );
}

#[tokio::test]
async fn existing_input_topics_with_different_counts_are_an_error() {
    let t = unique_topics();
    let mut a = unique_topics();
    a.impressions = t.impressions.clone();
    ensure_topics(&brokers(), &a, 4).await.unwrap();
    let mut b = unique_topics();
    b.plays = t.plays.clone();
    ensure_topics(&brokers(), &b, 8).await.unwrap();

    for requested in [4, 8, 2] {
        let err = ensure_topics(&brokers(), &t, requested).await.unwrap_err();
        assert!(matches!(err, Error::PartitionMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("`{}` has 4 partitions", t.impressions)),
            "{msg}"
        );
        assert!(msg.contains(&format!("`{}` has 8", t.plays)), "{msg}");
        assert!(msg.contains("recreate"), "says what to do: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    assert_eq!(
        partition_count(&brokers(), &t.enriched).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn zero_partitions_is_refused() {
    let err = ensure_topics(&brokers(), &unique_topics(), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPartitions(0)), "{err:?}");
}

#[tokio::test]
async fn unreachable_brokers_are_named_in_the_error() {
    let err = partition_count("127.0.0.1:1", "impressions")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("127.0.0.1:1"), "{msg}");
    assert!(msg.contains("KAFKA_BROKERS"), "says what to do: {msg}");
}
