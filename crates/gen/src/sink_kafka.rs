//! Produces a workload to Kafka: both topics keyed by member id (decimal string), librdkafka's
//! default partitioner, the contract's JSON values (malformed ones as raw bytes).

use playsource_kafka::send::{Failure, Pipeline};
use playsource_kafka::Topics;
use rdkafka::producer::FutureProducer;

use crate::error::Error;
use crate::message::Counts;
use crate::metrics;
use crate::progress::Progress;
use crate::traffic::Traffic;

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
    let names = vec![topics.impressions.clone(), topics.plays.clone()];
    let mut pipeline: Pipeline<()> = Pipeline::new(producer.clone(), names, rate);
    for msg in traffic.by_ref() {
        let topic = msg.topic.index();
        let key = msg.key_string();
        if pipeline
            .send(topic, key.as_bytes(), &msg.payload, ())
            .await
            .is_err()
        {
            return Err(deliver_error(&mut pipeline));
        }
        ::metrics::counter!(metrics::MESSAGES, "topic" => pipeline.topic_name(topic).to_owned(), "kind" => msg.kind.as_str())
            .increment(1);
        if let Some(p) = progress {
            p.on_message(&msg);
        }
    }
    if pipeline.flush().await.is_err() {
        return Err(deliver_error(&mut pipeline));
    }
    Ok(traffic.counts().clone())
}

/// Checks that both input topics exist with the same partition count (docs/reference.md §1), which it
/// returns.
pub async fn check_topics(brokers: &str, topics: &Topics) -> Result<i32, Error> {
    Ok(playsource_kafka::admin::check_inputs(brokers, &topics.impressions, &topics.plays).await?)
}

/// The error of the failed delivery that stopped `pipeline`.
fn deliver_error(pipeline: &mut Pipeline<()>) -> Error {
    match pipeline.take_failure() {
        Some(Failure { topic, cause, .. }) => Error::Deliver {
            topic: pipeline.topic_name(topic).to_owned(),
            cause,
        },
        None => Error::Deliver {
            topic: String::new(),
            cause: rdkafka::error::KafkaError::Canceled,
        },
    }
}
