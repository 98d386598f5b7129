//! The server's configuration and the state its handlers share: the pool, the result cache, the
//! bound on uncached queries, the freshness watcher, the replica and the metrics handle.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::cache::{ResultCache, Watcher};
use crate::metrics;
use crate::replica::Replica;
use crate::shed::UncachedLimit;

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

/// What the handlers share (behind [`AppState`]).
pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) cache: ResultCache,
    pub(crate) uncached: UncachedLimit,
    pub(crate) watcher: Watcher,
    pub(crate) replica: Arc<Replica>,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) config: Config,
}

/// Everything the handlers share: the pool, the cache, the freshness watcher, the metrics.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl AppState {
    /// A state over a pool (see [`crate::connect_lazy`]).
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
