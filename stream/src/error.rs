//! Errors of the streaming layer.

use std::path::PathBuf;

/// Everything that stops the streaming layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Postgres could not be reached.
    #[error("cannot connect to Postgres at {target}: {source}; check --database-url / DATABASE_URL and that Postgres is running")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("Postgres failed to {action}: {source}; check that `playsource init` has applied the migrations")]
    Db {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The Kafka client failed.
    #[error("Kafka failed to {action}: {source}; check --brokers / KAFKA_BROKERS and that the broker is running")]
    Kafka {
        action: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The catalog could not be read.
    #[error(transparent)]
    Store(#[from] playsource_store::Error),
    /// The shared Kafka plumbing failed (e.g. creating the producer).
    #[error(transparent)]
    KafkaSetup(#[from] playsource_kafka::Error),
    /// A message could not be published (DLQ or enriched plays).
    #[error("cannot publish to topic `{topic}`: {source}; check that the topic exists and the broker accepts writes")]
    Publish {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The archive could not be written.
    #[error("cannot write the raw archive: {0}")]
    Archive(#[from] playsource_archive::Error),
    /// A file operation on the archive's staging folder failed.
    #[error("cannot {action} `{path}`: {source}; check that the archive folder is writable")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A snapshot could not be encoded.
    #[error("cannot encode a snapshot of partition {partition}: {message}")]
    Snapshot { partition: i32, message: String },
    /// The configuration is unusable.
    #[error("invalid stream configuration: {0}")]
    Config(String),
    /// A background task failed.
    #[error("partitions {0} have unread messages that no member of the group has committed for over twice the session timeout, and none of them is assigned here, so --exit-when-idle stops instead of waiting forever; restart the group's members (or give each a stable --instance-id)")]
    Unprocessed(String),

    #[error("a background task of the stream failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps a database error with what was being done.
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Db { action, source }
    }

    /// Whether waiting may cure the failure: lost or refused connections to Postgres or the
    /// broker, a restarting server, a serialisation conflict. Missing tables, bad SQL, archive
    /// I/O and configuration errors are not: retrying them would only hide them.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Kafka { .. } | Error::Publish { .. } => true,
            Error::Db { source, .. } => db_transient(source),
            Error::Store(playsource_store::Error::Query { cause, .. })
            | Error::Store(playsource_store::Error::Connect { cause, .. }) => db_transient(cause),
            Error::KafkaSetup(
                playsource_kafka::Error::Connect { .. } | playsource_kafka::Error::Kafka(_),
            ) => true,
            _ => false,
        }
    }

    /// Wraps a Kafka error with what was being done.
    pub(crate) fn kafka(action: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Error {
        move |source| Error::Kafka { action, source }
    }
}

/// Postgres failures that pass: the connection (I/O, TLS, pool), and the SQLSTATE classes of a
/// server going away or refusing for now (08 connection exception, 57P01..57P03 shutdown and
/// start-up, 53300 too many connections, 40001/40P01 serialisation failure and deadlock).
fn db_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || matches!(
                    &*c,
                    "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
                )
        }),
        _ => false,
    }
}
