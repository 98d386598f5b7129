//! The dead-letter topic (contract §1): a rejected message goes there with its original key and
//! bytes and two headers, `error` (why) and `source` (`topic/partition/offset`). Delivery is
//! awaited before the flush that commits the message's offset.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::error::Error;

/// Where a rejected message came from.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The `source` header's value.
pub fn source_header(s: &Source<'_>) -> String {
    format!("{}/{}/{}", s.topic, s.partition, s.offset)
}

/// Enqueues `payload` (the original bytes) on the DLQ; returns the delivery to await.
pub async fn send(
    producer: &FutureProducer,
    dlq_topic: &str,
    src: Source<'_>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    error: &str,
) -> Result<DeliveryFuture, Error> {
    let source = source_header(&src);
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "error",
                value: Some(error.as_bytes()),
            })
            .insert(Header {
                key: "source",
                value: Some(source.as_bytes()),
            });
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(dlq_topic).headers(headers);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = payload {
            rec = rec.payload(p);
        }
        match producer.send_result(rec) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((source, _)) => {
                return Err(Error::Publish {
                    topic: dlq_topic.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Enqueues one message with a key (enriched plays).
pub async fn send_plain(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> Result<DeliveryFuture, Error> {
    loop {
        let rec = FutureRecord::to(topic).key(key).payload(payload);
        match producer.send_result(rec) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((source, _)) => {
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Waits for every delivery; the first failure is an error naming `topic`.
pub async fn await_all(topic: &str, deliveries: Vec<DeliveryFuture>) -> Result<(), Error> {
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, _))) => {
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source,
                })
            }
            Err(_) => {
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source: KafkaError::Canceled,
                })
            }
        }
    }
    Ok(())
}
