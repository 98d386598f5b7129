//! `playsource`: one binary, one subcommand per layer (docs/reference.md §6).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod commands;

/// Log filter when `RUST_LOG` is not set (Postgres notices such as "already exists, skipping"
/// are not worth a line).
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn";

/// Source of Play and Source of Discovery for every play, in a Lambda architecture:
/// a streaming layer for fresh numbers, a nightly batch layer that recomputes the truth
/// from the raw archive, and an HTTP API that serves both.
#[derive(Debug, Parser)]
#[command(name = "playsource", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the database migrations and create the Kafka topics (idempotent).
    Init(commands::init::InitArgs),
    /// Run the streaming layer: join impressions and plays, archive them, update the realtime view.
    Stream(commands::stream::StreamArgs),
    /// Run the batch layer: recompute whole days from the archive into the batch view.
    Batch(commands::batch::BatchArgs),
    /// Run the HTTP API and dashboard.
    Serve(commands::serve::ServeArgs),
    /// Manage the video catalog side input.
    Catalog(commands::catalog::CatalogArgs),
    /// Produce realistic synthetic traffic to Kafka or to an archive.
    Gen(commands::gen::GenArgs),
    /// Compare the realtime and batch views of a day; exit 1 on drift.
    Audit(commands::audit::AuditArgs),
    /// Re-publish archived raw events to Kafka, in event-time order.
    Replay(commands::replay::ReplayArgs),
    /// Run everything on local defaults, then print the dashboard URL.
    Demo(commands::demo::DemoArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Init(a) => commands::init::run(a).await,
        Command::Stream(a) => commands::stream::run(a).await,
        Command::Batch(a) => commands::batch::run(a).await,
        Command::Serve(a) => commands::serve::run(a).await,
        Command::Catalog(a) => commands::catalog::run(a).await,
        Command::Gen(a) => commands::gen::run(a).await,
        Command::Audit(a) => commands::audit::run(a).await,
        Command::Replay(a) => commands::replay::run(a).await,
        Command::Demo(a) => commands::demo::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
