//! `playsource batch`: recomputes whole days from the raw archive into the batch view
//! (docs/reference.md §4), writes each day's enriched plays, and optionally prunes realtime rows of days
//! long batch-complete.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use playsource_batch::{run_days, BatchOptions};
use playsource_domain::{AttributionConfig, Day, Ts};

use super::common::{ArchiveArgs, DbArgs, InputTopicArgs};

/// Most days one invocation recomputes.
const MAX_DAYS: i32 = 3660;

/// Flags of `playsource batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    #[command(flatten)]
    pub topics: InputTopicArgs,
    /// The day to recompute: YYYY-MM-DD, `yesterday` or `today` (UTC).
    #[arg(long, value_name = "D", conflicts_with_all = ["from", "to"], required_unless_present = "from")]
    pub date: Option<String>,
    /// First day of a range to recompute (YYYY-MM-DD, `yesterday` or `today`).
    #[arg(long, value_name = "D", requires = "to")]
    pub from: Option<String>,
    /// Last day of the range, inclusive.
    #[arg(long, value_name = "D", requires = "from")]
    pub to: Option<String>,
    /// Publish a day whose plays are missing from the archive (or all invalid) as a day without
    /// plays, instead of failing.
    #[arg(long)]
    pub allow_empty: bool,
    /// Publish even when the archive is not complete for the day (a partition neither archived
    /// past the day's end plus the allowed lateness nor read to its end after it); says which.
    #[arg(long, env = "PLAYSOURCE_BATCH_FORCE")]
    pub force: bool,
    /// Compute only shard I of N of each day (1 <= I <= N), for running a day on N machines: the
    /// shard reads its share of the archive and records its part; the shard that records the
    /// last of the N parts publishes the day. Give every shard the same N and --archive.
    #[arg(long, env = "PLAYSOURCE_BATCH_SHARD", value_name = "I/N")]
    pub shard: Option<String>,
    /// Worker threads [default: every core].
    #[arg(long, env = "PLAYSOURCE_BATCH_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// After publishing, delete the realtime rows (rt_hourly, rt_video_daily, rt_too_late) of
    /// every day batch-complete for more than DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub prune_realtime: Option<u32>,
    /// Do not draw the progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// Parses `YYYY-MM-DD`, `yesterday` or `today` (UTC).
pub fn parse_day(flag: &str, s: &str) -> anyhow::Result<Day> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let today = Ts(now).day();
    match s.trim() {
        "today" => Ok(today),
        "yesterday" => Ok(today.plus(-1)),
        other => Day::parse(other).map_err(|e| {
            anyhow::anyhow!(
                "{flag}: {e}; give a UTC day such as 2026-11-21, `yesterday` or `today`"
            )
        }),
    }
}

fn days_of(args: &BatchArgs) -> anyhow::Result<Vec<Day>> {
    let (first, last) = match (&args.date, &args.from, &args.to) {
        (Some(d), _, _) => {
            let d = parse_day("--date", d)?;
            (d, d)
        }
        (None, Some(f), Some(t)) => (parse_day("--from", f)?, parse_day("--to", t)?),
        _ => bail!("give the day to recompute with --date D, or a range with --from D1 --to D2"),
    };
    if first > last {
        bail!("--from {first} is after --to {last}; give the earlier day first");
    }
    if last.0 - first.0 >= MAX_DAYS {
        bail!("--from {first} --to {last} spans more than {MAX_DAYS} days; split the range into several runs");
    }
    Ok((first.0..=last.0).map(Day).collect())
}

