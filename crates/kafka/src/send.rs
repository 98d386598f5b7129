//! Producing many messages: paced to a rate, waiting on a full librdkafka queue by confirming
//! the oldest delivery, with a bounded number of unconfirmed deliveries, confirmed counts per
//! topic and the earliest failure. `playsource gen` and `playsource replay` both produce
//! through a [`Pipeline`]; [`pump`] feeds one from a reader on a blocking thread.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::mpsc;

use crate::rate::TokenBucket;
use crate::Error;

/// Deliveries awaited at most at once before waiting for the oldest.
pub const IN_FLIGHT: usize = 100_000;

/// A failed delivery: the index of its topic (see [`Pipeline::new`]), the tag it was sent
/// with and why it failed.
#[derive(Debug)]
pub struct Failure<T> {
    pub topic: usize,
    pub tag: T,
    pub cause: KafkaError,
}

/// A delivery failed (it is kept in [`Pipeline::failure`]); nothing more is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A producer of many messages to a fixed list of topics. Each message carries a tag (e.g. its
/// event time); of several failed deliveries the one with the smallest tag is kept (the first
/// of equal ones), so a caller can say from where to send again.
pub struct Pipeline<T> {
    /// `None`: a dry run, which counts messages as delivered without sending them.
    producer: Option<FutureProducer>,
    topics: Vec<String>,
    bucket: Option<TokenBucket>,
    in_flight: VecDeque<(DeliveryFuture, usize, T)>,
    delivered: Vec<u64>,
    failure: Option<Failure<T>>,
    latest: Option<T>,
}

impl<T: Ord + Clone> Pipeline<T> {
    /// Produces to `topics` (messages name one by its index) with `producer`, paced to `rate`
    /// messages per second when given and positive.
    pub fn new(producer: FutureProducer, topics: Vec<String>, rate: Option<f64>) -> Pipeline<T> {
        let mut p = Pipeline::dry_run(topics);
        p.producer = Some(producer);
        p.bucket = rate.filter(|r| *r > 0.0).map(TokenBucket::new);
        p
    }

    /// Counts messages to `topics` as delivered without sending them, unpaced.
    pub fn dry_run(topics: Vec<String>) -> Pipeline<T> {
        let n = topics.len();
        Pipeline {
            producer: None,
            topics,
            bucket: None,
            in_flight: VecDeque::new(),
            delivered: vec![0; n],
            failure: None,
            latest: None,
        }
    }

    /// The name of topic `topic`.
    pub fn topic_name(&self, topic: usize) -> &str {
        self.topics.get(topic).map_or("", String::as_str)
    }

    /// Confirmed deliveries per topic (with a dry run: messages counted).
    pub fn delivered(&self) -> &[u64] {
        &self.delivered
    }

    /// Messages confirmed or still in flight.
    pub fn handed_over(&self) -> u64 {
        self.delivered.iter().sum::<u64>() + self.in_flight.len() as u64
    }

    /// The tag of the latest message handed over.
    pub fn latest(&self) -> Option<&T> {
        self.latest.as_ref()
    }

    /// The failed delivery with the smallest tag, if any.
    pub fn failure(&self) -> Option<&Failure<T>> {
        self.failure.as_ref()
    }

    /// Takes the failure out (see [`Pipeline::failure`]).
    pub fn take_failure(&mut self) -> Option<Failure<T>> {
        self.failure.take()
    }

