//! `playsource catalog load FILE.csv`: loads the video catalog side input (contract §2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::common::DbArgs;

/// Flags of `playsource catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

/// What to do with the catalog.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Insert or update every video of a CSV file (header
    /// `video_id,title,genre,kind,launch_date`; kind is movie, episode or show; launch_date is
    /// YYYY-MM-DD), all in one transaction: a bad row loads nothing. Videos not in the file are
    /// kept.
    Load(LoadArgs),
}

/// Flags of `playsource catalog load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The CSV file to load.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
}

/// Runs `playsource catalog`.
pub async fn run(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Load(a) => load(a).await,
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    // Validate the whole file before connecting: a bad row is reported even without a database.
    let videos = playsource_store::catalog::read_csv(&args.file)?;
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let n = playsource_store::catalog::upsert(&pool, &videos).await?;
    pool.close().await;
    println!("loaded {n} videos from {}", args.file.display());
    Ok(ExitCode::SUCCESS)
}
