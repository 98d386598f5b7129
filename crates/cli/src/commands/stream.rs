//! `playsource stream`: runs the streaming layer (docs/reference.md §4) until Ctrl-C / SIGTERM or, with
//! `--exit-when-idle`, until everything was read and flushed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use clap::Args;
use playsource_domain::AttributionConfig;
use playsource_kafka::partitioner::Partitioner;
use playsource_stream::{CancellationToken, ExitReason, StreamConfig};

use super::common::{ArchiveArgs, DbArgs, KafkaArgs};

/// Flags of `playsource stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Kafka consumer group id; also keys the stream's offsets, leases and snapshots in Postgres.
    #[arg(long, env = "PLAYSOURCE_GROUP_ID", default_value = playsource_stream::DEFAULT_GROUP_ID)]
    pub group_id: String,
    /// Hand the realtime view to this --group-id when another consumer group feeds it: continue
    /// from that group's committed offsets and fence its members (stop them first). Without it,
    /// a stream of another group refuses to start, so no play is counted twice.
    #[arg(long, env = "PLAYSOURCE_TAKE_OVER")]
    pub take_over: bool,
    /// Flush everything and exit 0 once every partition is read to its end and nothing new
    /// arrived for this many seconds.
    #[arg(long, value_name = "SECS", env = "PLAYSOURCE_EXIT_WHEN_IDLE")]
    pub exit_when_idle: Option<u64>,
    /// How often results are committed to Postgres, in milliseconds. A play shows in the API
    /// about this long plus 0.35 s after it is produced (p99 0.8 s at the default, 1.6 s at 1000;
    /// bench/RESULTS.md). Each flush writes one pending archive file per unit, topic and hour with
    /// new rows: on an object store, raise it to make fewer requests.
    #[arg(long, env = "PLAYSOURCE_FLUSH_INTERVAL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub flush_interval_ms: u64,
    /// How often each partition's attribution state is checkpointed, in seconds: a layer of what
    /// changed, written under the archive's `_checkpoints/` (bounds the replay after a restart).
    #[arg(
        long,
        alias = "snapshot-interval-secs",
        env = "PLAYSOURCE_CHECKPOINT_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub checkpoint_interval_secs: u64,
    /// How long the cached catalog is used before it is reloaded from Postgres, in seconds (a
    /// version loaded meanwhile that applies to plays not yet committed is picked up at the next
    /// flush, which rebuilds the partitions concerned).
    #[arg(long, env = "PLAYSOURCE_CATALOG_TTL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub catalog_ttl_secs: u64,
    /// Address of the Prometheus endpoint (`/metrics`).
    #[arg(
        long,
        env = "PLAYSOURCE_METRICS_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub metrics_listen: SocketAddr,
    /// An event more than this many seconds behind its topic-partition's greatest time is too late.
    #[arg(long, env = "PLAYSOURCE_ALLOWED_LATENESS_SECS", default_value_t = 300)]
    pub allowed_lateness_secs: u32,
    /// Do not publish enriched plays.
    #[arg(long, env = "PLAYSOURCE_NO_ENRICHED")]
    pub no_enriched: bool,
    /// How long, in seconds, one operation may keep failing because Postgres or the broker is
    /// unavailable (retried with backoff) before the stream stops with the error.
    #[arg(long, env = "PLAYSOURCE_RETRY_TIMEOUT_SECS", default_value_t = 300)]
    pub retry_timeout_secs: u64,
    /// Kafka consumer-group session timeout, in milliseconds: how long the group waits for a
    /// silent member (crashed process) before giving its partitions to the others. Kafka accepts
    /// 6000 and up by default (`group.min.session.timeout.ms`); tansu keeps the value of the
    /// member that created the group (docs/stream.md, "Fast takeover after kill -9").
    #[arg(long, env = "PLAYSOURCE_SESSION_TIMEOUT_MS", default_value_t = 45_000, value_parser = clap::value_parser!(u64).range(1_000..=3_600_000))]
    pub session_timeout_ms: u64,
    /// Event-time alignment, in seconds (0: off): a topic-partition whose event time runs more
    /// than this ahead of the other topic's (a backlog, a replay, one producer down) is held —
    /// its messages kept in memory, unprocessed — until the other catches up or goes quiet.
    /// Results do not depend on it; it bounds the attribution state and the provisional results
    /// corrected while one topic runs ahead.
    #[arg(
        long,
        value_name = "SECS",
        env = "PLAYSOURCE_MAX_DRIFT_SECS",
        default_value_t = 60
    )]
    pub max_drift_secs: u64,
    /// Memory for held messages, in MiB, all partitions together; past it a held
    /// topic-partition is paused at the broker and read again once the other topic caught up.
    #[arg(long, value_name = "MIB", env = "PLAYSOURCE_ALIGN_BUFFER_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub align_buffer_mb: u64,
    /// An event whose ts is more than this many seconds ahead of both its Kafka message
    /// timestamp and this process's clock is rejected to the dead-letter topic (a broken
    /// producer clock must not move any watermark).
    #[arg(
        long,
        value_name = "SECS",
        env = "PLAYSOURCE_MAX_FUTURE_SECS",
        default_value_t = 300
    )]
    pub max_future_secs: u64,
    /// Static group membership: this member's stable name (`group.instance.id`), e.g. the
    /// replica's pod or container name. A restart with the same id takes its partitions back at
    /// once where the broker supports it; unset (default): dynamic membership.
    #[arg(long, env = "PLAYSOURCE_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// This replica's stable name (the pod or container name) for a fast restart with dynamic
    /// membership: before joining, the stream removes from the group (LeaveGroup) the member
    /// that ran under this name before, so a crashed replica's partitions come back without
    /// waiting for the session timeout. Use it where static membership is missing (tansu);
    /// unset (default): no removal.
    #[arg(long, env = "PLAYSOURCE_REPLICA_NAME")]
    pub replica_name: Option<String>,
    /// The partitioner of the input topics' producers (both topics are keyed by member_id as a
    /// decimal string). After a restart without a usable checkpoint, when Kafka no longer holds
    /// what the attribution looks back on, archive rows written by another tool (no `_partition`
    /// / `_offset` columns) are placed in their Kafka partition with it: consistent_random is
    /// librdkafka's default (playsource's producers, most non-Java clients), murmur2_random the
    /// Java client's (Kafka Connect, Kafka Streams).
    #[arg(
        long,
        value_name = "NAME",
        env = "PLAYSOURCE_ARCHIVE_PARTITIONER",
        default_value = "consistent_random",
        value_parser = clap::builder::PossibleValuesParser::new(Partitioner::ALL.map(Partitioner::name))
            .try_map(|s| s.parse::<Partitioner>())
    )]
    pub archive_partitioner: Partitioner,
}

