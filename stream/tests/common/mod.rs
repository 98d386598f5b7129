//! Shared test helpers: unique topics on the real broker, a seeded workload, producing, running
//! the stream, and reading the views back.
#![allow(dead_code, clippy::unwrap_used, clippy::type_complexity)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use playsource_domain::aggregate::{self, HourlyRow, VideoDayRow};
use playsource_domain::attribution::reference;
use playsource_domain::catalog::Kind;
use playsource_domain::{
    AttributionConfig, Catalog, Day, Impression, MemberId, Play, Ts, VideoId, VideoMeta,
};
use playsource_kafka::Topics;
use playsource_stream::{RunSummary, StreamConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const BROKERS: &str = "127.0.0.1:9092";
pub const PARTITIONS: i32 = 4;

/// Unique topic names for one test.
pub fn topics(test: &str) -> Topics {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let s = &id[..10];
    Topics {
        impressions: format!("imp-{test}-{s}"),
        plays: format!("plays-{test}-{s}"),
        enriched: format!("enr-{test}-{s}"),
        dlq: format!("dlq-{test}-{s}"),
    }
}

/// Creates the four topics with [`PARTITIONS`] partitions each.
pub async fn create_topics(t: &Topics) {
    create_topics_on(BROKERS, t).await;
}

/// Creates the four topics with [`PARTITIONS`] partitions on `brokers`.
pub async fn create_topics_on(brokers: &str, t: &Topics) {
    let admin: AdminClient<DefaultClientContext> =
        playsource_kafka::client_config(brokers).create().unwrap();
    let names = [&t.impressions, &t.plays, &t.enriched, &t.dlq];
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let res = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in res {
        r.unwrap();
    }
}

/// A seeded workload: impressions and plays in event-time order, with redeliveries.
pub struct Workload {
    pub impressions: Vec<Impression<'static>>,
    pub plays: Vec<Play<'static>>,
    pub catalog: Vec<VideoMeta>,
}

const ROWS: [&str; 6] = [
    "continue_watching",
    "trending_now",
    "top_picks",
    "my_list",
    "because_you_watched",
    "new_releases",
];
const DEVICES: [&str; 3] = ["tv", "mobile", "web"];
const COUNTRIES: [&str; 3] = ["US", "BR", "DE"];

/// `n_sessions` member sessions from `start`, over about `hours` hours.
pub fn workload(seed: u64, n_sessions: usize, start: Ts, hours: i64) -> Workload {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut imps = Vec::new();
    let mut plays = Vec::new();
    let span = hours * 3_600_000;
    for s in 0..n_sessions {
        let member = rng.gen_range(1..=60u64);
        let t0 = start.0 + rng.gen_range(0..span);
        let device = DEVICES[rng.gen_range(0..DEVICES.len())];
        let country = COUNTRIES[(member % 3) as usize];
        let shown = rng.gen_range(1..6);
        let mut t = t0;
        let mut shown_videos = Vec::new();
        for i in 0..shown {
            t += rng.gen_range(0..90_000);
            let video = rng.gen_range(1..=40u64);
            shown_videos.push(video);
            imps.push(Impression {
                event_id: Cow::Owned(format!("i-{seed}-{s}-{i}")),
                ts: Ts(t),
                member_id: MemberId(member),
                video_id: VideoId(video),
                page: Cow::Borrowed("home"),
                row_type: Cow::Borrowed(ROWS[rng.gen_range(0..ROWS.len())]),
                row_index: rng.gen_range(0..20),
                rank: rng.gen_range(0..40),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
            });
        }
        let n_plays = rng.gen_range(0..3);
        for j in 0..n_plays {
            t += rng.gen_range(1_000..1_200_000);
            // Mostly a shown title, sometimes one never shown (unattributed).
            let video = if rng.gen_bool(0.8) {
                shown_videos[rng.gen_range(0..shown_videos.len())]
            } else {
                rng.gen_range(1..=40u64)
            };
            plays.push(Play {
                event_id: Cow::Owned(format!("p-{seed}-{s}-{j}")),
                ts: Ts(t),
                member_id: MemberId(member),
                video_id: VideoId(video),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
                session_id: Some(Cow::Owned(format!("s{s}"))),
            });
        }
    }
    imps.sort_by_key(|i| (i.ts, i.event_id.clone()));
    plays.sort_by_key(|p| (p.ts, p.event_id.clone()));
    // Redeliveries: some events repeated right after their first copy.
    let mut imps2 = Vec::with_capacity(imps.len() + imps.len() / 20);
    for (n, i) in imps.into_iter().enumerate() {
        let again = n % 23 == 0;
        imps2.push(i.clone());
        if again {
            imps2.push(i);
        }
    }
    let mut plays2 = Vec::with_capacity(plays.len() + plays.len() / 10);
    for (n, p) in plays.into_iter().enumerate() {
        let again = n % 11 == 0;
        plays2.push(p.clone());
        if again {
            plays2.push(p);
        }
    }
    let launch = start.day().plus(-3);
    let catalog = (1..=30u64)
        .map(|v| VideoMeta {
            video_id: VideoId(v),
            title: format!("Title {v}"),
            genre: ["drama", "comedy", "documentary"][(v % 3) as usize].to_owned(),
            kind: if v % 2 == 0 { Kind::Movie } else { Kind::Show },
            launch_date: if v % 4 == 0 {
                launch
            } else {
                Day(launch.0 - 100)
            },
        })
        .collect();
    Workload {
        impressions: imps2,
        plays: plays2,
        catalog,
    }
}

/// Inserts the catalog rows.
pub async fn load_catalog(pool: &PgPool, videos: &[VideoMeta]) {
    // The first version: in effect from the beginning of time.
    playsource_store::catalog::upsert(pool, videos)
        .await
        .unwrap();
}

pub fn producer() -> FutureProducer {
    playsource_kafka::producer(BROKERS).unwrap()
}

/// Produces raw (key, value) messages to `topic` and waits for every delivery.
pub async fn produce_raw(p: &FutureProducer, topic: &str, msgs: &[(String, Vec<u8>)]) {
    let mut futs = Vec::with_capacity(msgs.len());
    for (k, v) in msgs {
        let rec = FutureRecord::to(topic)
            .key(k.as_str())
            .payload(v.as_slice());
        futs.push(p.send_result(rec).map_err(|(e, _)| e).unwrap());
    }
    for f in futs {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// Keyed message values.
pub type Msgs = Vec<(String, Vec<u8>)>;

pub fn imp_msgs(v: &[Impression<'_>]) -> Msgs {
    v.iter()
        .map(|i| (i.member_id.0.to_string(), i.to_json().into_bytes()))
        .collect()
}

pub fn play_msgs(v: &[Play<'_>]) -> Vec<(String, Vec<u8>)> {
    v.iter()
        .map(|p| (p.member_id.0.to_string(), p.to_json().into_bytes()))
        .collect()
}

/// A stream configuration for tests: fast flushes, exit when idle.
pub fn config(t: &Topics, group: &str, archive: &Path) -> StreamConfig {
    let mut cfg = StreamConfig::new(BROKERS, archive);
    cfg.topics = t.clone();
    cfg.group_id = group.to_owned();
    cfg.flush_interval = Duration::from_millis(200);
    cfg.exit_when_idle = Some(Duration::from_secs(3));
    cfg
}

/// Runs the stream until idle (at most two minutes).
pub async fn run_until_idle(cfg: StreamConfig, pool: &PgPool) -> RunSummary {
    run_until_idle_within(cfg, pool, Duration::from_secs(120)).await
}

/// Runs the stream until idle (at most `limit`).
pub async fn run_until_idle_within(
    cfg: StreamConfig,
    pool: &PgPool,
    limit: Duration,
) -> RunSummary {
    // PLAYSOURCE_TEST_LOG=playsource_stream=debug shows the stream's log on stderr.
    if let Ok(filter) = std::env::var("PLAYSOURCE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let token = CancellationToken::new();
    tokio::time::timeout(limit, playsource_stream::run(cfg, pool.clone(), token))
        .await
        .expect("the stream did not go idle in time")
        .unwrap()
}

/// The realtime hourly view.
pub async fn rt_hourly(pool: &PgPool) -> Vec<HourlyRow> {
    let rows: Vec<(chrono::DateTime<chrono::Utc>, String, String, String, String, String, bool, i64)> =
        sqlx::query_as(
            "SELECT hour, country, device, sop_row, sod_row, genre, new_launch, plays FROM rt_hourly WHERE plays <> 0",
        )
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out: Vec<HourlyRow> = rows
        .into_iter()
        .map(|r| HourlyRow {
            hour: Ts(r.0.timestamp_millis()),
            country: r.1,
            device: r.2,
            sop_row: r.3,
            sod_row: r.4,
            genre: r.5,
            new_launch: r.6,
            plays: r.7,
        })
        .collect();
    out.sort();
    out
}

/// The realtime per-video daily view.
pub async fn rt_video_daily(pool: &PgPool) -> Vec<VideoDayRow> {
    let rows: Vec<(chrono::NaiveDate, String, String, i64)> = sqlx::query_as(
        "SELECT day, video_id::text, sod_row, plays FROM rt_video_daily WHERE plays <> 0",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out: Vec<VideoDayRow> = rows
        .into_iter()
        .map(|r| VideoDayRow {
            day: Day::from_date(r.0),
            video_id: VideoId(r.1.parse().unwrap()),
            sod_row: r.2,
            plays: r.3,
        })
        .collect();
    out.sort();
    out
}

/// Asserts that the realtime views equal the reference's counts of `w`.
pub async fn assert_views_exact(pool: &PgPool, w: &Workload) {
    let cfg = AttributionConfig::default();
    let catalog = Catalog::new(w.catalog.clone());
    let expected = reference::counts(&cfg, &w.impressions, &w.plays, &catalog);
    assert!(
        expected.total() > 50,
        "the workload is too small to mean much"
    );
    let hourly = rt_hourly(pool).await;
    let want = expected.hourly_rows();
    if hourly != want {
        let extra: Vec<_> = hourly.iter().filter(|r| !want.contains(r)).collect();
        let missing: Vec<_> = want.iter().filter(|r| !hourly.contains(r)).collect();
        let got_total: i64 = hourly.iter().map(|r| r.plays).sum();
        panic!(
            "rt_hourly differs from the reference: total {got_total} vs {}\nonly in rt_hourly: {extra:#?}\nonly in the reference: {missing:#?}",
            expected.total()
        );
    }
    let zero: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM rt_hourly WHERE plays = 0) + (SELECT count(*) FROM rt_video_daily WHERE plays = 0)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(zero, 0, "retractions left empty rows in the views");
    let video = rt_video_daily(pool).await;
    assert_eq!(
        video,
        expected.video_rows(),
        "rt_video_daily differs from the reference"
    );
}

/// Parquet files under `dir` (recursively) and their total rows.
pub fn parquet_rows(dir: &Path) -> (Vec<PathBuf>, i64) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(p);
            }
        }
    }
    let mut rows = 0;
    for f in &files {
        let file = std::fs::File::open(f).unwrap();
        let r = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
        use parquet::file::reader::FileReader;
        rows += r.metadata().file_metadata().num_rows();
    }
    files.sort();
    (files, rows)
}

/// The data files of `topic` in the local archive at `archive`, as the archive crate lists them
/// for readers: the Hive layout's files plus the pending files not yet compacted (each committed
/// row once, published or not).
pub fn topic_files(archive: &Path, topic: &str) -> Vec<PathBuf> {
    use playsource_archive::layout::parse_date_segment;
    let mut days = Vec::new();
    for dir in [archive.join(topic), archive.join("_pending").join(topic)] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd {
            let name = e.unwrap().file_name();
            days.extend(name.to_str().and_then(parse_date_segment));
        }
    }
    let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
        return Vec::new();
    };
    let layout = playsource_archive::ArchiveLayout::new(archive);
    playsource_archive::read::list_files(&layout, topic, *first..=*last).unwrap()
}

