//! Publishing: the dead-letter topic (contract §1: a rejected message goes there with its original
//! key and bytes and two headers, `error` (why) and `source` (`topic/partition/offset`)) and the
//! enriched plays. Deliveries are awaited before the flush that commits the messages' offsets.
//!
//! The [`Publisher`] rides through broker restarts: a message whose delivery failed is sent again
//! (with backoff, within the retry budget) by a fresh producer, since an idempotent producer whose
//! broker lost its producer state stays failed. Both topics are at-least-once already (a crash
//! between publishing and committing publishes again), so a resend adds nothing new.

use std::sync::RwLock;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};

use crate::error::Error;
use crate::retry::{Backoff, RetryPolicy};

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

/// The two headers of a dead letter.
pub fn dlq_headers(src: Source<'_>, error: &str) -> OwnedHeaders {
    let source = source_header(&src);
    OwnedHeaders::new()
        .insert(Header {
            key: "error",
            value: Some(error.as_bytes()),
        })
        .insert(Header {
            key: "source",
            value: Some(source.as_bytes()),
        })
}

/// The stream's producer, replaced by a new one when deliveries fail.
pub struct Publisher {
    brokers: String,
    current: RwLock<FutureProducer>,
}

impl Publisher {
    /// A publisher with a fresh producer for `brokers`.
    pub fn new(brokers: &str) -> Result<Publisher, Error> {
        Ok(Publisher {
            brokers: brokers.to_owned(),
            current: RwLock::new(playsource_kafka::producer(brokers)?),
        })
    }

    /// The producer in use (a cheap handle).
    pub fn producer(&self) -> FutureProducer {
        match self.current.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces `failed` (unless that happened already) with a new producer; whatever `failed`
    /// still holds is purged, so its deliveries fail now rather than after the message timeout.
    fn renew(&self, failed: &FutureProducer) -> Result<(), Error> {
        let fresh = playsource_kafka::producer(&self.brokers)?;
        let mut cur = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cur.client().native_ptr() == failed.client().native_ptr() {
            tracing::warn!(fatal = ?failed.client().fatal_error(), "replacing the producer");
            *cur = fresh;
        }
        drop(cur);
        failed.purge(PurgeConfig::default().queue().inflight());
        Ok(())
    }

    /// Enqueues one message (waiting while the local queue is full); returns the delivery to
    /// await. A producer that failed fatally is replaced once before giving up.
    pub async fn enqueue(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> Result<DeliveryFuture, Error> {
        let mut renewed = false;
        loop {
            let producer = self.producer();
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(h) = &headers {
                rec = rec.headers(h.clone());
            }
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
                Err((_, _)) if !renewed && producer.client().fatal_error().is_some() => {
                    self.renew(&producer)?;
                    renewed = true;
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

    /// Enqueues a dead letter: the original key and bytes with the `error` and `source` headers.
    pub async fn dead_letter(
        &self,
        dlq_topic: &str,
        src: Source<'_>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        error: &str,
    ) -> Result<DeliveryFuture, Error> {
        self.enqueue(dlq_topic, key, payload, Some(dlq_headers(src, error)))
            .await
    }

    /// Waits until every delivery succeeded. Failed messages are sent again by a new producer,
    /// with backoff, until they are delivered or `retry` gives up (the last failure is the error,
    /// naming `topic`).
    pub async fn deliver_all(
        &self,
        topic: &str,
        deliveries: Vec<DeliveryFuture>,
        retry: &RetryPolicy,
    ) -> Result<(), Error> {
        let mut pending = deliveries;
        let mut backoff = Backoff::new(retry);
        loop {
            let (failed, last) = await_round(topic, pending).await?;
            let Some(err) = last else {
                return Ok(());
            };
            if !backoff.again("publish", &err).await {
                return Err(err);
            }
            self.renew(&self.producer())?;
            pending = Vec::with_capacity(failed.len());
            for m in &failed {
                let headers = m.headers().cloned();
                pending.push(
                    self.enqueue(m.topic(), m.key(), m.payload(), headers)
                        .await?,
                );
            }
        }
    }
}

/// Awaits `deliveries`; returns the messages that failed and the last failure.
async fn await_round(
    topic: &str,
    deliveries: Vec<DeliveryFuture>,
) -> Result<(Vec<OwnedMessage>, Option<Error>), Error> {
    let mut failed = Vec::new();
    let mut last = None;
    for d in deliveries {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((source, msg))) => {
                failed.push(msg);
                last = Some(Error::Publish {
                    topic: topic.to_owned(),
                    source,
                });
            }
            // The producer went away without reporting: the message cannot be sent again.
            Err(_) => {
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    source: KafkaError::Canceled,
                })
            }
        }
    }
    Ok((failed, last))
}
