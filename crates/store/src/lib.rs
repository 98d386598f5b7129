//! Postgres: connection, migrations and the catalog.
//!
//! Every layer shares one schema (`migrations/`), applied by [`migrate`] (run by
//! `playsource init`). Video ids are u64, stored as `NUMERIC(20,0)`: bind them as text and cast
//! (`$1::text[]::numeric[]`), read them back as `video_id::text`.

pub mod catalog;
pub mod compaction;
mod connect;
mod error;
pub mod feeder;
pub mod progress;

pub use connect::{connect, connect_with, create_database_if_missing, target_of, ConnectOptions};
pub use error::Error;

/// The schema migrations of every layer, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Applies every pending migration (safe to run concurrently and repeatedly: sqlx takes an
/// advisory lock and skips applied ones).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), Error> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
