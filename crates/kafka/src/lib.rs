//! Kafka plumbing shared by every playsource command: topic names, client configuration,
//! producers, topic administration and the producers' partitioners.

pub mod admin;
pub mod leave;
pub mod partitioner;
pub mod rate;
pub mod send;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// Default broker list (`--brokers`, `KAFKA_BROKERS`).
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The four topics of docs/reference.md §6, by their configured names.
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

/// Errors of the Kafka plumbing. Each message is one sentence that includes its cause (kept in
/// a field, not as `source()`, so printing the error chain does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The brokers cannot be reached, or a client cannot be created for them.
    #[error("cannot reach Kafka at {brokers}: {cause}; check --brokers / KAFKA_BROKERS and that the broker is running")]
    Connect { brokers: String, cause: KafkaError },
    /// Any other failed request.
    #[error("Kafka request failed: {0}")]
    Kafka(KafkaError),
    /// A LeaveGroup on a predecessor's behalf failed (the restart then waits for the broker to
    /// expire it).
    #[error("cannot remove this replica's predecessor from consumer group `{group}` ({cause}); the partitions move once the broker expires it (--session-timeout-ms)")]
    LeaveGroup { group: String, cause: String },
    /// An input topic does not exist.
    #[error("Kafka topic `{topic}` does not exist on {brokers}; create the topics with `playsource init` or pass the right --impressions-topic / --plays-topic")]
    MissingTopic { topic: String, brokers: String },
    /// The input topics exist with different partition counts.
    #[error("topic `{impressions}` has {impressions_partitions} partitions but `{plays}` has {plays_partitions}; the input topics must have the same partition count (co-partitioned by member_id): delete and recreate one of them with the other's count, e.g. with `playsource init --partitions {impressions_partitions}`")]
    PartitionMismatch {
        impressions: String,
        impressions_partitions: i32,
        plays: String,
        plays_partitions: i32,
    },
    /// One input topic exists and creating the other with the requested count would break
    /// co-partitioning.
    #[error("topic `{existing}` already exists with {existing_partitions} partitions, so `{missing}` cannot be created with {requested}; the input topics must have the same partition count: run `playsource init --partitions {existing_partitions}`")]
    WouldMismatch {
        existing: String,
        existing_partitions: i32,
        missing: String,
        requested: i32,
    },
    /// A topic name Kafka would refuse.
    #[error("{flag} `{name}` is not a valid Kafka topic name; use 1 to 249 of the characters a-z, A-Z, 0-9, `.`, `_` and `-`")]
    InvalidTopicName { flag: &'static str, name: String },
    /// Two roles share one topic.
    #[error("{first} and {second} are both `{name}`; each of the four topics needs its own name")]
    SameTopic {
        first: &'static str,
        second: &'static str,
        name: String,
    },
    /// A partition count below 1.
    #[error("--partitions must be at least 1, got {0}")]
    InvalidPartitions(i32),
    /// The broker refused to create a topic.
    #[error("Kafka at {brokers} refused to create topic `{topic}`: {code}; check the topic name and the broker's limits")]
    CreateTopic {
        topic: String,
        brokers: String,
        code: rdkafka::types::RDKafkaErrorCode,
    },
    /// Created topics did not show up in the metadata in time.
    #[error("Kafka at {brokers} did not list the topics {topics} after creating them; check the broker's logs and run `playsource init` again")]
    NotVisible { brokers: String, topics: String },
    /// A bug or a panic in a background task.
    #[error("internal error in the Kafka client: {0}")]
    Internal(String),
}

/// Base client configuration for `brokers`.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "playsource");
    c
}

/// A producer tuned for throughput with idempotent, ordered delivery per partition
/// (librdkafka's default partitioner, so keys land where any other client would put them).
pub fn producer(brokers: &str) -> Result<FutureProducer, Error> {
    producer_config(brokers)
        .create()
        .map_err(|cause| Error::Connect {
            brokers: brokers.into(),
            cause,
        })
}

/// [`producer`] whose messages may be up to `max_bytes` (librdkafka's `message.max.bytes`, which
/// also caps a request; set it from the target topic's `max.message.bytes`).
pub fn producer_with_max_bytes(brokers: &str, max_bytes: usize) -> Result<FutureProducer, Error> {
    producer_config(brokers)
        .set(
            "message.max.bytes",
            max_bytes.clamp(1000, 1_000_000_000).to_string(),
        )
        .create()
        .map_err(|cause| Error::Connect {
            brokers: brokers.into(),
            cause,
        })
}

fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = client_config(brokers);
    c.set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("compression.type", "zstd")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "120000");
    c
}

impl From<KafkaError> for Error {
    fn from(e: KafkaError) -> Self {
        Error::Kafka(e)
    }
}
