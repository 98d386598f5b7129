//! Errors of the streaming layer.
//!
//! Each message is one sentence (what, where, what to do) that includes its cause once; causes
//! are kept in fields named `cause`, never as `source()`, because the CLI prints errors with
//! their chain (the convention of every library crate, see docs/architecture.md).

use std::path::PathBuf;

/// Everything that stops the streaming layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Postgres could not be reached.
    #[error("cannot connect to Postgres at {target}: {cause}; check --database-url / DATABASE_URL and that Postgres is running")]
    Connect { target: String, cause: sqlx::Error },
    /// A statement failed.
    #[error("Postgres failed to {action}: {cause}; check that `playsource init` has applied the migrations")]
    Db {
        action: &'static str,
        cause: sqlx::Error,
    },
    /// The Kafka client failed.
    #[error("Kafka failed to {action}: {cause}; check --brokers / KAFKA_BROKERS and that the broker is running")]
    Kafka {
        action: &'static str,
        cause: rdkafka::error::KafkaError,
    },
    /// The catalog could not be read.
    #[error(transparent)]
    Store(#[from] playsource_store::Error),
    /// The shared Kafka plumbing failed (e.g. creating the producer).
    #[error(transparent)]
    KafkaSetup(#[from] playsource_kafka::Error),
    /// A message could not be published (DLQ or enriched plays).
    #[error("cannot publish to topic `{topic}`: {cause}; check that the topic exists and the broker accepts writes")]
    Publish {
        topic: String,
        cause: rdkafka::error::KafkaError,
    },
    /// The archive could not be written.
    #[error("cannot write the raw archive: {0}")]
    Archive(playsource_archive::Error),
    /// A file operation on the archive's staging folder failed.
    #[error("cannot {action} `{path}`: {cause}; check that the archive folder is writable")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid stream configuration: {0}")]
    Config(String),
    /// A background task failed.
    #[error("partitions {0} have unread messages that no member of the group has committed for over twice the session timeout, and none of them is assigned here, so --exit-when-idle stops instead of waiting forever; restart the group's members (and give each a stable --replica-name, or --instance-id on Kafka)")]
    Unprocessed(String),

    #[error("a background task of the stream failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps a failed statement (a [`sqlx::Error`], or a store query's) with what was being
    /// done; any other store error passes as [`Error::Store`].
    pub(crate) fn db<E: playsource_store::SqlCause>(
        action: &'static str,
    ) -> impl FnOnce(E) -> Error {
        move |e| match e.into_sql_cause() {
            Ok(cause) => Error::Db { action, cause },
            Err(e) => Error::Store(e),
        }
    }

    /// Whether waiting may cure the failure: lost or refused connections to Postgres or the
    /// broker, a restarting server, a serialisation conflict. Missing tables, bad SQL, archive
    /// I/O and configuration errors are not: retrying them would only hide them.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Kafka { .. } | Error::Publish { .. } => true,
            Error::Db { cause, .. } => db_transient(cause),
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
        move |cause| Error::Kafka { action, cause }
    }
}

impl From<playsource_archive::Error> for Error {
    fn from(e: playsource_archive::Error) -> Self {
        Error::Archive(e)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    /// Every error says its cause in its message and has no `source()`, so a chain printer
    /// (`{e:#}`) says it once (issue #20: a publish error used to say it three times).
    #[test]
    fn causes_are_in_the_message_not_in_the_chain() {
        let too_large = || KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let errors = [
            Error::Publish {
                topic: "t".into(),
                cause: too_large(),
            },
            Error::Kafka {
                action: "fetch",
                cause: too_large(),
            },
            Error::Connect {
                target: "h:1/db".into(),
                cause: sqlx::Error::PoolTimedOut,
            },
            Error::Db {
                action: "flush",
                cause: sqlx::Error::PoolTimedOut,
            },
            Error::Io {
                action: "clear",
                path: "p".into(),
                cause: std::io::Error::other("disk on fire"),
            },
            Error::Archive(playsource_archive::Error::Io {
                action: "write",
                path: "p".into(),
                cause: std::io::Error::other("disk on fire"),
            }),
            Error::Store(playsource_store::Error::Connect {
                target: "h:1/db".into(),
                cause: sqlx::Error::PoolTimedOut,
            }),
            Error::KafkaSetup(playsource_kafka::Error::Connect {
                brokers: "h:1".into(),
                cause: too_large(),
            }),
        ];
        for e in &errors {
            assert!(std::error::Error::source(e).is_none(), "{e}");
        }
        let publish = errors[0].to_string();
        assert_eq!(
            publish.matches("MessageSizeTooLarge").count(),
            1,
            "{publish}"
        );
        assert!(errors[0].is_transient() && errors[2].is_transient());
    }
}
