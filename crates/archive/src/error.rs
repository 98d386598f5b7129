//! Errors of the archive crate.
//!
//! Each message is one sentence (what, where, what to do) that includes its cause once; causes
//! are kept in fields named `cause`, never as `source()`, because the CLI prints errors with
//! their chain (the convention of every library crate, see docs/architecture.md).

use std::path::PathBuf;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// What went wrong in the archive, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {action} {path}: {cause}; check that the archive directory exists, is writable and has free space")]
    Io {
        /// What was being done, e.g. `create the directory`.
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Encoding or decoding Parquet failed.
    #[error("Parquet file {path} could not be {action}: {cause}")]
    Parquet {
        /// `written` or `read`.
        action: &'static str,
        path: PathBuf,
        cause: ParquetError,
    },
    /// An Arrow operation failed (e.g. a column of an unexpected type).
    #[error("Arrow data of {path} is not usable: {cause}")]
    Arrow { path: PathBuf, cause: ArrowError },
    /// A file's columns do not fit the schema of its topic.
    #[error("Parquet file {path} does not fit the archive schema: {message}; files in the archive need the columns of docs/reference.md §1")]
    Schema { path: PathBuf, message: String },
    /// `write_parquet_atomic` was given no record batch, so there is no schema to write.
    #[error("nothing to write to {path}: at least one record batch (possibly empty) is needed to know the schema")]
    NoBatches { path: PathBuf },
    /// A file stem that readers would skip or that would leave its partition directory.
    #[error("file stem {stem:?} cannot name an archive file: use 1 to 200 characters of [A-Za-z0-9_.=-], not starting with `.` or `_` (readers skip such files)")]
    FileStem { stem: String },
    /// A topic directory name that is not a Kafka topic name.
    #[error("topic directory {name:?} is not a usable topic name: use 1 to 249 characters of [A-Za-z0-9._-], not `.` or `..`")]
    TopicDir { name: String },
    /// An object-store request failed.
    #[error("cannot {action} {path}: {cause}; check the archive URL, the AWS_* credentials and AWS_ENDPOINT_URL, and that the bucket exists")]
    Store {
        /// What was being done, e.g. `write`.
        action: &'static str,
        path: String,
        cause: object_store::Error,
    },
    /// `--archive` is neither a local path nor a supported object-store URL.
    #[error("archive location {location:?} is not usable: {message}; give a local path or an s3://bucket/prefix URL")]
    Location { location: String, message: String },
}

impl Error {
    /// Whether the error says a file does not exist (locally or in the object store).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Io { cause, .. } => cause.kind() == std::io::ErrorKind::NotFound,
            Error::Store { cause, .. } => matches!(cause, object_store::Error::NotFound { .. }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Causes are said in the message, never again through `source()` (the CLI prints chains).
    #[test]
    fn causes_are_in_the_message_not_in_the_chain() {
        let errors = [
            Error::Io {
                action: "read",
                path: "p".into(),
                cause: std::io::Error::other("disk on fire"),
            },
            Error::Parquet {
                action: "read",
                path: "p".into(),
                cause: ParquetError::General("corrupt footer".into()),
            },
            Error::Arrow {
                path: "p".into(),
                cause: ArrowError::SchemaError("no column".into()),
            },
        ];
        for e in &errors {
            assert!(std::error::Error::source(e).is_none(), "{e}");
        }
        let parquet = errors[1].to_string();
        assert_eq!(parquet.matches("corrupt footer").count(), 1, "{parquet}");
    }
}
