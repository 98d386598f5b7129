//! Errors of the batch layer: each says what failed, where, and what to do.
//!
//! Each message is one sentence (what, where, what to do) that includes its cause once; causes
//! are kept in fields named `cause`, never as `source()`, because the CLI prints errors with
//! their chain (the convention of every library crate, see docs/architecture.md).

use std::path::PathBuf;

use playsource_domain::Day;

/// What went wrong in a batch run or an audit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the raw archive or writing the enriched plays failed.
    #[error(transparent)]
    Archive(#[from] playsource_archive::Error),

    /// Reading the catalog failed.
    #[error(transparent)]
    Store(#[from] playsource_store::Error),

    /// No plays file exists for the day.
    #[error("no plays archived for {day}: found no *.parquet files under {looked_in}; check --archive (PLAYSOURCE_ARCHIVE) and --plays-topic, or pass --allow-empty to publish {day} as a day without plays")]
    MissingDay { day: Day, looked_in: PathBuf },

    /// Plays files exist for the day, but none of their rows is a valid play of that day.
    #[error("no valid plays of {day} in the {files} file(s) under {looked_in} ({invalid} rows broke a rule of docs/reference.md §1, {out_of_range} were not of {day}); fix the archive, or pass --allow-empty to publish {day} as a day without plays")]
    EmptyDay {
        day: Day,
        looked_in: PathBuf,
        files: usize,
        invalid: u64,
        out_of_range: u64,
    },

    /// The archive is not complete for the day yet (docs/reference.md §4); nothing was published.
    #[error("the archive is not complete for {day}: {count} partition(s) were neither archived past {point} (the day's end plus the allowed lateness) in event time nor read to the end of their log after it: {behind}; nothing was published: run it again once the stream has caught up, or pass --force to publish {day} anyway")]
    Incomplete {
        day: Day,
        point: String,
        count: usize,
        behind: String,
    },

    /// A Postgres statement failed.
    #[error("Postgres failed to {action}: {cause}; check --database-url (DATABASE_URL) and that `playsource init` has applied the migrations")]
    Db {
        /// What was being done, e.g. `publish the batch view of 2026-11-21`.
        action: String,
        cause: sqlx::Error,
    },

    /// `audit` was asked about a day the batch layer has not published.
    #[error("{day} is not batch-complete, so there is nothing to compare the realtime view with; run `playsource batch --date {day}` first")]
    NotComplete { day: Day },

    /// A file-system operation on the enriched plays failed.
    #[error("cannot {action} {path}: {cause}; check that the archive directory is writable and has free space")]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    /// A worker thread panicked (a bug: please report it with the log).
    #[error("a batch worker thread panicked while computing {day}; this is a bug, please report it with the log")]
    Worker { day: Day },

    /// An option is out of its range.
    #[error("{0}")]
    Usage(String),

    /// `--shard` is not `I/N` with 1 ≤ I ≤ N.
    #[error("--shard {given:?} is not I/N with 1 <= I <= N (e.g. 2/4, the second of four shards); give each of the N shards of a day its own I")]
    ShardSpec { given: String },

    /// The shard's enriched plays folder, recorded with its part, is gone at publish time.
    #[error("the enriched plays of shard {index}/{count} of {day} are missing from {path}; nothing was published: run that shard again (every shard must see the same --archive)")]
    ShardFilesMissing {
        day: Day,
        index: u32,
        count: u32,
        path: PathBuf,
    },

    /// All N shards ran, but together they found no valid play of the day.
    #[error("no valid plays of {day} in any of its {count} shards; nothing was published: fix the archive, or run the shards with --allow-empty to publish {day} as a day without plays")]
    EmptyShardedDay { day: Day, count: u32 },
}

impl Error {
    /// Wraps a failed statement (a [`sqlx::Error`], or a store query's) with what was being
    /// done; any other store error passes as [`Error::Store`].
    pub(crate) fn db<E: playsource_store::SqlCause>(
        action: impl Into<String>,
    ) -> impl FnOnce(E) -> Error {
        let action = action.into();
        move |e| match e.into_sql_cause() {
            Ok(cause) => Error::Db { action, cause },
            Err(e) => Error::Store(e),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |cause| Error::Io {
            action,
            path,
            cause,
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
            Error::db("publish the batch view")(sqlx::Error::PoolTimedOut),
            Error::io("write", "p")(std::io::Error::other("disk on fire")),
            Error::Archive(playsource_archive::Error::Io {
                action: "read",
                path: "p".into(),
                cause: std::io::Error::other("disk on fire"),
            }),
        ];
        for e in &errors {
            assert!(std::error::Error::source(e).is_none(), "{e}");
        }
        let io = errors[1].to_string();
        assert_eq!(io.matches("disk on fire").count(), 1, "{io}");
    }
}
