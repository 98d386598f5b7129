//! Test harness: runs the streaming layer configured from environment variables, so tests can
//! `kill -9` a real process mid-run. Not part of the user-facing CLI (use `playsource stream`).
//!
//! Variables: `DATABASE_URL`, `KAFKA_BROKERS`, `IMPRESSIONS_TOPIC`, `PLAYS_TOPIC`,
//! `ENRICHED_TOPIC`, `DLQ_TOPIC`, `PLAYSOURCE_GROUP_ID`, `PLAYSOURCE_ARCHIVE`,
//! `PLAYSOURCE_FLUSH_INTERVAL_MS`, `PLAYSOURCE_CHECKPOINT_INTERVAL_SECS`,
//! `PLAYSOURCE_SESSION_TIMEOUT_MS`, `PLAYSOURCE_MAX_DRIFT_SECS` (0: no alignment),
//! `PLAYSOURCE_REPLICA_NAME`, `PLAYSOURCE_ARCHIVE_PARTITIONER` (`consistent_random` or
//! `murmur2_random`).

use std::process::ExitCode;
use std::time::Duration;

use playsource_stream::{CancellationToken, StreamConfig};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let archive = match playsource_archive::ArchiveStore::open(&var(
        "PLAYSOURCE_ARCHIVE",
        "./data/archive",
    )) {
        Ok(archive) => archive,
        Err(e) => {
            eprintln!("PLAYSOURCE_ARCHIVE: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = StreamConfig::new(var("KAFKA_BROKERS", "127.0.0.1:9092"), archive);
    cfg.topics.impressions = var("IMPRESSIONS_TOPIC", "impressions");
    cfg.topics.plays = var("PLAYS_TOPIC", "plays");
    cfg.topics.enriched = var("ENRICHED_TOPIC", "enriched-plays");
    cfg.topics.dlq = var("DLQ_TOPIC", "playsource-dlq");
    cfg.group_id = var("PLAYSOURCE_GROUP_ID", playsource_stream::DEFAULT_GROUP_ID);
    cfg.flush_interval = Duration::from_millis(num("PLAYSOURCE_FLUSH_INTERVAL_MS", 1000).max(1));
    cfg.checkpoint_interval = Duration::from_secs(num("PLAYSOURCE_CHECKPOINT_INTERVAL_SECS", 60));
    cfg.replica_name = std::env::var("PLAYSOURCE_REPLICA_NAME")
        .ok()
        .filter(|n| !n.is_empty());
    cfg.session_timeout = Duration::from_millis(num("PLAYSOURCE_SESSION_TIMEOUT_MS", 45_000));
    match var("PLAYSOURCE_ARCHIVE_PARTITIONER", "consistent_random").parse() {
        Ok(p) => cfg.archive_partitioner = p,
        Err(e) => {
            eprintln!("PLAYSOURCE_ARCHIVE_PARTITIONER: {e}");
            return ExitCode::from(2);
        }
    }
    let drift = num("PLAYSOURCE_MAX_DRIFT_SECS", 60);
    cfg.max_drift = (drift > 0).then(|| Duration::from_secs(drift));
    let url = var(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/playsource",
    );
    match playsource_stream::run_with_url(cfg, &url, CancellationToken::new()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
