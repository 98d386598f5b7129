//! What the loop and its watchers ask the broker about a partition (watermarks, partition
//! counts), on a blocking thread so the poll loop never waits on a metadata round trip.
//!
//! The consumer is passed as a `Weak`: a watcher must never hold the last reference, because
//! dropping a consumer closes it, and closing it on a runtime thread can deadlock.

use std::sync::Weak;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;

use super::context::StreamKafka;
use crate::error::Error;

/// How long one metadata request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The earliest retained offset and the high watermark of `topic`'s partition `p`.
pub(super) async fn watermarks(
    consumer: Weak<StreamKafka>,
    topic: &str,
    p: i32,
) -> Result<(i64, i64), Error> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer = consumer.upgrade().ok_or(KafkaError::Canceled)?;
        consumer.fetch_watermarks(&topic, p, TIMEOUT)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
    .map_err(Error::kafka("read the partition's offsets"))
}

/// How many partitions `topic` has (0 when the broker does not know it).
pub(super) async fn partition_count(
    consumer: Weak<StreamKafka>,
    topic: &str,
) -> Result<i32, Error> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer = consumer.upgrade().ok_or(KafkaError::Canceled)?;
        consumer.fetch_metadata(Some(&topic), TIMEOUT).map(|md| {
            md.topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len() as i32)
        })
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
    .map_err(Error::kafka("read the topic's metadata"))
}
