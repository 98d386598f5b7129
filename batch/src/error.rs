//! Errors of the batch layer: each says what failed, where, and what to do.

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
    #[error("no valid plays of {day} in the {files} file(s) under {looked_in} ({invalid} rows broke a rule of contract §1, {out_of_range} were not of {day}); fix the archive, or pass --allow-empty to publish {day} as a day without plays")]
    EmptyDay {
        day: Day,
        looked_in: PathBuf,
        files: usize,
        invalid: u64,
        out_of_range: u64,
    },

    /// The archive is not complete for the day yet (contract §4); nothing was published.
    #[error("the archive is not complete for {day}: {count} partition(s) were neither archived past {point} (the day's end plus the allowed lateness) in event time nor read to the end of their log after it: {behind}; nothing was published: run it again once the stream has caught up, or pass --force to publish {day} anyway")]
    Incomplete {
        day: Day,
        point: String,
        count: usize,
        behind: String,
    },

    /// A Postgres statement failed.
    #[error("Postgres failed to {action}: {source}; check --database-url (DATABASE_URL) and that `playsource init` has applied the migrations")]
    Db {
        /// What was being done, e.g. `publish the batch view of 2026-11-21`.
        action: String,
        source: sqlx::Error,
    },

    /// `audit` was asked about a day the batch layer has not published.
    #[error("{day} is not batch-complete, so there is nothing to compare the realtime view with; run `playsource batch --date {day}` first")]
    NotComplete { day: Day },

    /// A file-system operation on the enriched plays failed.
    #[error("cannot {action} {path}: {source}; check that the archive directory is writable and has free space")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A worker thread panicked (a bug: please report it with the log).
    #[error("a batch worker thread panicked while computing {day}; this is a bug, please report it with the log")]
    Worker { day: Day },

    /// An option is out of its range.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Error {
        let action = action.into();
        move |source| Error::Db { action, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