/// Runs `playsource batch`.
pub async fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let days = days_of(&args)?;
    if args.threads == Some(0) {
        bail!("--threads 0 leaves no thread to work; give at least 1 (or leave it out to use every core)");
    }
    let shard = match args.shard.as_deref() {
        Some(s) => s.parse::<playsource_batch::Shard>()?,
        None => playsource_batch::Shard::WHOLE,
    };
    if !shard.is_whole() && args.prune_realtime.is_some() {
        bail!("--prune-realtime with --shard would prune once per shard; prune in a separate `playsource batch` run or after the shards, without --shard");
    }
    let pool = playsource_store::connect(&args.db.database_url).await?;
    let catalog = Arc::new(
        playsource_batch::load_catalog(&pool)
            .await
            .context("cannot read the catalog for the batch run")?,
    );
    if catalog.is_empty() {
        tracing::warn!("the catalog is empty: every play gets genre `unknown`; load it with `playsource catalog load FILE.csv`");
    }
    let opts = BatchOptions {
        archive: args.archive.store()?,
        impressions_topic: args.topics.impressions_topic.clone(),
        plays_topic: args.topics.plays_topic.clone(),
        attribution: AttributionConfig::default(),
        threads: args
            .threads
            .unwrap_or_else(playsource_batch::default_threads),
        allow_empty: args.allow_empty,
        progress: !args.no_progress,
        force: args.force,
    };
    if !shard.is_whole() {
        for &day in &days {
            let s = playsource_batch::run_shard(&pool, catalog.clone(), &opts, day, shard)
                .await
                .with_context(|| {
                    format!("shard {shard} of {day} failed; nothing of it was recorded")
                })?;
            report_shard(&s);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = |s: &playsource_batch::DaySummary| {
        let day = s.day;
        if !s.forced_past.is_empty() {
            println!(
                "{day}: --force: published although the archive is not complete for it; behind: {}",
                playsource_batch::gate::describe(&s.forced_past)
            );
        }
        println!(
            "{day}: published generation {}: {} plays ({} repeats left out, {} too late for the stream), {} impressions, {} invalid rows skipped, {} hourly rows, enriched plays in {} ({:.1} s)",
            s.generation,
            s.plays,
            s.duplicate_plays,
            s.too_late_plays,
            s.impressions,
            s.plays_read.invalid + s.impressions_read.invalid,
            s.hourly_rows,
            s.enriched_dir.display(),
            s.elapsed.as_secs_f64()
        );
    };
    if let Err((day, e)) = run_days(&pool, catalog, &opts, &days, report).await {
        let n = days.iter().position(|&d| d == day).unwrap_or(0);
        let done = match n {
            0 => String::new(),
            1 => format!(" ({} was published)", days[0]),
            _ => format!(" ({} to {} were published)", days[0], days[n - 1]),
        };
        return Err(anyhow::Error::new(e).context(format!("batch of {day} failed{done}")));
    }
    if let Some(older_than) = args.prune_realtime {
        let p = playsource_batch::prune_realtime(&pool, older_than)
            .await
            .context("pruning the realtime view failed (the batch view is published)")?;
        println!(
            "pruned realtime rows of days batch-complete for more than {older_than} days: {} rt_hourly, {} rt_video_daily, {} rt_too_late",
            p.rt_hourly, p.rt_video_daily, p.rt_too_late
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a shard did (`--shard I/N`, N > 1).
fn report_shard(s: &playsource_batch::ShardSummary) {
    let (day, shard) = (s.day, s.shard);
    if !s.forced_past.is_empty() {
        println!(
            "{day}: --force: shard {shard} ran although the archive is not complete for it; behind: {}",
            playsource_batch::gate::describe(&s.forced_past)
        );
    }
    println!(
        "{day}: shard {shard}: part recorded: {} plays ({} repeats left out), {} impressions, read {} plays and {} impressions files{} ({:.1} s); {} of {} parts in",
        s.plays,
        s.duplicate_plays,
        s.impressions,
        s.files.0,
        s.files.1,
        if s.member_filter { " filtered by member hash" } else { "" },
        s.elapsed.as_secs_f64(),
        s.parts_recorded,
        shard.count
    );
    if let Some(p) = &s.published {
        println!(
            "{day}: published generation {} from {} shards: {} plays, {} too late for the stream, {} impressions, enriched plays in {}",
            p.published.generation,
            shard.count,
            p.plays,
            p.published.too_late_plays,
            p.impressions,
            p.enriched_dir.display()
        );
    }
}