/// The files of `topic` readers see (see [`topic_files`]) and their total rows.
pub fn topic_rows(archive: &Path, topic: &str) -> (Vec<PathBuf>, i64) {
    let files = topic_files(archive, topic);
    let mut rows = 0;
    for f in &files {
        let file = std::fs::File::open(f).unwrap();
        let r = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
        use parquet::file::reader::FileReader;
        rows += r.metadata().file_metadata().num_rows();
    }
    (files, rows)
}

/// The workload's catalog as a second version: every genre renamed `<genre>_v2`, every title
/// launched on 2026-11-20 (so the new-launch flag changes too).
pub fn catalog_v2(w: &Workload) -> Vec<VideoMeta> {
    w.catalog
        .iter()
        .map(|v| VideoMeta {
            genre: format!("{}_v2", v.genre),
            launch_date: Day::parse("2026-11-20").unwrap(),
            ..v.clone()
        })
        .collect()
}

/// The bulk reference of a workload whose catalog changes at `mid`: the plays before it
/// enriched with the workload's catalog, the plays from it on with `v2`. Asserts both halves
/// hold enough plays to tell the versions apart.
pub fn two_version_reference(w: &Workload, mid: Ts, v2: Vec<VideoMeta>) -> aggregate::Counts {
    let cfg = AttributionConfig::default();
    let half = |before: bool| -> Vec<Play<'_>> {
        w.plays
            .iter()
            .filter(|p| (p.ts < mid) == before)
            .cloned()
            .collect()
    };
    let mut expected = reference::counts(
        &cfg,
        &w.impressions,
        &half(true),
        &Catalog::new(w.catalog.clone()),
    );
    let after = reference::counts(&cfg, &w.impressions, &half(false), &Catalog::new(v2));
    assert!(expected.total() > 20 && after.total() > 20);
    expected.merge(&after);
    expected
}

