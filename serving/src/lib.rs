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
pub mod series_json;
pub mod shed;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::routes;

pub use error::{Error, Problem};

use cache::{ResultCache, Watcher};
use replica::Replica;
use shed::UncachedLimit;

/// Default of [`Config::memory_days`].
pub const DEFAULT_MEMORY_DAYS: u32 = 35;

/// Default of [`Config::cache_bytes`]: 256 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// Tunables of the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// A request running longer is answered 503.
    pub request_timeout: Duration,
    /// Requests handled at once; more wait (and time out if they wait too long).
    pub max_concurrency: usize,
    /// Result-cache budget, in bytes of cached answers.
    pub cache_bytes: u64,
    /// Distinct uncached queries computed at once; more are answered 429.
    pub max_uncached: usize,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Time a client has to send a whole request head.
    pub header_read_timeout: Duration,
    /// Time without a byte moving on a connection before it is closed (at least the request
    /// timeout).
    pub idle_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Days before today held by the in-memory replica of the hourly views (0: no replica, every
    /// uncached series is read by SQL).
    pub memory_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: Duration::from_secs(10),
            max_concurrency: 256,
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_uncached: 128,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_body_bytes: 16 * 1024,
            memory_days: DEFAULT_MEMORY_DAYS,
        }
    }
}

struct Inner {
    pool: PgPool,
    cache: ResultCache,
    uncached: UncachedLimit,
    watcher: Watcher,
    replica: Arc<Replica>,
    metrics: PrometheusHandle,
    config: Config,
}

/// Everything the handlers share: the pool, the cache, the freshness watcher, the metrics.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    /// A state over a pool (see [`connect_lazy`]).
    pub fn new(pool: PgPool, config: Config) -> Self {
        AppState {
            inner: Arc::new(Inner {
                pool,
                cache: ResultCache::new(config.cache_bytes),
                uncached: UncachedLimit::new(config.max_uncached),
                watcher: Watcher::default(),
                replica: Arc::new(Replica::new(config.memory_days)),
                metrics: metrics::prometheus(),
                config,
            }),
        }
    }

    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The in-memory replica of the hourly views.
    pub fn replica(&self) -> &Arc<Replica> {
        &self.inner.replica
    }

    /// Result-cache (hits, misses) since start.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.inner.cache.stats()
    }

    /// Estimated bytes held by the result cache (pending evictions applied first).
    pub async fn cache_bytes(&self) -> u64 {
        self.inner.cache.weighted_bytes().await
    }
}

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
/// while Postgres is down, and recovers by itself when it comes back. Only a malformed URL fails.
pub fn connect_lazy(url: &str, cfg: &PoolConfig) -> Result<PgPool, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let scheme = url.split_once("://").map_or("none", |(s, _)| s);
        return Err(Error::DatabaseUrl(format!(
            "its scheme is `{}`, not postgres://",
            error::clip(scheme)
        )));
    }
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| Error::DatabaseUrl(redact(&e.to_string(), url)))?
        .application_name("playsource-serve")
        .options([(
            "statement_timeout",
            format!("{}ms", cfg.statement_timeout.as_millis()),
        )]);
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections.max(1))
        .acquire_timeout(cfg.acquire_timeout)
        .test_before_acquire(true)
        .connect_lazy_with(opts))
}

/// Checks that the database answers and has the views (a startup diagnostic: the server runs,
/// and recovers, without it).
pub async fn probe(pool: &PgPool) -> Result<(), Error> {
    sqlx::query("SELECT 1 FROM batch_days, rt_hourly LIMIT 1")
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a password from an error message that may quote the URL.
fn redact(msg: &str, url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
    {
        Some((userinfo, _)) => match userinfo.split_once(':') {
            Some((_, pw)) if !pw.is_empty() => msg.replace(pw, "***"),
            _ => msg.to_owned(),
        },
        None => msg.to_owned(),
    }
}

/// The whole HTTP application: API, health, metrics, OpenAPI, dashboard, with the tower layers
/// (tracing, metrics, problem rewriting, catch-panic, timeout, concurrency limit, body limit).
pub fn app(state: AppState) -> Router {
    let (router, doc) = openapi::router()
        .merge(api::router())
        .merge(health::router())
        .merge(dashboard::router())
        .routes(routes!(metrics::render))
        .split_for_parts();
    let doc_json = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned()));
    let cfg = state.inner.config.clone();
    router
        .route(
            "/openapi.json",
            get(move || {
                let doc = Arc::clone(&doc_json);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        (*doc).clone(),
                    )
                        .into_response()
                }
            }),
        )
        .fallback(middleware::not_found)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(cfg.max_body_bytes))
        .layer(GlobalConcurrencyLimitLayer::new(cfg.max_concurrency.max(1)))
        .layer(axum::middleware::from_fn_with_state(
            cfg.request_timeout,
            middleware::timeout,
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                Problem::internal().into_response()
            },
        ))
        .layer(axum::middleware::from_fn(middleware::problems))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
}

/// Binds `listen` and serves [`app`] until `shutdown` resolves, then finishes the requests in
/// flight (graceful shutdown).
pub async fn serve(
    listen: &str,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|reason| Error::Listen {
            addr: listen.to_owned(),
            reason,
        })?;
    serve_on(listener, state, shutdown).await
}

/// Serves [`app`] on a bound listener until `shutdown` resolves (graceful shutdown), with the
/// connection limits of the state's [`Config`] (see [`conn`]).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, "serving the playsource API; dashboard at http://{addr}/");
    let cfg = &state.inner.config;
    let limits = conn::ConnLimits {
        max_connections: cfg.max_connections,
        header_read_timeout: cfg.header_read_timeout,
        idle_timeout: cfg.idle_timeout.max(cfg.request_timeout),
    };
    conn::accept_loop(listener, app(state), limits, shutdown).await;
    Ok(())
}