    /// Sends one message to topic `topic` (an index into the topics given to
    /// [`Pipeline::new`]): waits for the rate, and while librdkafka's queue is full confirms the
    /// oldest delivery; then confirms the oldest while more than [`IN_FLIGHT`] are unconfirmed.
    /// `Err(Stopped)` once a delivery failed.
    pub async fn send(
        &mut self,
        topic: usize,
        key: &[u8],
        payload: &[u8],
        tag: T,
    ) -> Result<(), Stopped> {
        if self.failure.is_some() {
            return Err(Stopped);
        }
        if let Some(b) = self.bucket.as_mut() {
            let wait = b.take();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        self.latest = Some(tag.clone());
        let Some(producer) = &self.producer else {
            if let Some(n) = self.delivered.get_mut(topic) {
                *n += 1;
            }
            return Ok(());
        };
        let name = self.topics.get(topic).map_or("", String::as_str);
        let mut record = FutureRecord::to(name).key(key).payload(payload);
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    self.in_flight.push_back((fut, topic, tag));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if !confirm_oldest(&mut self.in_flight, &mut self.delivered, &mut self.failure)
                        .await?
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((cause, _)) => {
                    self.fail(topic, tag, cause);
                    return Err(Stopped);
                }
            }
        }
        while self.in_flight.len() > IN_FLIGHT {
            confirm_oldest(&mut self.in_flight, &mut self.delivered, &mut self.failure).await?;
        }
        Ok(())
    }

    /// Confirms the deliveries in flight in order, stopping at the first that failed.
    pub async fn flush(&mut self) -> Result<(), Stopped> {
        while confirm_oldest(&mut self.in_flight, &mut self.delivered, &mut self.failure).await? {}
        Ok(())
    }

    /// Awaits every delivery in flight, even after a failure, so the counts are exact.
    pub async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            let _ =
                confirm_oldest(&mut self.in_flight, &mut self.delivered, &mut self.failure).await;
        }
    }

    fn fail(&mut self, topic: usize, tag: T, cause: KafkaError) {
        record_failure(&mut self.failure, topic, tag, cause);
    }
}

/// Awaits the oldest delivery: `Ok(false)` when none is in flight, `Err(Stopped)` when it
/// failed (recorded in `failure`).
async fn confirm_oldest<T: Ord>(
    in_flight: &mut VecDeque<(DeliveryFuture, usize, T)>,
    delivered: &mut [u64],
    failure: &mut Option<Failure<T>>,
) -> Result<bool, Stopped> {
    let Some((fut, topic, tag)) = in_flight.pop_front() else {
        return Ok(false);
    };
    let cause = match fut.await {
        Ok(Ok(_)) => {
            if let Some(n) = delivered.get_mut(topic) {
                *n += 1;
            }
            return Ok(true);
        }
        Ok(Err((cause, _))) => cause,
        Err(_) => KafkaError::Canceled,
    };
    record_failure(failure, topic, tag, cause);
    Err(Stopped)
}

fn record_failure<T: Ord>(
    failure: &mut Option<Failure<T>>,
    topic: usize,
    tag: T,
    cause: KafkaError,
) {
    if failure.as_ref().is_none_or(|f| tag < f.tag) {
        *failure = Some(Failure { topic, tag, cause });
    }
}

/// One message for [`pump`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<T> {
    /// Index of the topic (see [`Pipeline::new`]).
    pub topic: usize,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub tag: T,
}

/// Sends what `next` reads from `source`, chunk by chunk: the reading runs on a blocking thread
/// up to `read_ahead` chunks ahead of the sending. Stops at the end of the source, at a read
/// error (returned) or at a failed delivery (kept in the pipeline); either way every delivery
/// already sent is awaited before this returns, so the counts are exact. `on_chunk` is called
/// after each chunk was handed over (e.g. to draw progress). Returns the source and the read
/// error, if any.
pub async fn pump<S, N, X, T>(
    pipeline: &mut Pipeline<T>,
    source: S,
    mut next: N,
    read_ahead: usize,
    mut on_chunk: impl FnMut(&Pipeline<T>),
) -> Result<(S, Option<X>), Error>
where
    S: Send + 'static,
    N: FnMut(&mut S) -> Result<Option<Vec<Message<T>>>, X> + Send + 'static,
    X: Send + 'static,
    T: Ord + Clone + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(read_ahead.max(1));
    let reader = tokio::task::spawn_blocking(move || {
        let mut source = source;
        loop {
            let chunk = next(&mut source);
            let stop = !matches!(chunk, Ok(Some(_)));
            if let Some(chunk) = chunk.transpose() {
                if tx.blocking_send(chunk).is_err() {
                    break;
                }
            }
            if stop {
                break;
            }
        }
        source
    });
    let mut read_error = None;
    'chunks: while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok(messages) => {
                for m in messages {
                    if pipeline
                        .send(m.topic, &m.key, &m.payload, m.tag)
                        .await
                        .is_err()
                    {
                        break 'chunks;
                    }
                }
                on_chunk(pipeline);
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(rx);
    pipeline.drain().await;
    let source = reader
        .await
        .map_err(|e| Error::Internal(format!("the reader thread stopped unexpectedly ({e})")))?;
    Ok((source, read_error))
}
