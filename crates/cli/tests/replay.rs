//! `playsource replay` through the binary, against the real broker and Postgres: history written
//! straight to the archive by `gen --to archive` is replayed into fresh topics, read back (exact
//! counts, keys, event-time order per partition, the half-open range), and the stream's realtime
//! view over the replay equals the batch view over the same archive. Bad input gets one sentence
//! and a non-zero exit code.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should fail the test loudly

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use playsource_archive::{write_parquet_atomic, ArchiveLayout, ImpressionsBuilder, PlaysBuilder};
use playsource_domain::{
    decode_impression, decode_play, Day, Impression, MemberId, Play, Ts, VideoId,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;

mod scratch;

use scratch::Scratch;

struct World(Scratch);

impl World {
    fn new() -> World {
        World(Scratch::new("replay"))
    }

    fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(self.0.ok(args).stdout).unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.0.run(args)
    }

    fn imp_topic(&self) -> String {
        format!("t-imp-{}", self.0.id)
    }

    fn archive(&self) -> &Path {
        self.0.archive.path()
    }
}

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLAYSOURCE_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.services/venv/bin/python")
}

/// Rows and distinct event ids of `<archive>/<topic>` with `ts` in `[from, to)`, counted by
/// DuckDB (not by playsource's reader).
fn duckdb_counts(archive: &Path, topic: &str, from: Ts, to: Ts) -> (u64, u64) {
    let glob = archive.join(topic).join("date=*/hour=*/*.parquet");
    let script = "import duckdb, sys\n\
        r = duckdb.sql(f\"select count(*), count(distinct event_id) from read_parquet('{sys.argv[1]}', hive_partitioning=false) where epoch_ms(ts) >= {sys.argv[2]} and epoch_ms(ts) < {sys.argv[3]}\").fetchall()[0]\n\
        print(r[0], r[1])";
    let o = std::process::Command::new(python())
        .args(["-c", script, glob.to_str().unwrap()])
        .args([from.0.to_string(), to.0.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let mut it = out.split_whitespace().map(|n| n.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// One message read back: partition, key, decoded (event_id, ts, member_id).
type Msg = (i32, String, (String, Ts, u64));

/// Reads `topic` (partitions 0..n) from the beginning until `expected` messages arrived, then
/// two more seconds to catch any extra; decodes each with the stream's decoder.
fn read_back(topic: &str, plays: bool, partitions: i32, expected: usize) -> Vec<Msg> {
    let consumer: BaseConsumer = playsource_kafka::client_config(&brokers())
        .set("group.id", format!("replay-test-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let mut deadline = Instant::now() + Duration::from_secs(90);
    let mut extra = false;
    while Instant::now() < deadline {
        if out.len() >= expected && !extra {
            extra = true;
            deadline = Instant::now() + Duration::from_secs(2);
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let payload = m.payload().unwrap();
        let event = if plays {
            let p = decode_play(payload).unwrap();
            (p.event_id.into_owned(), p.ts, p.member_id.0)
        } else {
            let i = decode_impression(payload).unwrap();
            (i.event_id.into_owned(), i.ts, i.member_id.0)
        };
        out.push((m.partition(), key, event));
    }
    out
}

/// Keys are member ids, every ts is in `[from, to)`, and ts never decreases within a partition.
fn check_keys_range_and_order(msgs: &[Msg], from: Ts, to: Ts) {
    let mut last: HashMap<i32, Ts> = HashMap::new();
    for (partition, key, (id, ts, member)) in msgs {
        assert_eq!(key, &member.to_string(), "{id}: the key is the member id");
        assert!(from <= *ts && *ts < to, "{id} at {ts} is outside the range");
        let prev = last.insert(*partition, *ts).unwrap_or(*ts);
        assert!(
            prev <= *ts,
            "partition {partition}: {id} at {ts} after {prev}"
        );
    }
}

async fn daily(pool: &PgPool, table: &str, day: &str) -> Vec<(i64, String, i64)> {
    sqlx::query_as(&format!(
        "SELECT video_id::bigint, sod_row, plays::bigint FROM {table} WHERE day = $1::date AND plays <> 0 ORDER BY 1, 2"
    ))
    .bind(day)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_history_reads_back_in_order_and_the_stream_over_it_equals_the_batch() {
    let w = World::new();
    let today = chrono::Utc::now().date_naive();
    let days = [3u64, 2, 1].map(|n| {
        (today - chrono::Days::new(n))
            .format("%Y-%m-%d")
            .to_string()
    });
    let catalog = w.archive().join("catalog.csv");
    let catalog = catalog.to_str().unwrap();
    w.ok(&["init", "--partitions", "3"]);
    // Two days of history, straight to the archive (redeliveries included, as a stream archives
    // them; nothing too late).
    let gen = w.ok(&[
        "gen",
        "--to",
        "archive",
        "--seed",
        "7",
        "--members",
        "300",
        "--start",
        &days[0],
        "--days",
        "2",
        "--catalog-out",
        catalog,
    ]);
    assert!(gen.contains("wrote"), "{gen}");
    w.ok(&["catalog", "load", catalog]);

    let (from, to) = (
        Day::parse(&days[0]).unwrap().start(),
        Day::parse(&days[2]).unwrap().start(),
    );
    let (imp_topic, plays_topic) = (w.imp_topic(), w.0.plays_topic());
    let (n_imp, distinct_imp) = duckdb_counts(w.archive(), &imp_topic, from, to);
    let (n_plays, distinct_plays) = duckdb_counts(w.archive(), &plays_topic, from, to);
    assert!(
        n_imp > 1_000 && n_plays > 50,
        "{n_imp} impressions, {n_plays} plays"
    );
    assert!(distinct_imp < n_imp, "the archive holds redeliveries");

    let out = w.ok(&["replay", "--from", &days[0], "--to", &days[2]]);
    let counts = format!(
        "replayed {} events ({n_imp} to `{imp_topic}`, {n_plays} to `{plays_topic}`) of [{from}, {to})",
        n_imp + n_plays
    );
    assert!(out.contains(&counts), "{out}\nexpected: {counts}");

    let (t_imp, t_plays) = (imp_topic.clone(), plays_topic.clone());
    let (imps, plays) = tokio::task::spawn_blocking(move || {
        (
            read_back(&t_imp, false, 3, n_imp as usize),
            read_back(&t_plays, true, 3, n_plays as usize),
        )
    })
    .await
    .unwrap();
    assert_eq!(imps.len() as u64, n_imp, "every impression in range, once");
    assert_eq!(plays.len() as u64, n_plays, "every play in range, once");
    check_keys_range_and_order(&imps, from, to);
    check_keys_range_and_order(&plays, from, to);
    let distinct = |m: &[Msg]| {
        m.iter()
            .map(|(_, _, (id, _, _))| id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
    };
    assert_eq!(distinct(&imps), distinct_imp);
    assert_eq!(distinct(&plays), distinct_plays);
    // Co-partitioned as gen produces: a member's impressions and plays share a partition.
    let mut partition_of: HashMap<&str, i32> = HashMap::new();
    for (p, key, _) in imps.iter().chain(&plays) {
        assert_eq!(*partition_of.entry(key).or_insert(*p), *p, "member {key}");
    }
    assert!(
        partition_of
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );

    // The stream over the replay (archiving to a folder of its own) and the batch over the
    // original archive agree exactly.
    let stream_archive = tempfile::tempdir().unwrap();
    w.ok(&[
        "stream",
        "--group-id",
        &format!("g-{}", w.0.id),
        "--exit-when-idle",
        "3",
        "--metrics-listen",
        "127.0.0.1:0",
        "--archive",
        stream_archive.path().to_str().unwrap(),
    ]);
    w.ok(&[
        "batch",
        "--from",
        &days[0],
        "--to",
        &days[1],
        "--no-progress",
    ]);
    let pool = PgPool::connect(&w.0.url).await.unwrap();
    let too_late: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM rt_too_late")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        too_late, 0,
        "a replay in event-time order has nothing too late"
    );
    for day in &days[..2] {
        let (rt, batch) = (
            scratch::hourly_rows(&pool, "rt_hourly", day).await,
            scratch::hourly_rows(&pool, "batch_hourly", day).await,
        );
        assert!(!batch.is_empty(), "{day} has plays");
        assert_eq!(
            rt, batch,
            "{day}: realtime (replayed) and batch views differ"
        );
        assert_eq!(
            daily(&pool, "rt_video_daily", day).await,
            daily(&pool, "batch_video_daily", day).await,
            "{day}: per-video views differ"
        );
    }
    pool.close().await;
    w.0.drop_db().await;
}

const MIN: i64 = 60_000;

fn imp(id: &str, ts: Ts, member: u64) -> Impression<'static> {
    Impression {
        event_id: Cow::Owned(id.to_owned()),
        ts,
        member_id: MemberId(member),
        video_id: VideoId(9),
        page: Cow::Borrowed("home"),
        row_type: Cow::Borrowed("top_picks"),
        row_index: 1,
        rank: 3,
        country: Cow::Borrowed("DE"),
        device: Cow::Borrowed("web"),
    }
}

fn play(id: &str, ts: Ts, member: u64) -> Play<'static> {
    Play {
        event_id: Cow::Owned(id.to_owned()),
        ts,
        member_id: MemberId(member),
        video_id: VideoId(9),
        country: Cow::Borrowed("DE"),
        device: Cow::Borrowed("web"),
        session_id: None,
    }
}

/// Writes each event to `<topic>/date=/hour=<its hour>/<stem>.parquet` (one file per event).
fn write_events(root: &Path, topic: &str, imps: &[Impression<'static>], plays: &[Play<'static>]) {
    let layout = ArchiveLayout::new(root);
    let path = |ts: Ts, stem: &str| {
        let (day, hour) = playsource_archive::layout::partition_of(ts);
        layout.file_path(topic, day, hour, stem)
    };
    for e in imps {
        let mut b = ImpressionsBuilder::with_capacity(1);
        b.push(e, None);
        write_parquet_atomic(&path(e.ts, &e.event_id), &[b.finish()]).unwrap();
    }
    for e in plays {
        let mut b = PlaysBuilder::with_capacity(1);
        b.push(e, None);
        write_parquet_atomic(&path(e.ts, &e.event_id), &[b.finish()]).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_is_half_open_and_topic_and_dry_run_are_honoured() {
    let w = World::new();
    w.ok(&["init", "--partitions", "2"]);
    let t1 = Ts::parse_rfc3339("2026-11-21T06:30:00Z").unwrap();
    let t2 = Ts::parse_rfc3339("2026-11-21T08:15:00Z").unwrap();
    let at = |base: Ts, ms: i64| Ts(base.0 + ms);
    let (imp_topic, plays_topic) = (w.imp_topic(), w.0.plays_topic());
    write_events(
        w.archive(),
        &imp_topic,
        &[
            imp("i-before", at(t1, -1), 1),
            imp("i-t1", t1, 2),
            imp("i-0700", at(t1, 30 * MIN), 1),
            imp("i-last", at(t2, -1), 2),
            imp("i-t2", t2, 1),
            imp("i-0900", at(t2, 45 * MIN), 2),
        ],
        &[],
    );
    write_events(
        w.archive(),
        &plays_topic,
        &[],
        &[
            play("p-t1", t1, 1),
            play("p-0730", at(t1, 60 * MIN), 2),
            play("p-last", at(t2, -1), 1),
            play("p-t2", t2, 2),
        ],
    );
    // Never read: a staging folder inside the range, and a junk file in an hour outside it.
    let staging = w
        .archive()
        .join(&imp_topic)
        .join("date=2026-11-21/hour=07/_staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::copy(
        ArchiveLayout::new(w.archive()).file_path(
            &imp_topic,
            Day::parse("2026-11-21").unwrap(),
            7,
            "i-0700",
        ),
        staging.join("copy.parquet"),
    )
    .unwrap();
    let junk = w
        .archive()
        .join(&plays_topic)
        .join("date=2026-11-21/hour=05");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("junk.parquet"), b"not parquet").unwrap();

    let (from, to) = ("2026-11-21T07:30:00+01:00", "2026-11-21T08:15:00Z");
    let dry = w.ok(&[
        "replay",
        "--from",
        from,
        "--to",
        to,
        "--dry-run",
        "--topic",
        "plays",
    ]);
    assert!(
        dry.contains(&format!(
            "dry run: would replay 3 events (3 to `{plays_topic}`)"
        )),
        "{dry}"
    );
    let out = w.ok(&["replay", "--from", from, "--to", to, "--rate", "50"]);
    assert!(
        out.contains(&format!(
            "replayed 6 events (3 to `{imp_topic}`, 3 to `{plays_topic}`)"
        )),
        "{out}"
    );
    let (ti, tp) = (imp_topic.clone(), plays_topic.clone());
    let (imps, plays) = tokio::task::spawn_blocking(move || {
        (read_back(&ti, false, 2, 3), read_back(&tp, true, 2, 3))
    })
    .await
    .unwrap();
    let ids = |m: &[Msg]| {
        let mut by_ts: BTreeMap<Ts, Vec<String>> = BTreeMap::new();
        for (_, _, (id, ts, _)) in m {
            by_ts.entry(*ts).or_default().push(id.clone());
        }
        by_ts.into_values().flatten().collect::<Vec<_>>()
    };
    assert_eq!(ids(&imps), ["i-t1", "i-0700", "i-last"]);
    assert_eq!(ids(&plays), ["p-t1", "p-0730", "p-last"]);
    check_keys_range_and_order(&imps, t1, t2);
    check_keys_range_and_order(&plays, t1, t2);

    // Plays only: the impressions topic gets nothing more.
    let out = w.ok(&[
        "replay",
        "--from",
        "2026-11-21T07:00:00Z",
        "--to",
        "2026-11-21T08:00:00Z",
        "--topic",
        "plays",
    ]);
    assert!(
        out.contains(&format!("replayed 1 events (1 to `{plays_topic}`)")),
        "{out}"
    );
    let (ti, tp) = (imp_topic.clone(), plays_topic.clone());
    let (imps, plays) = tokio::task::spawn_blocking(move || {
        (read_back(&ti, false, 2, 3), read_back(&tp, true, 2, 4))
    })
    .await
    .unwrap();
    assert_eq!(imps.len(), 3);
    assert_eq!(plays.len(), 4);
    w.0.drop_db().await;
}

/// Exit code and the stderr lines of `playsource replay ARGS` in `w`.
fn replay_err(w: &World, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let o = w.run(&[&["replay"], args].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    (o.status.code(), lines)
}

/// Exit code `code` and, besides `warning:` lines, exactly one line: `error: ...needle...`.
fn assert_one_sentence(w: &World, args: &[&str], code: i32, needle: &str) {
    let (got, lines) = replay_err(w, args);
    assert_eq!(got, Some(code), "{args:?}: {lines:?}");
    let lines: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line, got {lines:?}");
    assert!(lines[0].starts_with("error: "), "{lines:?}");
    assert!(lines[0].contains(needle), "{args:?}: {lines:?}");
}

#[test]
fn bad_input_gets_one_sentence_and_a_non_zero_exit() {
    let w = World::new();
    let r = ["--from", "2026-11-21", "--to", "2026-11-22"];
    assert_one_sentence(
        &w,
        &["--from", "2026-11-22", "--to", "2026-11-21T23:00:00+00:00"],
        1,
        "is not before --to 2026-11-21T23:00:00.000Z",
    );
    assert_one_sentence(
        &w,
        &["--from", "2026-11-21", "--to", "2026-11-21"],
        1,
        "is not before",
    );
    assert_one_sentence(
        &w,
        &["--from", "last week", "--to", "2026-11-21"],
        1,
        "--from \"last week\" is not a time",
    );
    assert_one_sentence(
        &w,
        &["--from", "2026-11-21", "--to", "2026-11-21T10:00:00"],
        1,
        "--to \"2026-11-21T10:00:00\" is not a time",
    );
    assert_one_sentence(
        &w,
        &[&r[..], &["--rate", "0"]].concat(),
        1,
        "--rate must be a positive number",
    );
    assert_one_sentence(
        &w,
        &[&r[..], &["--rate", "-5"]].concat(),
        1,
        "--rate must be a positive number",
    );
    assert_one_sentence(
        &w,
        &[&r[..], &["--archive", "/nonexistent/playsource-archive"]].concat(),
        1,
        "the archive directory /nonexistent/playsource-archive does not exist",
    );
    // clap's own message, then a usage hint.
    let (code, lines) = replay_err(&w, &[&r[..], &["--topic", "views"]].concat());
    assert_eq!(code, Some(2));
    assert!(
        lines[0].contains("invalid value 'views' for '--topic"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("impressions, plays")),
        "{lines:?}"
    );
    // The topics of this world were never created.
    assert_one_sentence(&w, &r, 1, "does not exist on");
    assert_one_sentence(
        &w,
        &[&r[..], &["--brokers", "127.0.0.1:1"]].concat(),
        1,
        "cannot reach Kafka at 127.0.0.1:1",
    );

    // An empty range is not an error: a warning, a zero summary, exit 0.
    let o = w.run(&[&["replay"], &r[..], &["--dry-run"]].concat());
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: nothing to replay"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("would replay 0 events"));

    // An unreadable file in range stops the replay, naming the file.
    let dir = w
        .archive()
        .join(w.0.plays_topic())
        .join("date=2026-11-21/hour=03");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.parquet"), b"not parquet").unwrap();
    assert_one_sentence(&w, &[&r[..], &["--dry-run"]].concat(), 1, "broken.parquet");
}
