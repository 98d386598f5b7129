//! Postgres: connection, migrations and every statement of the layers, in modules named for
//! the tables they touch: [`realtime`] (`rt_*`), [`batch`] (`batch_*`, shard parts, pruning),
//! [`views`] (reads of either view), [`leases`] (leases, offsets, checkpoint manifests, staged files),
//! [`progress`], [`feeder`] and [`catalog`]. The layers keep their logic (transactions' content,
//! retries, metrics, what a row means); functions here take a pool or a `&mut PgConnection` (a
//! transaction derefs to one) and typed arguments, and return typed rows or [`Error::Query`].
//!
//! Every layer shares one schema (`migrations/`), applied by [`migrate`] (run by
//! `playsource init`). Video ids are u64, stored as `NUMERIC(20,0)`: bind them as text and cast
//! (`$1::text[]::numeric[]`), read them back as `video_id::text`.

pub mod batch;
pub mod catalog;
pub mod compaction;
mod connect;
mod error;
pub mod feeder;
pub mod leases;
pub mod progress;
pub mod realtime;
pub mod views;

pub use connect::{
    connect, connect_lazy, connect_with, create_database_if_missing, redact, target_of,
    ConnectOptions, LazyOptions,
};
pub use error::{Error, SqlCause};

/// The schema migrations of every layer, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Applies every pending migration (safe to run concurrently and repeatedly: sqlx takes an
/// advisory lock and skips applied ones).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), Error> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
