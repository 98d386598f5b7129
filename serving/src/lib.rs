//! playsource's serving layer: an HTTP API that answers Source of Play and Source of Discovery
//! questions by merging the batch view (for batch-complete days) with the realtime view (for the
//! rest), plus health, readiness, Prometheus metrics, an OpenAPI document and a dashboard.
//!
//! ```text
//! GET /v1/source-of-play        GET /v1/source-of-discovery     GET /v1/videos/{id}/discovery
//! GET /v1/freshness   GET /healthz   GET /readyz   GET /metrics   GET /openapi.json   GET /
//! ```
//!
//! See `docs/serving.md` for operations (read-only role, limits, cache).
//!
//! Modules import one way only (checked by `scripts/import_cycles.py`, run by `scripts/test.sh`): a request flows
//! `params` (parse, validate) → the handler's plan (`api::views`: cacheable? replica?) → a source
//! (`replica` in memory, or `merge`, the SQL reference path) → `series_json` (render) → `cache`;
//! below them all sit `error`, `model` and `metrics` (names only, importing nothing of the
//! crate). `state` holds what handlers share, `server` assembles the routes and layers and
//! `conn` serves connections.

pub mod api;
pub mod body;
pub mod cache;
pub mod conn;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod merge;
pub mod metrics;
pub mod middleware;
pub mod model;
pub mod openapi;
pub mod params;
pub mod replica;
pub mod scrape;
pub mod series_json;
pub mod server;
pub mod shed;
pub mod state;

use std::time::Duration;

use sqlx::PgPool;

pub use error::{Error, Problem};
pub use server::{app, serve, serve_on};
pub use state::{AppState, Config, DEFAULT_CACHE_BYTES, DEFAULT_MEMORY_DAYS};

/// Pool settings for [`connect_lazy`].
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Most connections held.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
    /// Server-side `statement_timeout` of every connection.
    pub statement_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// A pool that connects on first use, so the server starts (and answers 503 from `/readyz`)
/// while Postgres is down, and recovers by itself when it comes back. Only a malformed URL fails
/// (built by [`playsource_store::connect_lazy`], which never shows the password).
pub fn connect_lazy(url: &str, cfg: &PoolConfig) -> Result<PgPool, Error> {
    playsource_store::connect_lazy(
        url,
        &playsource_store::LazyOptions {
            max_connections: cfg.max_connections,
            acquire_timeout: cfg.acquire_timeout,
            statement_timeout: Some(cfg.statement_timeout),
            application_name: "playsource-serve".into(),
        },
    )
    .map_err(Error::DatabaseUrl)
}

/// Checks that the database answers and has the views (a startup diagnostic: the server runs,
/// and recovers, without it).
pub async fn probe(pool: &PgPool) -> Result<(), Error> {
    playsource_store::views::probe(pool)
        .await
        .map_err(|e| Error::Database(error::from_store(e)))
}
