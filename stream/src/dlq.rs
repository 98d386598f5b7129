//! Publishing: the dead-letter topic (docs/reference.md §1: a rejected message goes there with its original
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
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
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

/// Kafka's default `max.message.bytes` (1 MiB + 12), used when the broker does not report the
/// dead-letter topic's own (tansu 0.6 answers DescribeConfigs with no entries).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// Room kept under the limit for the record batch (61 bytes of header), the record's own varints
/// and a margin for the broker's accounting.
const BATCH_OVERHEAD: usize = 1024;

/// A dead letter's value cut to fit `max_bytes` with its key and headers: the bytes to send and,
/// when cut, the original size (for the `truncated` header).
pub fn fit<'a>(
    max_bytes: usize,
    key: Option<&[u8]>,
    payload: Option<&'a [u8]>,
    headers: &OwnedHeaders,
) -> (Option<&'a [u8]>, Option<usize>) {
    let Some(p) = payload else {
        return (None, None);
    };
    // Header `truncated` with up to 20 digits, plus each header's key, value and varints.
    let header_bytes: usize = (0..headers.count())
        .map(|i| {
            let h = headers.get(i);
            h.key.len() + h.value.map_or(0, <[u8]>::len) + 10
        })
        .sum::<usize>()
        + "truncated".len()
        + 30;
    let room = max_bytes.saturating_sub(BATCH_OVERHEAD + key.map_or(0, <[u8]>::len) + header_bytes);
    if p.len() <= room {
        (Some(p), None)
    } else {
        (Some(&p[..room]), Some(p.len()))
    }
}

/// Checks at start-up that the dead-letter topic exists and returns its `max.message.bytes` (or
/// [`DEFAULT_MAX_MESSAGE_BYTES`] when the broker does not say; logged either way).
pub async fn check_topic(brokers: &str, topic: &str) -> Result<usize, Error> {
    if playsource_kafka::admin::partition_count(brokers, topic)
        .await?
        .is_none()
    {
        return Err(Error::Config(format!(
            "dead-letter topic `{topic}` does not exist on {brokers}; create it with `playsource init` or pass the right --dlq-topic"
        )));
    }
    match playsource_kafka::admin::topic_max_message_bytes(brokers, topic).await? {
        Some(max) => {
            tracing::info!(
                topic,
                max_message_bytes = max,
                "dead-letter topic's message limit, from the broker"
            );
            Ok(max)
        }
        None => {
            tracing::info!(topic, max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES, "the broker does not report the dead-letter topic's max.message.bytes; using Kafka's default");
            Ok(DEFAULT_MAX_MESSAGE_BYTES)
        }
    }
}

/// The stream's producer, replaced by a new one when deliveries fail.
pub struct Publisher {
    brokers: String,
    /// `message.max.bytes` of the producer: the dead-letter topic's `max.message.bytes`.
    max_bytes: usize,
    current: RwLock<FutureProducer>,
}

impl Publisher {
    /// A publisher with a fresh producer for `brokers`, with Kafka's default message limit.
    pub fn new(brokers: &str) -> Result<Publisher, Error> {
        Publisher::with_max_bytes(brokers, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// A publisher whose messages (dead letters cut to fit) stay within `max_bytes`.
    pub fn with_max_bytes(brokers: &str, max_bytes: usize) -> Result<Publisher, Error> {
        Ok(Publisher {
            brokers: brokers.to_owned(),
            max_bytes,
            current: RwLock::new(playsource_kafka::producer_with_max_bytes(
                brokers, max_bytes,
            )?),
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
        let fresh = playsource_kafka::producer_with_max_bytes(&self.brokers, self.max_bytes)?;
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
                Err((cause, _)) => {
                    return Err(Error::Publish {
                        topic: topic.to_owned(),
                        cause,
                    })
                }
            }
        }
    }

    /// Enqueues a dead letter: the original key and bytes with the `error` and `source` headers;
    /// a value too large for the topic is cut to fit and gets a header `truncated` holding its
    /// original size in bytes (docs/reference.md §1).
    pub async fn dead_letter(
        &self,
        dlq_topic: &str,
        src: Source<'_>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        error: &str,
    ) -> Result<DeliveryFuture, Error> {
        let mut headers = dlq_headers(src, error);
        let (value, cut) = fit(self.max_bytes, key, payload, &headers);
        if let Some(size) = cut {
            crate::metrics::dlq_truncated();
            tracing::warn!(source = %source_header(&src), size, limit = self.max_bytes, "dead letter too large for the topic; cut to fit");
            let size = size.to_string();
            headers = headers.insert(Header {
                key: "truncated",
                value: Some(size.as_bytes()),
            });
        }
        self.enqueue(dlq_topic, key, value, Some(headers)).await
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
            Ok(Err((cause, msg))) => {
                failed.push(msg);
                last = Some(Error::Publish {
                    topic: topic.to_owned(),
                    cause,
                });
            }
            // The producer went away without reporting: the message cannot be sent again.
            Err(_) => {
                return Err(Error::Publish {
                    topic: topic.to_owned(),
                    cause: KafkaError::Canceled,
                })
            }
        }
    }
    Ok((failed, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> OwnedHeaders {
        let src = Source {
            topic: "plays",
            partition: 3,
            offset: 42,
        };
        dlq_headers(src, "field `ts` is required but missing")
    }

    #[test]
    fn a_value_that_fits_goes_whole() {
        let v = vec![b'x'; 1000];
        assert_eq!(
            fit(DEFAULT_MAX_MESSAGE_BYTES, Some(b"7"), Some(&v), &headers()),
            (Some(&v[..]), None)
        );
        assert_eq!(fit(10, None, None, &headers()), (None, None));
    }

    #[test]
    fn a_value_too_large_is_cut_to_a_prefix_that_fits_with_key_and_headers() {
        let h = headers();
        let header_bytes: usize = (0..h.count())
            .map(|i| h.get(i).key.len() + h.get(i).value.map_or(0, <[u8]>::len))
            .sum();
        let v = vec![b'x'; 3_000_000];
        let key = vec![b'k'; 100];
        for max in [DEFAULT_MAX_MESSAGE_BYTES, 2_000_000, 1_000_000, 5_000] {
            let (cut, size) = fit(max, Some(&key), Some(&v), &h);
            let cut = cut.unwrap();
            assert_eq!(size, Some(v.len()));
            assert!(cut.len() + key.len() + header_bytes + "truncated3000000".len() < max);
            assert!(cut.len() > max - 1500, "cut to {} of {max}", cut.len());
        }
        // A limit below the overhead leaves an empty value, never a panic.
        assert_eq!(
            fit(100, Some(&key), Some(&v), &h),
            (Some(&v[..0]), Some(v.len()))
        );
    }
}
