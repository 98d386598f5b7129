//! `playsource init`: applies the database migrations and creates the Kafka topics.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::common::{DbArgs, KafkaArgs};

/// Flags of `playsource init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Partitions of each topic it creates. Existing topics are kept; the impressions and plays
    /// topics must have the same count (co-partitioned by member_id).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub partitions: i32,
}

/// Creates the database if it is missing, applies every pending migration, then creates the
/// missing topics. Safe to run again.
pub async fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let url = &args.db.database_url;
    let target = playsource_store::target_of(url)?;
    playsource_store::create_database_if_missing(url).await?;
    let pool = playsource_store::connect(url).await?;
    playsource_store::migrate(&pool)
        .await
        .with_context(|| format!("initialising the database {target}"))?;
    pool.close().await;
    tracing::info!(database = %target, "database schema is up to date");

    let topics = args.kafka.topics();
    playsource_kafka::admin::ensure_topics(&args.kafka.brokers, &topics, args.partitions).await?;
    let input = playsource_kafka::admin::partition_count(&args.kafka.brokers, &topics.impressions)
        .await?
        .unwrap_or(args.partitions);
    println!(
        "initialised: database {target} migrated; topics {}, {} ({input} partitions each), {}, {} ready on {}",
        topics.impressions, topics.plays, topics.enriched, topics.dlq, args.kafka.brokers
    );
    Ok(ExitCode::SUCCESS)
}
