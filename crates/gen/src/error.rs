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
    /// A message could not be delivered to Kafka.
    #[error("cannot deliver to Kafka topic {topic}: {source}; check --brokers / KAFKA_BROKERS and that the topic exists")]
    Deliver {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}
