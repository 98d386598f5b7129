//! `playsource replay`: re-publishes archived raw events to Kafka, in event-time order.
//!
//! Placeholder until the layer's owner replaces this file.

use std::process::ExitCode;

use clap::Args;

#[allow(unused_imports)]
use super::common::{ArchiveArgs, DbArgs, KafkaArgs};

/// Flags of `playsource replay`.
#[derive(Debug, Args)]
#[allow(dead_code)] // placeholder: the flags are parsed but not used yet
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Start of the event-time range (RFC 3339), inclusive.
    #[arg(long, value_name = "T1")]
    pub from: String,
    /// End of the event-time range (RFC 3339), exclusive.
    #[arg(long, value_name = "T2")]
    pub to: String,
}

/// Runs `playsource replay` (not built yet: exits 2).
pub async fn run(_args: ReplayArgs) -> anyhow::Result<ExitCode> {
    Ok(super::common::not_built("replay"))
}
