//! `playsource catalog load|versions|show`: the temporal video catalog side input (docs/reference.md §2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use playsource_domain::{Ts, VideoId};

use super::common::DbArgs;
use super::replay::parse_time;

/// Flags of `playsource catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

/// What to do with the catalog.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Record every video of a CSV file (header `video_id,title,genre,kind,launch_date`; kind is
    /// movie, episode or show; launch_date is YYYY-MM-DD) as a new catalog version, all in one
    /// transaction: a bad row loads nothing. The version applies to plays from the load time (or
    /// --effective-from) on; the first version ever loaded applies from the beginning of time.
    /// Videos not in the file keep their values; a file identical to the version in effect
    /// records nothing.
    Load(LoadArgs),
    /// List the catalog versions in effect order: number, effective from, loaded at, videos
    /// changed, file.
    Versions(DbOnly),
    /// Print the values of one video in effect at a time (default: now), and every version of
    /// it; exit 1 when no version names the video.
    Show(ShowArgs),
}

/// Flags of `playsource catalog load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The CSV file to load.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// When the version starts to apply (RFC 3339 with an offset, or YYYY-MM-DD for midnight
    /// UTC); default: the load time. Plays before it keep the earlier values. Ignored for the
    /// first version ever loaded, which applies from the beginning of time.
    #[arg(long, value_name = "TS", env = "PLAYSOURCE_CATALOG_EFFECTIVE_FROM")]
    pub effective_from: Option<String>,
}

/// Only the database flag.
#[derive(Debug, Args)]
pub struct DbOnly {
    #[command(flatten)]
    pub db: DbArgs,
}

/// Flags of `playsource catalog show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The video id.
    #[arg(value_name = "VIDEO_ID")]
    pub video_id: u64,
    /// The time to look at (RFC 3339 or YYYY-MM-DD); default: now.
    #[arg(long, value_name = "TS")]
    pub at: Option<String>,
}

/// Runs `playsource catalog`.
pub async fn run(args: CatalogArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CatalogCommand::Load(a) => load(a).await,
        CatalogCommand::Versions(a) => versions(a).await,
        CatalogCommand::Show(a) => show(a).await,
    }
}

fn when(effective_from: Option<Ts>) -> String {
    effective_from.map_or_else(|| "beginning of time".to_owned(), |t| t.to_string())
}

async fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let effective_from = match &args.effective_from {
        Some(s) => {
            let ts = parse_time("--effective-from", s)?;
            match ts.to_datetime() {
                Some(t) => Some(t),
                None => bail!(
                    "--effective-from {s:?} is out of range; give a time between years 1 and 9999"
                ),
            }
        }
        None => None,
    };
    // Validate the whole file before connecting: a bad row is reported even without a database.
    let videos = playsource_store::catalog::read_csv(&args.file)?;
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let out = playsource_store::catalog::load_version(
        &pool,
        &videos,
        effective_from,
        &args.file.display().to_string(),
    )
    .await?;
    pool.close().await;
    let eff = when(out.effective_from.map(|t| Ts(t.timestamp_millis())));
    match out.version {
        Some(v) => println!(
            "loaded {} videos from {}: version {v}, {} changed, effective from {eff}",
            videos.len(),
            args.file.display(),
            out.changed
        ),
        None => println!(
            "loaded {} videos from {}: identical to the catalog in effect at {eff}, no new version",
            videos.len(),
            args.file.display()
        ),
    }
    if effective_from.is_some() && out.effective_from.is_none() && out.version.is_some() {
        println!(
            "(the first version applies from the beginning of time; --effective-from was not used)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn versions(args: DbOnly) -> anyhow::Result<ExitCode> {
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let list = playsource_store::catalog::list_versions(&pool).await?;
    pool.close().await;
    println!(
        "{:>7}  {:<24}  {:<24}  {:>8}  file",
        "version", "effective_from", "loaded_at", "videos"
    );
    for (v, file) in &list {
        println!(
            "{:>7}  {:<24}  {:<24}  {:>8}  {file}",
            v.version,
            when(v.effective_from),
            v.loaded_at.to_string(),
            v.videos
        );
    }
    if list.is_empty() {
        println!("(no catalog loaded yet: every play gets genre `unknown`; load one with `playsource catalog load FILE.csv`)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let at = match &args.at {
        Some(s) => parse_time("--at", s)?,
        None => Ts(chrono::Utc::now().timestamp_millis()),
    };
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let catalog = playsource_store::catalog::fetch_catalog(&pool).await?;
    pool.close().await;
    let id = VideoId(args.video_id);
    let e = catalog.enrich(id, at);
    match (e.meta, catalog.version_of(id, at)) {
        (Some(m), Some(v)) => println!(
            "video {} at {at}: version {v}, title {:?}, genre {:?}, kind {}, launch_date {}, new launch {}",
            m.video_id.0,
            m.title,
            m.genre,
            m.kind.as_str(),
            m.launch_date,
            e.is_new_launch
        ),
        _ => println!(
            "video {} at {at}: not in the catalog in effect then (genre `unknown`, not a new launch)",
            id.0
        ),
    }
    let froms: std::collections::HashMap<i64, Option<Ts>> = catalog
        .versions()
        .iter()
        .map(|v| (v.version, v.effective_from))
        .collect();
    for (v, m) in catalog.history(id) {
        println!(
            "  version {v} (effective from {}): title {:?}, genre {:?}, kind {}, launch_date {}",
            when(froms.get(&v).copied().flatten()),
            m.title,
            m.genre,
            m.kind.as_str(),
            m.launch_date
        );
    }
    Ok(
        if e.meta.is_some() || catalog.history(id).next().is_some() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
