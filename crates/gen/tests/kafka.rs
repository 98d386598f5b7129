//! `gen --to kafka` against the real broker (tansu at 127.0.0.1:9092, or `KAFKA_BROKERS`):
//! keys are member ids, and a member's impressions and plays land on the same partition number.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use playsource_domain::{decode_impression, decode_play, Ts};
use playsource_gen::sink_kafka::produce;
use playsource_gen::{GenConfig, Traffic};
use playsource_kafka::Topics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| playsource_kafka::DEFAULT_BROKERS.into())
}

/// Reads every message of `topic` (partitions 0..n) from the beginning until `expected`
/// arrived: (partition, key, payload).
fn read_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, String, Vec<u8>)> {
    let consumer: BaseConsumer = playsource_kafka::client_config(brokers)
        .set("group.id", format!("gen-test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            out.push((m.partition(), key, m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gen_to_kafka_keys_by_member_and_co_partitions() {
    let brokers = brokers();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let topics = Topics {
        impressions: format!("gen-imp-{suffix}"),
        plays: format!("gen-plays-{suffix}"),
        enriched: format!("gen-enriched-{suffix}"),
        dlq: format!("gen-dlq-{suffix}"),
    };
    playsource_kafka::admin::ensure_topics(&brokers, &topics, 4)
        .await
        .unwrap();
    let cfg = GenConfig {
        seed: 11,
        members: 60,
        videos: 200,
        start: Ts::parse_rfc3339("2026-11-20T00:00:00Z").unwrap(),
        events: Some(4_000),
        duplicate_share: 0.02,
        malformed_share: 0.01,
        ..Default::default()
    };
    let counts = produce(Traffic::new(&cfg).unwrap(), &brokers, &topics, None, None)
        .await
        .unwrap();
    assert_eq!(counts.messages(), 4_000);

    // What the workload holds per topic, to know when everything is read back.
    let (mut n_imp, mut n_play) = (0, 0);
    for m in Traffic::new(&cfg).unwrap() {
        match m.topic {
            playsource_gen::Topic::Impressions => n_imp += 1,
            playsource_gen::Topic::Plays => n_play += 1,
        }
    }
    let (b, t) = (brokers.clone(), topics.clone());
    let (imps, plays) = tokio::task::spawn_blocking(move || {
        (
            read_all(&b, &t.impressions, 4, n_imp),
            read_all(&b, &t.plays, 4, n_play),
        )
    })
    .await
    .unwrap();
    assert_eq!(imps.len(), n_imp);
    assert_eq!(plays.len(), n_play);

    let mut partition_of: HashMap<String, i32> = HashMap::new();
    let mut valid = 0;
    let mut partitions_used = std::collections::HashSet::new();
    for (topic, msgs) in [("impressions", &imps), ("plays", &plays)] {
        for (partition, key, payload) in msgs.iter() {
            let member = match topic {
                "impressions" => decode_impression(payload).map(|e| e.member_id.0),
                _ => decode_play(payload).map(|e| e.member_id.0),
            };
            if let Ok(member) = member {
                valid += 1;
                assert_eq!(key, &member.to_string(), "the key is the member id");
            }
            assert!(
                key.parse::<u64>().is_ok(),
                "key {key:?} is a decimal member id"
            );
            partitions_used.insert(*partition);
            let first = *partition_of.entry(key.clone()).or_insert(*partition);
            assert_eq!(
                first, *partition,
                "member {key}'s {topic} are not on partition {first}"
            );
        }
    }
    assert_eq!(valid as u64, 4_000 - counts.malformed);
    assert!(partitions_used.len() > 1, "keys spread over the partitions");
}

fn unique_topics(tag: &str) -> Topics {
    let s = uuid::Uuid::new_v4().simple().to_string();
    Topics {
        impressions: format!("gen-{tag}-imp-{s}"),
        plays: format!("gen-{tag}-plays-{s}"),
        enriched: format!("gen-{tag}-enriched-{s}"),
        dlq: format!("gen-{tag}-dlq-{s}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unequal_input_topics_are_refused() {
    use playsource_gen::sink_kafka::check_topics;
    let brokers = brokers();
    let missing = unique_topics("missing");
    let err = check_topics(&brokers, &missing).await.unwrap_err();
    assert!(
        err.to_string().contains(&missing.impressions)
            && err.to_string().contains("playsource init"),
        "{err}"
    );

    let two = unique_topics("two");
    let three = unique_topics("three");
    playsource_kafka::admin::ensure_topics(&brokers, &two, 2)
        .await
        .unwrap();
    playsource_kafka::admin::ensure_topics(&brokers, &three, 3)
        .await
        .unwrap();
    assert_eq!(check_topics(&brokers, &two).await.unwrap(), 2);
    let mixed = Topics {
        plays: three.plays.clone(),
        ..two.clone()
    };
    let err = check_topics(&brokers, &mixed)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("same partition count"), "{err}");
}
