//! `playsource replay`: re-publishes the archived raw events of an event-time range to Kafka, in
//! event-time order (the recovery path once Kafka's retention has dropped the data).
//!
//! The archive is read partition by partition (`playsource_archive::replay`: only the
//! `date=`/`hour=` partitions overlapping the range, both topics merged in event-time order,
//! about one hour in memory) on a blocking thread, while this task produces what it hands over:
//! the contract's JSON, keyed by member id, to the configured input topics, with librdkafka's
//! default partitioner (as `playsource gen` does). Every delivery is awaited before the summary.

use std::collections::VecDeque;
use std::ops::Range;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use playsource_archive::layout::check_topic_dir;
use playsource_archive::read::ReadStats;
use playsource_archive::replay::{plan, EventTimeMerge, Partition, ReplayEvent, Topic};
use playsource_archive::ArchiveLayout;
use playsource_domain::{Day, Ts};
use playsource_gen::rate::TokenBucket;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::mpsc;

use super::common::{ArchiveArgs, KafkaArgs};

/// Deliveries awaited at most at once before waiting for the oldest.
const IN_FLIGHT: usize = 100_000;
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

/// Flags of `playsource replay`.
#[derive(Debug, Args)]
#[command(after_help = "\
Reads <archive>/<topic>/date=YYYY-MM-DD/hour=HH/*.parquet of the partitions overlapping \
[T1, T2) (skipping `.`/`_` names such as _staging), keeps the rows whose ts is in the range \
and produces them in event-time order, both topics merged, as the JSON of contract §1, keyed \
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
    let root = args.archive.local_dir("replay")?;
    if !root.is_dir() {
        bail!(
            "the archive directory {} does not exist; pass the archive root (the folder holding the topic folders) with --archive or PLAYSOURCE_ARCHIVE",
            root.display()
        );
    }
    let topics = args.kafka.topics();
    let roles: Vec<(Topic, String)> = [
        (
            Topic::Impressions,
            TopicChoice::Impressions,
            &topics.impressions,
        ),
        (Topic::Plays, TopicChoice::Plays, &topics.plays),
    ]
    .into_iter()
    .filter(|(_, choice, _)| args.topic.is_none_or(|t| t == *choice))
    .map(|(t, _, name)| (t, name.clone()))
    .collect();
    for (_, name) in &roles {
        check_topic_dir(name)?;
    }
    let brokers = args.kafka.brokers.clone();
    if !args.dry_run {
        playsource_gen::sink_kafka::check_topics(&brokers, &topics).await?;
    }

    let layout = ArchiveLayout::new(&root);
    let dirs: Vec<(Topic, &str)> = roles.iter().map(|(t, n)| (*t, n.as_str())).collect();
    let partitions = plan(&layout, &dirs, &range)?;
    let names = roles
        .iter()
        .map(|(_, n)| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    for (_, n) in &roles {
        if !layout.topic_dir(n).is_dir() {
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
            .map(|(t, n)| format!("{} to `{n}`", sent[topic_index(*t)]))
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
    let (tx, mut rx) = mpsc::channel(READ_AHEAD);
    let reader_range = range.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut merge = EventTimeMerge::new(partitions, reader_range);
        loop {
            let chunk = merge.next_chunk();
            let stop = !matches!(chunk, Ok(Some(_)));
            if let Some(chunk) = chunk.transpose() {
                if tx.blocking_send(chunk).is_err() {
                    break;
                }
            }
            if stop {
                break;
            }
        }
        merge
    });

    let mut out = Output::new(&args, &topics, progress_start, &progress)?;
    let mut read_error = None;
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Ok(events) => {
                if out.send_all(events).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(rx);
    // Deliveries already sent are awaited even after a failure, so the counts are exact.
    out.d.drain().await;
    progress.finish_and_clear();
    let merge = reader
        .await
        .context("the archive reader stopped unexpectedly")?;
    let delivered = out.d.sent[0] + out.d.sent[1];
    if let Some(f) = &out.d.failure {
        bail!(
            "cannot deliver a replayed event to Kafka topic `{}`: {}; every event before {} was delivered ({delivered} events in all), so re-run with --from {} once Kafka is healthy (the stream counts a repeated event_id once)",
            out.names[topic_index(f.topic)],
            f.cause,
            f.ts,
            f.ts
        );
    }
    if let Some(e) = read_error {
        let done = match out.latest {
            Some(ts) => format!("{delivered} events up to {ts} were replayed; re-run with --from {ts} once the file is fixed or moved out of the archive"),
            None => "no event was replayed; re-run once the file is fixed or moved out of the archive".to_owned(),
        };
        return Err(anyhow::Error::new(e).context(format!("replay stopped: {done}")));
    }

    println!("{}", summary(out.d.sent, merge.files_read()));
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

fn topic_index(t: Topic) -> usize {
    match t {
        Topic::Impressions => 0,
        Topic::Plays => 1,
    }
}

fn warn_invalid(name: &str, stats: &ReadStats) {
    if stats.invalid > 0 {
        eprintln!(
            "warning: skipped {} archived rows of `{name}` that break contract §1 (first: {})",
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

/// A failed delivery: the topic and event time of the earliest event that did not make it.
struct Failure {
    topic: Topic,
    ts: Ts,
    cause: KafkaError,
}

/// Where events go: Kafka, or nowhere with `--dry-run`; counts what was confirmed.
struct Output<'a> {
    producer: Option<FutureProducer>,
    names: [String; 2],
    bucket: Option<TokenBucket>,
    d: Deliveries,
    /// The event time of the latest event handed to the producer.
    latest: Option<Ts>,
    progress: &'a ProgressBar,
    progress_start: Ts,
}

impl<'a> Output<'a> {
    fn new(
        args: &ReplayArgs,
        topics: &playsource_kafka::Topics,
        progress_start: Ts,
        progress: &'a ProgressBar,
    ) -> anyhow::Result<Output<'a>> {
        let producer = if args.dry_run {
            None
        } else {
            Some(playsource_kafka::producer(&args.kafka.brokers)?)
        };
        Ok(Output {
            producer,
            names: [topics.impressions.clone(), topics.plays.clone()],
            bucket: args.rate.filter(|_| !args.dry_run).map(TokenBucket::new),
            d: Deliveries::default(),
            latest: None,
            progress,
            progress_start,
        })
    }

    /// Sends a chunk; `Err(())` once a delivery failed (recorded in `self.d.failure`).
    async fn send_all(&mut self, events: Vec<ReplayEvent>) -> Result<(), ()> {
        let last_ts = events.last().map(|e| e.ts);
        for e in events {
            self.send(e).await?;
        }
        if let Some(ts) = last_ts {
            let pos = ((ts.0 - self.progress_start.0) / 1000).max(0) as u64;
            self.progress
                .set_position(pos.max(self.progress.position()));
            self.progress
                .set_message(format!("{ts}, {} events", self.d.handed_over()));
        }
        Ok(())
    }

    async fn send(&mut self, e: ReplayEvent) -> Result<(), ()> {
        if let Some(b) = self.bucket.as_mut() {
            let wait = b.take();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        self.latest = Some(e.ts);
        let i = topic_index(e.topic);
        let Some(producer) = &self.producer else {
            self.d.sent[i] += 1;
            return Ok(());
        };
        let key = e.key();
        let mut record = FutureRecord::to(&self.names[i])
            .key(key.as_str())
            .payload(e.json.as_str());
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    self.d.in_flight.push_back((fut, e.topic, e.ts));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if !self.d.confirm_oldest().await? {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((cause, _)) => {
                    self.d.fail(e.topic, e.ts, cause);
                    return Err(());
                }
            }
        }
        while self.d.in_flight.len() > IN_FLIGHT {
            self.d.confirm_oldest().await?;
        }
        Ok(())
    }
}

/// Deliveries in flight and their outcome.
#[derive(Default)]
struct Deliveries {
    in_flight: VecDeque<(DeliveryFuture, Topic, Ts)>,
    /// Confirmed deliveries (or, with `--dry-run`, events counted) per topic.
    sent: [u64; 2],
    /// The earliest failed delivery, if any: nothing more is sent after one.
    failure: Option<Failure>,
}

impl Deliveries {
    /// Events confirmed or still in flight.
    fn handed_over(&self) -> u64 {
        self.sent[0] + self.sent[1] + self.in_flight.len() as u64
    }

    /// Awaits the oldest delivery; `Ok(false)` when none is in flight, `Err(())` when it failed.
    async fn confirm_oldest(&mut self) -> Result<bool, ()> {
        let Some((fut, topic, ts)) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        match fut.await {
            Ok(Ok(_)) => {
                self.sent[topic_index(topic)] += 1;
                Ok(true)
            }
            Ok(Err((cause, _))) => {
                self.fail(topic, ts, cause);
                Err(())
            }
            Err(_) => {
                self.fail(topic, ts, KafkaError::Canceled);
                Err(())
            }
        }
    }

    /// Awaits every delivery in flight (failures are recorded).
    async fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            let _ = self.confirm_oldest().await;
        }
    }

    fn fail(&mut self, topic: Topic, ts: Ts, cause: KafkaError) {
        if self.failure.as_ref().is_none_or(|f| ts < f.ts) {
            self.failure = Some(Failure { topic, ts, cause });
        }
    }
}
