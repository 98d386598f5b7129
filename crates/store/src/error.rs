//! Errors of the store.
//!
//! Each message is one sentence that already includes its cause (the CLI prints errors with
//! their chain, so causes are kept in fields named `cause`, not as `source()`, to avoid saying
//! the same thing twice).

use std::path::PathBuf;

use playsource_domain::catalog::CsvError;

/// What can go wrong talking to Postgres or loading the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL does not parse.
    #[error("the database URL is not valid ({message}); pass a URL like postgres://user@host:5432/playsource with --database-url or DATABASE_URL")]
    BadUrl { message: String },
    /// Postgres cannot be reached or refuses the connection.
    #[error("cannot connect to Postgres at {target}: {cause}; check --database-url / DATABASE_URL and that Postgres is running")]
    Connect {
        /// `host:port/database`, never the password.
        target: String,
        cause: sqlx::Error,
    },
    /// The database named in the URL does not exist.
    #[error("the database `{database}` does not exist on Postgres at {server}; run `playsource init` (it creates it) or create it with `createdb {database}`")]
    NoDatabase { database: String, server: String },
    /// The migrations could not be applied.
    #[error("applying the database migrations failed: {0}; fix the database (or point --database-url at a fresh one) and run `playsource init` again")]
    Migrate(sqlx::migrate::MigrateError),
    /// A file could not be read.
    #[error("cannot read {path}: {cause}; check the path and its permissions")]
    ReadFile {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The catalog CSV has a bad row or header; nothing was loaded.
    #[error("catalog file {path}, {cause}; fix it and load again (nothing was loaded)")]
    Csv { path: PathBuf, cause: CsvError },
    /// A value Postgres cannot store (text with a NUL character); nothing was loaded.
    #[error("video {video_id} has a NUL character in its {field}, which Postgres cannot store; remove it and load again (nothing was loaded)")]
    NulInText { video_id: u64, field: &'static str },
    /// A query failed.
    #[error("Postgres query failed while {what}: {cause}")]
    Query {
        /// What the store was doing, e.g. `loading the catalog`.
        what: &'static str,
        cause: sqlx::Error,
    },
    /// Another consumer group feeds the realtime view (docs/reference.md §4: one feeder at a time).
    #[error("the realtime view is fed by consumer group `{feeder}`, so group `{group}` would count its plays twice; keep --group-id {feeder}, or stop group {feeder} and start {group} with --take-over (PLAYSOURCE_TAKE_OVER=true) to hand the view over")]
    NotFeeder { feeder: String, group: String },
    /// A row in the database breaks an invariant the schema should have kept.
    #[error("the database holds an invalid row: {0}; check who else writes to this table")]
    Corrupt(String),
}

impl Error {
    /// Wraps a query error with what the store was doing.
    pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |cause| Error::Query { what, cause }
    }
}

/// A failure a layer can re-word: a query's [`sqlx::Error`] (the layer names what it was doing
/// in its own message, keeping its own variants), or any other store error, passed on as is.
pub trait SqlCause {
    /// `Ok(cause)` for a failed statement, `Err(error)` for any other store error.
    fn into_sql_cause(self) -> Result<sqlx::Error, Error>;
}

impl SqlCause for sqlx::Error {
    fn into_sql_cause(self) -> Result<sqlx::Error, Error> {
        Ok(self)
    }
}

impl SqlCause for Error {
    fn into_sql_cause(self) -> Result<sqlx::Error, Error> {
        match self {
            Error::Query { cause, .. } => Ok(cause),
            other => Err(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(e)
    }
}
