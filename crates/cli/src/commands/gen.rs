//! `playsource gen`: produces realistic synthetic traffic to Kafka, to an archive, or to NDJSON
//! files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use playsource_domain::{Ts, DAY_MS};
use playsource_gen::config::parse_start;
use playsource_gen::progress::Progress;
use playsource_gen::{catalog_csv, sink_archive, sink_kafka, sink_ndjson, GenConfig, Traffic};

use super::common::{ArchiveArgs, KafkaArgs};

/// Where `gen` sends its traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Produce to the impressions and plays topics (they must exist: `playsource init`).
    Kafka,
    /// Write valid events as Parquet under --archive (<topic>/date=YYYY-MM-DD/hour=HH/).
    Archive,
    /// Write every message, exactly as Kafka would receive it, one per line in delivery order, to
    /// --out DIR/impressions.ndjson and DIR/plays.ndjson.
    Ndjson,
}

/// Flags of `playsource gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Where to send the traffic.
    #[arg(long, value_enum, default_value = "kafka")]
    pub to: Target,
    /// Folder of the NDJSON files (--to ndjson); created when missing.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of the generator: the same seed and flags give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of members.
    #[arg(long, default_value_t = 1_000)]
    pub members: u32,
    /// Number of catalog titles (Zipf-like popularity).
    #[arg(long, default_value_t = 2_000)]
    pub videos: u32,
    /// Event time of the first session: RFC 3339 (2026-11-21T10:00:00Z) or a date (2026-11-21).
    /// Default: now minus --days.
    #[arg(long)]
    pub start: Option<String>,
    /// Days of history to generate (with --events: the period the events are spread over).
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Stop after this many messages in total (all kinds); the session rate is set so that they
    /// fill nearly all of --days (the end of --days still ends the traffic).
    #[arg(long)]
    pub events: Option<u64>,
    /// Browse sessions per member and day (default: 2, or what --events needs to fill --days).
    #[arg(long)]
    pub sessions_per_member_day: Option<f64>,
    /// Pace Kafka output to this many messages per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Greatest delay (ms) by which a message may trail one with a later ts (at most 180000).
    #[arg(long, default_value_t = 20_000)]
    pub disorder_ms: i64,
    /// Share of valid events delivered twice (same bytes, up to a minute later).
    #[arg(long, default_value_t = 0.005)]
    pub duplicate_share: f64,
    /// Share of valid events delivered 10-60 minutes of event time late (too late for the stream).
    #[arg(long, default_value_t = 0.0)]
    pub late_share: f64,
    /// Share of all messages that are malformed (not JSON, missing field, bad country, ...).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_share: f64,
    /// Share of catalog titles launched inside the generated period.
    #[arg(long, default_value_t = 0.05)]
    pub new_launch_share: f64,
    /// Extra played titles, as a share of --videos, that the catalog does not list.
    #[arg(long, default_value_t = 0.02)]
    pub missing_from_catalog_share: f64,
    /// Also write the catalog as CSV (video_id,title,genre,kind,launch_date) to this file, for
    /// `playsource catalog load`.
    #[arg(long)]
    pub catalog_out: Option<PathBuf>,
    /// Show a progress bar on stderr.
    #[arg(long)]
    pub progress: bool,
}

impl GenArgs {
    fn config(&self) -> anyhow::Result<GenConfig> {
        let start = match &self.start {
            Some(s) => parse_start(s)?,
            None => {
                let now = chrono::Utc::now().timestamp_millis();
                // Whole seconds, so the default start prints cleanly.
                Ts((now - self.days as i64 * DAY_MS) / 1000 * 1000)
            }
        };
        let cfg = GenConfig {
            seed: self.seed,
            members: self.members,
            videos: self.videos,
            start,
            days: self.days,
            events: self.events,
            sessions_per_member_day: self.sessions_per_member_day,
            disorder_ms: self.disorder_ms,
            duplicate_share: self.duplicate_share,
            late_share: self.late_share,
            malformed_share: self.malformed_share,
            new_launch_share: self.new_launch_share,
            missing_from_catalog_share: self.missing_from_catalog_share,
        };
        cfg.validate()?;
        if let Some(rate) = self.rate {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of messages per second, got {rate}"
            );
            anyhow::ensure!(
                self.to == Target::Kafka,
                "--rate paces Kafka output only; drop it with --to archive or --to ndjson"
            );
        }
        match (self.to, &self.out) {
            (Target::Ndjson, None) => {
                anyhow::bail!("--to ndjson needs --out DIR, the folder to write impressions.ndjson and plays.ndjson to")
            }
            (Target::Kafka | Target::Archive, Some(_)) => {
                anyhow::bail!("--out is the folder of --to ndjson; drop it, or add --to ndjson")
            }
            _ => {}
        }
        Ok(cfg)
    }
}

/// Runs `playsource gen`.
pub async fn run(args: GenArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    let traffic = Traffic::new(&cfg)?;
    if let (Target::Ndjson, Some(dir)) = (args.to, &args.out) {
        // So that --catalog-out may name a file inside it.
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the --out folder {}", dir.display()))?;
    }
    if let Some(path) = &args.catalog_out {
        let catalog = traffic.model().catalog();
        catalog_csv::write_csv_file(&catalog, path)?;
        println!(
            "gen: wrote {} catalog titles to {}",
            catalog.len(),
            path.display()
        );
    }
    let progress = args.progress.then(|| Progress::new(&cfg));
    let topics = args.kafka.topics();
    match args.to {
        Target::Kafka => {
            let brokers = args.kafka.brokers.clone();
            sink_kafka::check_topics(&brokers, &topics).await?;
            let counts =
                sink_kafka::produce(traffic, &brokers, &topics, args.rate, progress.as_ref())
                    .await?;
            if let Some(p) = &progress {
                p.finish();
            }
            println!(
                "gen: produced {counts} to {} and {} on {brokers} (seed {}, from {})",
                topics.impressions, topics.plays, cfg.seed, cfg.start
            );
        }
        Target::Archive => {
            let archive = args.archive.store()?;
            let seed = cfg.seed;
            let report = tokio::task::spawn_blocking(move || {
                let r = sink_archive::write_archive(
                    traffic,
                    archive,
                    &topics.impressions,
                    &topics.plays,
                    seed,
                    progress.as_ref(),
                );
                if let Some(p) = &progress {
                    p.finish();
                }
                r
            })
            .await
            .context("the archive writer stopped unexpectedly")??;
            println!(
                "gen: wrote {} rows in {} files under {} (malformed messages are not archived); generated {} (seed {}, from {})",
                report.rows(),
                report.files.len(),
                args.archive.archive.display(),
                report.counts,
                cfg.seed,
                cfg.start
            );
        }
        Target::Ndjson => {
            let out = args
                .out
                .clone()
                .context("--to ndjson needs --out DIR, the folder to write the files to")?;
            let report = tokio::task::spawn_blocking(move || {
                let r = sink_ndjson::write_ndjson(traffic, &out, progress.as_ref());
                if let Some(p) = &progress {
                    p.finish();
                }
                r
            })
            .await
            .context("the NDJSON writer stopped unexpectedly")??;
            println!(
                "gen: wrote {} impression and {} play messages ({} bytes) to {} and {}; generated {} (seed {}, from {})",
                report.impression_lines,
                report.play_lines,
                report.bytes,
                report.files[0].display(),
                report.files[1].display(),
                report.counts,
                cfg.seed,
                cfg.start
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
