//! `playsource replay`: re-publishes the archived raw events of an event-time range to Kafka, in
//! event-time order (the recovery path once Kafka's retention has dropped the data).
//!
//! The archive is read partition by partition (`playsource_archive::replay`: only the
//! `date=`/`hour=` partitions overlapping the range, both topics merged in event-time order,
//! about one hour in memory) on a blocking thread, while `playsource_kafka::send::pump`
//! produces what it hands over: the contract's JSON, keyed by member id, to the configured input
//! topics, with librdkafka's default partitioner (through the same pipeline as `playsource
//! gen`). Every delivery is awaited before the summary. This module checks the flags and words
//! the outcome.

use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use playsource_archive::layout::check_topic_dir;
use playsource_archive::read::ReadStats;
use playsource_archive::replay::{plan_in, EventTimeMerge, Partition, ReplayEvent, Topic};
use playsource_domain::{Day, Ts};
use playsource_kafka::send::{pump, Message, Pipeline};

use super::common::{ArchiveArgs, KafkaArgs};

/// Chunks (about one archive hour each) read ahead of the producer.
const READ_AHEAD: usize = 2;

/// Which input topic `--topic` replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TopicChoice {
    /// Impressions only (folder and topic named by --impressions-topic).
    Impressions,
    /// Plays only (folder and topic named by --plays-topic).
    Plays,
}

impl From<TopicChoice> for Topic {
    fn from(c: TopicChoice) -> Topic {
        match c {
            TopicChoice::Impressions => Topic::Impressions,
            TopicChoice::Plays => Topic::Plays,
        }
    }
}

/// Flags of `playsource replay`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads <archive>/<topic>/date=YYYY-MM-DD/hour=HH/*.parquet of the partitions overlapping \
[T1, T2) (skipping `.`/`_` names such as _staging), keeps the rows whose ts is in the range \
and produces them in event-time order, both topics merged, as the JSON of docs/reference.md §1, keyed \
by member_id (librdkafka's default partitioner, as `playsource gen`). Redeliveries kept in the \
archive are replayed too; the stream counts an event_id once. Messages carry the time of the \
replay as their Kafka timestamp, so retention does not drop them at once.

Prints one summary line once every delivery is confirmed. An empty range is a warning, not an \
error (exit 0). A bad range or --rate, a missing archive or topic, an unreadable file or a \
failed delivery exit 1 with one sentence (saying where to resume when events were sent \
already); usage errors such as an unknown --topic exit 2.")]
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Start of the event-time range, inclusive: RFC 3339 (2026-11-21T10:00:00Z) or a date
    /// (2026-11-21, midnight UTC).
    #[arg(long, value_name = "T1")]
    pub from: String,
    /// End of the event-time range, exclusive: RFC 3339 or a date (midnight UTC).
    #[arg(long, value_name = "T2")]
    pub to: String,
    /// Replay only this input topic [default: both, merged in event-time order].
    #[arg(long, value_enum)]
    pub topic: Option<TopicChoice>,
    /// Pace output to this many events per second [default: as fast as Kafka takes them;
    /// ignored with --dry-run].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Read the archive and count what would be replayed, without connecting to Kafka.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not draw the progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// Parses `--from` / `--to`: RFC 3339 with an offset, or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(flag: &str, s: &str) -> anyhow::Result<Ts> {
    let s = s.trim();
    if let Ok(ts) = Ts::parse_rfc3339(s) {
        return Ok(ts);
    }
    Day::parse(s).map(Day::start).map_err(|_| {
        anyhow::anyhow!(
            "{flag} {s:?} is not a time: give an RFC 3339 timestamp with an offset such as 2026-11-21T10:00:00Z, or a date such as 2026-11-21 (midnight UTC)"
        )
    })
}

fn range_of(args: &ReplayArgs) -> anyhow::Result<Range<Ts>> {
    let from = parse_time("--from", &args.from)?;
    let to = parse_time("--to", &args.to)?;
    if from >= to {
        bail!("--from {from} is not before --to {to}, so the range [from, to) is empty; give an earlier --from or a later --to");
    }
    Ok(from..to)
}

