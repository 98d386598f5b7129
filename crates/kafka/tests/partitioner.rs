//! The partitioners of `playsource_kafka::partitioner` predict where a real producer puts keyed
//! messages: playsource's own producer (librdkafka's default, `consistent_random`) and a
//! librdkafka producer set to `murmur2_random` (the Java client's partitioner), against a real
//! Kafka-protocol broker (tansu at 127.0.0.1:9092, or `KAFKA_BROKERS`).

#![allow(clippy::unwrap_used)] // tests may unwrap

use playsource_kafka::admin::ensure_topics;
use playsource_kafka::partitioner::{member_key, Partitioner};
use playsource_kafka::Topics;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| playsource_kafka::DEFAULT_BROKERS.into())
}

/// A topic of `partitions` partitions of its own (created with the four topics of a test set).
async fn topic(tag: &str, partitions: i32) -> String {
    let s = uuid::Uuid::new_v4().simple();
    let t = Topics {
        impressions: format!("part-{tag}-imp-{s}"),
        plays: format!("part-{tag}-plays-{s}"),
        enriched: format!("part-{tag}-enriched-{s}"),
        dlq: format!("part-{tag}-dlq-{s}"),
    };
    ensure_topics(&brokers(), &t, partitions).await.unwrap();
    t.impressions
}

/// Produces one message per member key of `members` to `topic`; the partition each one landed in.
async fn produce(p: &FutureProducer, topic: &str, members: &[u64]) -> Vec<(u64, i32)> {
    let mut sent = Vec::new();
    for &m in members {
        let key = member_key(m);
        let rec = FutureRecord::to(topic).key(&key).payload("{}");
        sent.push((m, p.send_result(rec).map_err(|(e, _)| e).unwrap()));
    }
    let mut out = Vec::new();
    for (m, f) in sent {
        let delivery = f.await.unwrap().map_err(|(e, _)| e).unwrap();
        out.push((m, delivery.partition));
    }
    out
}

/// Member ids: small ones, and large ones up to u64::MAX (keys of every length from 1 to 20).
fn members() -> Vec<u64> {
    let mut m: Vec<u64> = (1..=300).collect();
    let mut x = 1u64;
    while let Some(next) = x.checked_mul(7) {
        m.push(next + 3);
        x = next;
    }
    m.push(u64::MAX);
    m
}

async fn check(producer: &FutureProducer, partitioner: Partitioner, partitions: i32) {
    let topic = topic(partitioner.name(), partitions).await;
    let landed = produce(producer, &topic, &members()).await;
    let wrong: Vec<_> = landed
        .iter()
        .filter(|(m, p)| partitioner.partition(member_key(*m).as_bytes(), partitions) != Some(*p))
        .collect();
    assert!(
        wrong.is_empty(),
        "{partitioner} on {partitions} partitions mispredicts (member, actual partition): {wrong:?}"
    );
    let used: std::collections::BTreeSet<i32> = landed.iter().map(|(_, p)| *p).collect();
    assert_eq!(used.len(), partitions as usize, "every partition got keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_random_predicts_playsources_producer() {
    let p = playsource_kafka::producer(&brokers()).unwrap();
    check(&p, Partitioner::ConsistentRandom, 7).await;
    check(&p, Partitioner::ConsistentRandom, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn murmur2_random_predicts_a_murmur2_random_producer() {
    let p: FutureProducer = playsource_kafka::client_config(&brokers())
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    check(&p, Partitioner::Murmur2Random, 7).await;
    check(&p, Partitioner::Murmur2Random, 4).await;
    // The two partitioners disagree on many keys, so the checks above tell them apart.
    let differ = members()
        .iter()
        .filter(|m| {
            let k = member_key(**m);
            Partitioner::ConsistentRandom.partition(k.as_bytes(), 7)
                != Partitioner::Murmur2Random.partition(k.as_bytes(), 7)
        })
        .count();
    assert!(differ > 100, "{differ}");
}
