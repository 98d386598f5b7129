//! Read-to-the-end progress for the batch layer's completeness gate (docs/reference.md §4): now and then,
//! and once more when an idle run ends, the topic-partitions whose committed offsets have reached
//! the log end fetched after a wall-clock instant are recorded as read to the end at that instant
//! (`archive_progress.caught_up_at`). Everything produced before it is then in the archive, so
//! `playsource batch` may publish a day whose partitions are quiet. Event-time progress is
//! recorded by the flush itself (see [`crate::sink_postgres::commit_to`]).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::PgPool;

use crate::error::Error;
use crate::sink_postgres;
use tokio_util::sync::CancellationToken;

use crate::config::StreamConfig;

/// How often the watcher looks (a few metadata requests per partition each time).
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Checks once: returns how many topic-partitions were recorded as read to their end.
pub async fn check(cfg: &StreamConfig, pool: &PgPool) -> Result<u64, Error> {
    let at = chrono::Utc::now();
    let topics = [cfg.topics.impressions.clone(), cfg.topics.plays.clone()];
    let parts: Vec<(String, i32)> = sink_postgres::committed_partitions(pool, &cfg.group_id)
        .await?
        .into_iter()
        .filter(|(t, _)| topics.contains(t))
        .collect();
    if parts.is_empty() {
        return Ok(0);
    }
    let brokers = cfg.brokers.clone();
    let ends = tokio::task::spawn_blocking(move || -> Result<Vec<(String, i32, i64)>, Error> {
        let client: BaseConsumer = playsource_kafka::client_config(&brokers)
            .set("client.id", "playsource-stream-progress")
            .create()
            .map_err(Error::kafka("create the progress client"))?;
        let mut ends = Vec::with_capacity(parts.len());
        for (topic, p) in parts {
            let (_, high) = client
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .map_err(Error::kafka("read the partition's offsets"))?;
            ends.push((topic, p, high));
        }
        Ok(ends)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    let archive = playsource_store::progress::archive_key(&cfg.archive.location());
    sink_postgres::mark_caught_up(pool, &cfg.group_id, &archive, at, &ends).await
}

/// Runs [`check`] every [`CHECK_EVERY`] until `stop`; a failed check is logged and retried at
/// the next tick (the gate only waits longer meanwhile).
pub fn spawn_watcher(
    cfg: StreamConfig,
    pool: PgPool,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            if let Err(e) = check(&cfg, &pool).await {
                tracing::warn!(error = %e, "cannot record which partitions were read to their end; trying again later");
            }
        }
    })
}
