//! The consumer's rdkafka context: forwards rebalances to the loop (pausing newly assigned
//! partitions until their unit is positioned from Postgres), publishes per-partition lag from
//! librdkafka's statistics, and logs client errors (end of partition is not one).

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};
use tokio::sync::mpsc;

use crate::metrics as m;

/// The stream's Kafka consumer.
pub(crate) type StreamKafka = StreamConsumer<StreamContext>;

/// A rebalance, as the loop sees it.
#[derive(Debug)]
pub(super) enum RebalanceEvent {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// Forwards rebalances to the loop; pauses newly assigned partitions until their unit has been
/// positioned from Postgres.
pub(crate) struct StreamContext {
    pub(super) events: mpsc::UnboundedSender<RebalanceEvent>,
}

impl ClientContext for StreamContext {
    /// Publishes each assigned partition's lag (high watermark minus the consumer's position),
    /// so lag is visible while consuming, not only when idle.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (p, part) in &t.partitions {
                if *p < 0 || !part.desired || part.hi_offset < 0 || part.app_offset < 0 {
                    continue;
                }
                ::metrics::gauge!(m::LAG, "topic" => topic.clone(), "partition" => p.to_string())
                    .set((part.hi_offset - part.app_offset).max(0) as f64);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // End of partition is expected (`enable.partition.eof`), not an error.
        if matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::trace!(reason, "end of partition");
        } else {
            tracing::error!(error = %error, reason, "Kafka client error");
        }
    }
}

fn list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ConsumerContext for StreamContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let _ = self.events.send(RebalanceEvent::Revoked(list(tpl)));
        }
    }

    fn post_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(e) = c.pause(tpl) {
                tracing::warn!(error = %e, "cannot pause newly assigned partitions");
            }
            let _ = self.events.send(RebalanceEvent::Assigned(list(tpl)));
        }
    }
}