/// The messages of `topic` (all partitions, from the beginning) until `want` were read, none
/// arrived for 4 s, or 30 s passed: (key, value).
pub fn read_topic(topic: &str, want: usize) -> Vec<(String, Vec<u8>)> {
    read_records(topic, want, Duration::from_secs(4))
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect()
}

/// One message read back: key, value and headers (values as lossy UTF-8).
pub struct Record {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: std::collections::HashMap<String, String>,
}

/// Every partition of `topic` from the beginning, until `want` messages were read, 30 s
/// passed, or nothing arrived for `idle`.
pub fn read_records(topic: &str, want: usize, idle: Duration) -> Vec<Record> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};
    let c: BaseConsumer = playsource_kafka::client_config(BROKERS)
        .set("group.id", format!("check-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for part in 0..PARTITIONS {
        tpl.add_partition_offset(topic, part, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = std::time::Instant::now();
    while got.len() < want && std::time::Instant::now() < deadline && last.elapsed() < idle {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            last = std::time::Instant::now();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|hd| {
                            let v = hd.value.unwrap_or_default();
                            (hd.key.to_owned(), String::from_utf8_lossy(v).into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.push(Record {
                key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                value: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    got
}

/// Every valid event archived exactly once, nothing left in staging.
pub fn archive_exact(archive: &std::path::Path, t: &Topics, w: &Workload) {
    let (_, imp_rows) = topic_rows(archive, &t.impressions);
    let (_, play_rows) = topic_rows(archive, &t.plays);
    assert_eq!(
        imp_rows as usize,
        w.impressions.len(),
        "impressions archived once each"
    );
    assert_eq!(
        play_rows as usize,
        w.plays.len(),
        "plays archived once each"
    );
    let (staged, _) = parquet_rows(&archive.join("_staging"));
    assert!(staged.is_empty(), "left in staging: {staged:?}");
}

/// How many times each event id appears in the archive's `topic` (plays or impressions) over
/// `days`, read through the archive crate's listing (published and pending files); no row may
/// be invalid.
pub fn archived_ids(
    store: &playsource_archive::ArchiveStore,
    topic: &str,
    plays: bool,
    days: std::ops::RangeInclusive<Day>,
) -> std::collections::BTreeMap<String, usize> {
    use playsource_archive::read::{ImpressionReader, PlayReader, ReadStats};
    let mut ids = std::collections::BTreeMap::new();
    let mut stats = ReadStats::default();
    for rel in store.list_data_files(topic, days).unwrap() {
        if plays {
            for b in PlayReader::open_in(store, &rel).unwrap() {
                b.unwrap().for_each(None, &mut stats, |_, e| {
                    *ids.entry(e.event_id.to_string()).or_default() += 1;
                });
            }
        } else {
            for b in ImpressionReader::open_in(store, &rel).unwrap() {
                b.unwrap().for_each(None, &mut stats, |_, e| {
                    *ids.entry(e.event_id.to_string()).or_default() += 1;
                });
            }
        }
    }
    assert_eq!(stats.invalid, 0);
    ids
}

/// How many times each id appears.
pub fn id_counts<'a>(
    ids: impl Iterator<Item = &'a str>,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for id in ids {
        *out.entry(id.to_owned()).or_default() += 1;
    }
    out
}