/// Runs `playsource stream`.
pub async fn run(args: StreamArgs) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    if let Err(e) = playsource_stream::serve_metrics(args.metrics_listen, shutdown.clone()).await {
        // Metrics are not worth refusing to stream over; say so loudly and go on.
        tracing::warn!(error = %e, "no /metrics endpoint; pass a free --metrics-listen address to get one");
    }
    let mut cfg = StreamConfig::new(args.kafka.brokers.clone(), args.archive.store()?);
    cfg.topics = args.kafka.topics();
    cfg.group_id = args.group_id;
    cfg.take_over = args.take_over;
    cfg.flush_interval = Duration::from_millis(args.flush_interval_ms);
    cfg.checkpoint_interval = Duration::from_secs(args.checkpoint_interval_secs);
    cfg.catalog_ttl = Duration::from_secs(args.catalog_ttl_secs);
    cfg.exit_when_idle = args.exit_when_idle.map(Duration::from_secs);
    cfg.attribution = AttributionConfig {
        allowed_lateness_ms: i64::from(args.allowed_lateness_secs) * 1000,
        ..AttributionConfig::default()
    };
    cfg.publish_enriched = !args.no_enriched;
    cfg.retry_timeout = Duration::from_secs(args.retry_timeout_secs);
    cfg.session_timeout = Duration::from_millis(args.session_timeout_ms);
    cfg.max_drift = (args.max_drift_secs > 0).then(|| Duration::from_secs(args.max_drift_secs));
    cfg.align_buffer_bytes = usize::try_from(args.align_buffer_mb << 20).unwrap_or(usize::MAX);
    cfg.max_future = Duration::from_secs(args.max_future_secs);
    cfg.instance_id = args.instance_id.filter(|id| !id.is_empty());
    cfg.replica_name = args.replica_name.filter(|n| !n.is_empty());
    cfg.archive_partitioner = args.archive_partitioner;
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: flushing");
        signal.cancel();
    });
    let summary = playsource_stream::run_with_url(cfg, &args.db.database_url, shutdown.clone())
        .await
        .context("the streaming layer stopped")?;
    shutdown.cancel();
    tracing::info!(consumed = summary.consumed, flushes = summary.flushes, reason = ?summary.exit, "stream stopped");
    if summary.exit == ExitReason::Idle {
        eprintln!(
            "playsource stream: idle; processed {} messages in {} flushes.",
            summary.consumed, summary.flushes
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
