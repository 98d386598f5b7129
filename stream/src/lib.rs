//! The streaming layer (`playsource stream`): joins partition p of `impressions` and of `plays` as
//! one unit with its own attribution [`Engine`](playsource_domain::Engine), adds the plays it
//! attributes to the realtime views in Postgres, archives the raw events as Parquet, publishes
//! enriched plays and rejects malformed messages to the dead-letter topic.
//!
//! Where the view stands is Postgres: every flush writes view deltas, too-late counts, the next
//! offsets and (now and then) the manifest of an engine checkpoint in one transaction guarded by
//! the unit's lease epoch; the checkpoint's layers are files in the archive's store. A restart
//! restores the checkpoint and replays up to the committed offsets with outputs suppressed, so
//! nothing is lost and nothing counted twice. See `docs/stream.md`.
//!
//! - [`consumer`]: the consumer loop and rebalances;
//! - [`unit`]: per-partition processing;
//! - [`align`]: event-time alignment of a unit's two topics;
//! - [`flush`]: the flush task;
//! - [`sink_postgres`]: leases, offsets, checkpoint manifests and the flush transaction;
//! - [`archive_sink`]: staged, exactly-once raw archive files;
//! - [`dlq`]: dead-letter and enriched-play publishing;
//! - [`retry`]: riding through Postgres and broker outages;
//! - [`catalog_cache`]: the catalog side input;
//! - [`checkpoint`]: incremental engine checkpoints in the archive's store;
//! - [`progress`]: read-to-the-end progress for the batch layer's completeness gate;
//! - [`config`]: what a run is told and what it reports;
//! - [`metrics`]: metric names.

pub mod align;
pub mod archive_sink;
pub mod catalog_cache;
pub mod catalog_check;
pub mod checkpoint;
pub mod compact;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod error;
pub mod flush;
pub mod metrics;
pub mod progress;
pub mod retry;
pub mod seek;
pub mod sink_postgres;
pub mod unit;

use std::net::SocketAddr;
use std::path::PathBuf;

use sqlx::PgPool;

pub use catalog_cache::CatalogCache;
pub use config::{
    default_owner, ExitReason, RunSummary, StreamConfig, DEFAULT_ALIGN_BUFFER_BYTES,
    DEFAULT_GROUP_ID, DEFAULT_MAX_DRIFT, DEFAULT_MAX_FUTURE,
};
pub use error::Error;
/// The shutdown signal [`run`] takes (re-exported so callers need no extra dependency).
pub use tokio_util::sync::CancellationToken;

/// Runs the streaming layer against `pool` until `shutdown` is cancelled or, with
/// `exit_when_idle`, until everything was read and flushed.
pub async fn run(
    cfg: StreamConfig,
    pool: PgPool,
    shutdown: CancellationToken,
) -> Result<RunSummary, Error> {
    if cfg.flush_interval.is_zero() {
        return Err(Error::Config(
            "the flush interval must be at least 1 ms; pass a positive --flush-interval-ms".into(),
        ));
    }
    // One realtime view, one owner (docs/reference.md §4): refuse a second group unless it takes over.
    playsource_store::feeder::claim(&pool, &cfg.group_id, cfg.take_over).await?;
    let cache = CatalogCache::default();
    let videos = cache.refresh(&pool).await?;
    tracing::info!(videos, "catalog loaded");
    let stop_refresh = shutdown.child_token();
    let refresher = cache.spawn_refresher(pool.clone(), cfg.catalog_ttl, stop_refresh.clone());
    let watcher = progress::spawn_watcher(cfg.clone(), pool.clone(), stop_refresh.clone());
    let result = consumer::run(cfg.clone(), pool.clone(), cache, shutdown).await;
    stop_refresh.cancel();
    let _ = refresher.await;
    let _ = watcher.await;
    if result.is_ok() {
        // Everything read was flushed: record the partitions now at their log end.
        if let Err(e) = progress::check(&cfg, &pool).await {
            tracing::warn!(error = %e, "cannot record which partitions were read to their end");
        }
    }
    result
}

/// Connects to `database_url` and runs; see [`run`].
pub async fn run_with_url(
    cfg: StreamConfig,
    database_url: &str,
    shutdown: CancellationToken,
) -> Result<RunSummary, Error> {
    let pool = playsource_store::connect_with(
        database_url,
        &playsource_store::ConnectOptions {
            max_connections: 4,
            acquire_timeout: std::time::Duration::from_secs(10),
            application_name: "playsource-stream".into(),
        },
    )
    .await?;
    run(cfg, pool, shutdown).await
}

/// Installs the Prometheus recorder and serves `/metrics` at `addr` until `shutdown`. Call once
/// per process (a second recorder cannot be installed).
pub async fn serve_metrics(addr: SocketAddr, shutdown: CancellationToken) -> Result<(), Error> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Error::Config(format!("cannot install the metrics recorder: {e}")))?;
    metrics::describe();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| Error::Io {
            action: "listen for /metrics on",
            path: PathBuf::from(addr.to_string()),
            cause,
        })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let h = handle.clone();
            async move { h.render() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(())
}
