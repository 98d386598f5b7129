//! Flag groups shared by several subcommands (contract §6). Flatten them into a subcommand's
//! args with `#[command(flatten)]`.

use std::path::PathBuf;

use clap::Args;

/// Default Postgres URL (`--database-url`, `DATABASE_URL`).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/playsource";

/// Where the views, the catalog and the stream's progress live.
#[derive(Clone, Debug, Args)]
pub struct DbArgs {
    /// Postgres connection URL.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

/// The two input topics, whose names are also the archive's folder names (and the `topic` of
/// the stream's too-late counts).
#[derive(Clone, Debug, Args)]
pub struct InputTopicArgs {
    /// Topic of impression events (names its archive folder).
    #[arg(
        long,
        env = "PLAYSOURCE_IMPRESSIONS_TOPIC",
        default_value = "impressions"
    )]
    pub impressions_topic: String,
    /// Topic of play events (names its archive folder).
    #[arg(long, env = "PLAYSOURCE_PLAYS_TOPIC", default_value = "plays")]
    pub plays_topic: String,
}

/// The Kafka cluster and the four topics.
#[derive(Clone, Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BROKERS", default_value = playsource_kafka::DEFAULT_BROKERS)]
    pub brokers: String,
    #[command(flatten)]
    pub inputs: InputTopicArgs,
    /// Topic the enriched plays are published to.
    #[arg(
        long,
        env = "PLAYSOURCE_ENRICHED_TOPIC",
        default_value = "enriched-plays"
    )]
    pub enriched_topic: String,
    /// Dead-letter topic for rejected messages.
    #[arg(long, env = "PLAYSOURCE_DLQ_TOPIC", default_value = "playsource-dlq")]
    pub dlq_topic: String,
}

impl KafkaArgs {
    /// The configured topic names.
    pub fn topics(&self) -> playsource_kafka::Topics {
        playsource_kafka::Topics {
            impressions: self.inputs.impressions_topic.clone(),
            plays: self.inputs.plays_topic.clone(),
            enriched: self.enriched_topic.clone(),
            dlq: self.dlq_topic.clone(),
        }
    }
}

/// The raw Parquet archive (contract §5).
#[derive(Clone, Debug, Args)]
pub struct ArchiveArgs {
    /// Root directory of the Parquet archive.
    #[arg(long, env = "PLAYSOURCE_ARCHIVE", default_value = "./data/archive")]
    pub archive: PathBuf,
}
