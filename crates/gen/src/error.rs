//! Errors of the generator.

use std::path::PathBuf;

/// What went wrong while generating or delivering traffic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value out of range.
    #[error("{flag} {message}")]
    Config { flag: &'static str, message: String },
    /// The catalog CSV could not be written.
    #[error("cannot write the catalog CSV {path}: {message}; check that its folder exists and is writable")]
    CatalogCsv { path: PathBuf, message: String },
    /// An NDJSON output file could not be written.
    #[error("cannot write the NDJSON output {path}: {message}; check that the --out folder is writable and has room")]
    Ndjson { path: PathBuf, message: String },
    /// Writing the archive failed.
    #[error(transparent)]
    Archive(#[from] playsource_archive::Error),
    /// Kafka set-up failed.
    #[error(transparent)]
    Kafka(#[from] playsource_kafka::Error),
    /// An input topic is missing.
    #[error("Kafka topic {topic} does not exist on {brokers}; create the topics with `playsource init` (or pass the right --impressions-topic / --plays-topic)")]
    MissingTopic { topic: String, brokers: String },
    /// The input topics are not co-partitioned.
    #[error("Kafka topics {impressions} ({impressions_partitions} partitions) and {plays} ({plays_partitions} partitions) must have the same partition count to be joined per member; recreate one of them with the other's count")]
    NotCoPartitioned {
        impressions: String,
        impressions_partitions: i32,
        plays: String,
        plays_partitions: i32,
    },
    /// A message could not be delivered to Kafka.
    #[error("cannot deliver to Kafka topic {topic}: {source}; check --brokers / KAFKA_BROKERS and that the topic exists")]
    Deliver {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}