/// Runs `playsource replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let range = range_of(&args)?;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of events per second, got {rate}; leave it out to replay as fast as Kafka takes the events");
        }
    }
    let store = args.archive.store()?;
    let root = store.location();
    if store.local_root().is_some_and(|dir| !dir.is_dir()) {
        bail!(
            "the archive directory {} does not exist; pass the archive root (the folder holding the topic folders) with --archive or PLAYSOURCE_ARCHIVE",
            root.display()
        );
    }
    let topics = args.kafka.topics();
    let roles: Vec<(Topic, String)> = [
        (Topic::Impressions, &topics.impressions),
        (Topic::Plays, &topics.plays),
    ]
    .into_iter()
    .filter(|(t, _)| args.topic.is_none_or(|c| Topic::from(c) == *t))
    .map(|(t, name)| (t, name.clone()))
    .collect();
    for (_, name) in &roles {
        check_topic_dir(name)?;
    }
    let brokers = args.kafka.brokers.clone();
    if !args.dry_run {
        playsource_kafka::admin::check_inputs(&brokers, &topics.impressions, &topics.plays).await?;
    }

    let dirs: Vec<(Topic, &str)> = roles.iter().map(|(t, n)| (*t, n.as_str())).collect();
    let partitions = plan_in(&store, &dirs, &range)?;
    let names = roles
        .iter()
        .map(|(_, n)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    for (_, n) in &roles {
        // An object store has no folders; the "nothing to replay" warning covers it.
        if store.local_root().is_some_and(|dir| !dir.join(n).is_dir()) {
            eprintln!(
                "warning: {} has no folder `{n}`, so no event of topic `{n}` is replayed; check --archive and the topic flags",
                root.display()
            );
        }
    }
    let summary = |sent: [u64; 2], files: u64| {
        let total = sent[0] + sent[1];
        let per_topic = roles
            .iter()
            .map(|(t, n)| format!("{} to `{n}`", sent[t.index()]))
            .collect::<Vec<_>>()
            .join(", ");
        let (verb, to) = if args.dry_run {
            ("dry run: would replay", String::new())
        } else {
            ("replayed", format!(" on {brokers}"))
        };
        format!(
            "replay: {verb} {total} events ({per_topic}) of [{}, {}){to}, read from {files} files under {} in {:.1} s",
            range.start,
            range.end,
            root.display(),
            started.elapsed().as_secs_f64()
        )
    };
    if partitions.is_empty() {
        eprintln!(
            "warning: nothing to replay: {} holds no partition of {names} overlapping [{}, {}); check --archive, --from and --to",
            root.display(),
            range.start,
            range.end
        );
        println!("{}", summary([0, 0], 0));
        return Ok(ExitCode::SUCCESS);
    }

    let (progress, progress_start) = progress_bar(!args.no_progress, &range, &partitions);
    let topic_names = vec![topics.impressions.clone(), topics.plays.clone()];
    let mut pipeline = if args.dry_run {
        Pipeline::dry_run(topic_names)
    } else {
        let producer = playsource_kafka::producer(&brokers)?;
        Pipeline::new(producer, topic_names, args.rate)
    };
    let merge = EventTimeMerge::in_store(store.clone(), partitions, range.clone());
    let (merge, read_error) = pump(
        &mut pipeline,
        merge,
        |merge: &mut EventTimeMerge| {
            merge
                .next_chunk()
                .map(|chunk| chunk.map(|events| events.into_iter().map(message).collect()))
        },
        READ_AHEAD,
        |p: &Pipeline<Ts>| {
            if let Some(ts) = p.latest() {
                let pos = ((ts.0 - progress_start.0) / 1000).max(0) as u64;
                progress.set_position(pos.max(progress.position()));
                progress.set_message(format!("{ts}, {} events", p.handed_over()));
            }
        },
    )
    .await
    .context("the archive reader stopped unexpectedly")?;
    progress.finish_and_clear();
    let sent = [pipeline.delivered()[0], pipeline.delivered()[1]];
    let delivered = sent[0] + sent[1];
    if let Some(f) = pipeline.failure() {
        bail!(
            "cannot deliver a replayed event to Kafka topic `{}`: {}; every event before {} was delivered ({delivered} events in all), so re-run with --from {} once Kafka is healthy (the stream counts a repeated event_id once)",
            pipeline.topic_name(f.topic),
            f.cause,
            f.tag,
            f.tag
        );
    }
    if let Some(e) = read_error {
        let done = match pipeline.latest() {
            Some(ts) => format!("{delivered} events up to {ts} were replayed; re-run with --from {ts} once the file is fixed or moved out of the archive"),
            None => "no event was replayed; re-run once the file is fixed or moved out of the archive".to_owned(),
        };
        return Err(anyhow::Error::new(e).context(format!("replay stopped: {done}")));
    }

    println!("{}", summary(sent, merge.files_read()));
    for (t, n) in &roles {
        warn_invalid(n, merge.stats(*t));
    }
    if merge.out_of_order() > 0 {
        eprintln!(
            "warning: {} events were filed in a later hour partition than their ts and were sent after later events; the stream may count them as too late (the batch layer counts them)",
            merge.out_of_order()
        );
    }
    if delivered == 0 {
        eprintln!(
            "warning: nothing to replay: the archive's partitions overlapping [{}, {}) hold no valid event of {names} inside it",
            range.start, range.end
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One archived event as a message to topic `e.topic.index()`, tagged with its event time.
fn message(e: ReplayEvent) -> Message<Ts> {
    Message {
        topic: e.topic.index(),
        key: e.key().into_bytes(),
        payload: e.json.into_bytes(),
        tag: e.ts,
    }
}

fn warn_invalid(name: &str, stats: &ReadStats) {
    if stats.invalid > 0 {
        eprintln!(
            "warning: skipped {} archived rows of `{name}` that break docs/reference.md §1 (first: {})",
            stats.invalid,
            stats.first_invalid.as_deref().unwrap_or("?")
        );
    }
}

/// A bar over the event time of the range (clipped to the partitions found), like `gen`'s, and
/// the instant its position counts seconds from.
fn progress_bar(enabled: bool, range: &Range<Ts>, parts: &[Partition]) -> (ProgressBar, Ts) {
    let first = parts.iter().map(|p| p.window.start).min();
    let last = parts.iter().map(|p| p.window.end).max();
    let start = first.map_or(range.start, |f| f.max(range.start));
    let end = last.map_or(range.end, |l| l.min(range.end));
    if !enabled {
        return (ProgressBar::hidden(), start);
    }
    let len = ((end.0 - start.0) / 1000).max(1) as u64;
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% of event time, {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    (bar, start)
}
