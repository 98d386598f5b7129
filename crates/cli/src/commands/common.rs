//! Flag groups shared by several subcommands (docs/reference.md §6). Flatten them into a subcommand's
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

/// The raw Parquet archive (docs/reference.md §5).
#[derive(Clone, Debug, Args)]
pub struct ArchiveArgs {
    /// Root of the Parquet archive: a local directory, or an object-store URL
    /// (`s3://bucket/prefix`, configured by the AWS_* variables; AWS_ENDPOINT_URL for an
    /// S3-compatible server). Object stores are supported by `stream`, `batch`, `replay` and
    /// `gen --to archive`; `demo` (a local showcase) needs a local directory.
    #[arg(long, env = "PLAYSOURCE_ARCHIVE", default_value = "./data/archive")]
    pub archive: PathBuf,
}

impl ArchiveArgs {
    /// The archive as a store: the local directory, or the object store the URL names.
    pub fn store(&self) -> anyhow::Result<playsource_archive::ArchiveStore> {
        let location = self.archive.to_string_lossy();
        playsource_archive::ArchiveStore::open(&location)
            .map_err(|e| anyhow::anyhow!("--archive / PLAYSOURCE_ARCHIVE: {e}"))
    }

    /// The archive as a local directory; an object-store URL is refused with a clear error by
    /// the commands that work on a local directory only (`demo`).
    pub fn local_dir(&self, command: &str) -> anyhow::Result<PathBuf> {
        if playsource_archive::store::is_url(&self.archive.to_string_lossy()) {
            anyhow::bail!(
                "--archive {} is an object-store URL, which `{command}` does not read yet; give it a local directory (e.g. a copy of the archive)",
                self.archive.display()
            );
        }
        Ok(self.archive.clone())
    }
}
