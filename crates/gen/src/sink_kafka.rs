//! Produces a workload to Kafka: both topics keyed by member id (decimal string), librdkafka's
//! default partitioner, the contract's JSON values (malformed ones as raw bytes).

use std::collections::VecDeque;

use playsource_kafka::Topics;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::error::Error;
use crate::message::{Counts, Topic};
use crate::metrics;
use crate::progress::Progress;
use crate::rate::TokenBucket;
use crate::traffic::Traffic;

/// Deliveries awaited at most at once before waiting for the oldest.
const IN_FLIGHT: usize = 100_000;

/// Produces every message of `traffic` to `topics.impressions` / `topics.plays` on `brokers`,
/// paced to `rate` messages per second when given, waits until Kafka has confirmed every one,
/// and returns the counts.
pub async fn produce(
    traffic: Traffic,
    brokers: &str,
    topics: &Topics,
    rate: Option<f64>,
    progress: Option<&Progress>,
) -> Result<Counts, Error> {
    let producer = playsource_kafka::producer(brokers)?;
    produce_with(&producer, traffic, topics, rate, progress).await
}

/// Like [`produce`], with a producer of the caller's.
pub async fn produce_with(
    producer: &FutureProducer,
    mut traffic: Traffic,
    topics: &Topics,
    rate: Option<f64>,
    progress: Option<&Progress>,
) -> Result<Counts, Error> {
    let mut bucket = rate.filter(|r| *r > 0.0).map(TokenBucket::new);
    let mut in_flight: VecDeque<(DeliveryFuture, Topic)> = VecDeque::new();
    for msg in traffic.by_ref() {
        if let Some(b) = bucket.as_mut() {
            let wait = b.take();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let topic_name = match msg.topic {
            Topic::Impressions => topics.impressions.as_str(),
            Topic::Plays => topics.plays.as_str(),
        };
        let key = msg.key_string();
        let mut record = FutureRecord::to(topic_name)
            .key(key.as_str())
            .payload(msg.payload.as_slice());
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    in_flight.push_back((fut, msg.topic));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    match in_flight.pop_front() {
                        Some((fut, t)) => confirm(fut, topic_of(topics, t)).await?,
                        None => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
                Err((source, _)) => {
                    return Err(Error::Deliver {
                        topic: topic_name.to_owned(),
                        source,
                    })
                }
            }
        }
        ::metrics::counter!(metrics::MESSAGES, "topic" => topic_name.to_owned(), "kind" => msg.kind.as_str())
            .increment(1);
        if let Some(p) = progress {
            p.on_message(&msg);
        }
        while in_flight.len() > IN_FLIGHT {
            if let Some((fut, t)) = in_flight.pop_front() {
                confirm(fut, topic_of(topics, t)).await?;
            }
        }
    }
    while let Some((fut, t)) = in_flight.pop_front() {
        confirm(fut, topic_of(topics, t)).await?;
    }
    Ok(traffic.counts().clone())
}

/// Checks that both input topics exist with the same partition count (contract §1), which it
/// returns.
pub async fn check_topics(brokers: &str, topics: &Topics) -> Result<i32, Error> {
    let count = |topic: &str| {
        let topic = topic.to_owned();
        async move {
            playsource_kafka::admin::partition_count(brokers, &topic)
                .await?
                .ok_or(Error::MissingTopic {
                    topic,
                    brokers: brokers.to_owned(),
                })
        }
    };
    let imp = count(&topics.impressions).await?;
    let plays = count(&topics.plays).await?;
    if imp != plays {
        return Err(Error::NotCoPartitioned {
            impressions: topics.impressions.clone(),
            impressions_partitions: imp,
            plays: topics.plays.clone(),
            plays_partitions: plays,
        });
    }
    Ok(imp)
}

fn topic_of(topics: &Topics, t: Topic) -> &str {
    match t {
        Topic::Impressions => &topics.impressions,
        Topic::Plays => &topics.plays,
    }
}

async fn confirm(fut: DeliveryFuture, topic: &str) -> Result<(), Error> {
    match fut.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(Error::Deliver {
            topic: topic.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Deliver {
            topic: topic.to_owned(),
            source: KafkaError::Canceled,
        }),
    }
}
