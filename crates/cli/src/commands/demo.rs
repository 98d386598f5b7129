//! `playsource demo`: runs everything on local defaults, then prints the dashboard URL.
//!
//! Placeholder until the layer's owner replaces this file.

use std::process::ExitCode;

use clap::Args;

#[allow(unused_imports)]
use super::common::{ArchiveArgs, DbArgs, KafkaArgs};

/// Flags of `playsource demo`.
#[derive(Debug, Args)]
#[allow(dead_code)] // placeholder: the flags are parsed but not used yet
pub struct DemoArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

/// Runs `playsource demo` (not built yet: exits 2).
pub async fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    Ok(super::common::not_built("demo"))
}
