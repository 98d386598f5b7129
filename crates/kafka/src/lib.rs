//! Kafka plumbing shared by every playsource command: topic names, client configuration,
//! producers and topic administration.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// Default broker list (`--brokers`, `KAFKA_BROKERS`).
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The four topics of contract §6, by their configured names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub impressions: String,
    pub plays: String,
    pub enriched: String,
    pub dlq: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            impressions: "impressions".into(),
            plays: "plays".into(),
            enriched: "enriched-plays".into(),
            dlq: "playsource-dlq".into(),
        }
    }
}

/// Errors of the Kafka plumbing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach Kafka at {brokers}: {source}; check --brokers / KAFKA_BROKERS and that the broker is running")]
    Connect { brokers: String, source: KafkaError },
    #[error("Kafka request failed: {0}")]
    Kafka(#[from] KafkaError),
}

/// Base client configuration for `brokers`.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers).set("client.id", "playsource");
    c
}

/// A producer tuned for throughput with idempotent, ordered delivery per partition
/// (librdkafka's default partitioner, so keys land where any other client would put them).
pub fn producer(brokers: &str) -> Result<FutureProducer, Error> {
    client_config(brokers)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("compression.type", "zstd")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000")
        .create()
        .map_err(|source| Error::Connect { brokers: brokers.into(), source })
}
