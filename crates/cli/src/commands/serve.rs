//! `playsource serve`: runs the HTTP API and dashboard (docs/reference.md §7).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use playsource_serving::{AppState, Config, PoolConfig};

use super::common::DbArgs;

/// Flags of `playsource serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on (host:port).
    #[arg(long, env = "PLAYSOURCE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Most Postgres connections held by the server.
    #[arg(long, env = "PLAYSOURCE_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Seconds a request may run before it is answered 503 (also the server-side statement timeout).
    #[arg(long, env = "PLAYSOURCE_REQUEST_TIMEOUT", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// Requests handled at once; more wait for a slot.
    #[arg(long, env = "PLAYSOURCE_MAX_CONCURRENCY", default_value_t = 256)]
    pub max_concurrency: usize,
    /// Result-cache budget, in bytes of cached answers (an answer larger than it is not cached).
    #[arg(long, env = "PLAYSOURCE_CACHE_BYTES", default_value_t = playsource_serving::DEFAULT_CACHE_BYTES)]
    pub cache_bytes: u64,
    /// Distinct uncached queries computed at once; more are answered 429 with Retry-After.
    #[arg(long, env = "PLAYSOURCE_MAX_UNCACHED_QUERIES", default_value_t = 128)]
    pub max_uncached_queries: usize,
    /// Connections open at once; a connection beyond it is closed as soon as it is accepted.
    #[arg(long, env = "PLAYSOURCE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head (also between keep-alive requests)
    /// before its connection is closed.
    #[arg(long, env = "PLAYSOURCE_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds without a byte moving on a connection before it is closed (at least the request
    /// timeout).
    #[arg(long, env = "PLAYSOURCE_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Days before today held in memory (hourly views): uncached series whose range starts on or
    /// after that day are answered without per-row SQL; 0 reads every one from Postgres.
    #[arg(long, env = "PLAYSOURCE_MEMORY_DAYS", default_value_t = playsource_serving::DEFAULT_MEMORY_DAYS)]
    pub memory_days: u32,
}

/// Runs `playsource serve` until Ctrl-C or SIGTERM, then drains the requests in flight.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.request_timeout_secs.max(1));
    let pool = playsource_serving::connect_lazy(
        &args.db.database_url,
        &PoolConfig {
            max_connections: args.db_pool_size,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: timeout,
        },
    )
    .context("cannot set up the database pool (--database-url / DATABASE_URL)")?;
    // A startup diagnostic only: the server listens at once and recovers when Postgres is back.
    let probe_pool = pool.clone();
    tokio::spawn(async move {
        if let Err(e) = playsource_serving::probe(&probe_pool).await {
            tracing::warn!(
                error = %e,
                "the database is not usable yet; serving anyway (/readyz answers 503 until it is); \
                 check --database-url, and run `playsource init` if the schema is missing"
            );
        }
    });
    let state = AppState::new(
        pool,
        Config {
            request_timeout: timeout,
            max_concurrency: args.max_concurrency.max(1),
            cache_bytes: args.cache_bytes,
            max_uncached: args.max_uncached_queries.max(1),
            max_connections: args.max_connections.max(1),
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            memory_days: args.memory_days,
            ..Config::default()
        },
    );
    playsource_serving::serve(&args.listen, state, shutdown_signal())
        .await
        .context("cannot serve the HTTP API")?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
