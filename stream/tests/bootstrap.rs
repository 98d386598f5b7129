//! Kafka retention shorter than the attribution lookback (issue #17 item 3): a unit taken over
//! without a usable checkpoint rebuilds what retention dropped from the archive, so plays read
//! after the restart get the Source of Discovery of impressions Kafka no longer holds.
//!
//! Fed against the test's own tansu on SQLite storage: tansu 0.6 drops the connection on
//! DeleteRecords and has no retention by time for a test to wait on, so retention is done as in
//! `retention.rs` (`common/retention_cut.rs`): the oldest rows of each partition are deleted from
//! tansu's SQLite file while it is stopped, and tansu then reports the smallest offset left as
//! the earliest. Offsets stay what they were, as with real retention.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/fault_check.rs"]
mod fault_check;
#[path = "common/fault_env.rs"]
mod fault_env;
#[path = "common/faults.rs"]
mod faults;
#[path = "common/retention_cut.rs"]
mod retention_cut;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use fault_env::{tansu_bin, Broker};
use faults::{produce_tracked, Logs};
use playsource_archive::store::test_support;
use playsource_archive::ArchiveStore;
use playsource_domain::attribution::reference;
use playsource_domain::{AttributionConfig, Catalog, Day, Ts};
use playsource_kafka::Topics;
use playsource_stream::metrics as m;
use playsource_stream::StreamConfig;
use retention_cut::{delete_below, watermarks};
use sqlx::PgPool;

/// A stream configuration for the test's own broker: fast flushes, exit when idle.
fn config_on(brokers: &str, t: &Topics, group: &str, archive: &ArchiveStore) -> StreamConfig {
    let mut cfg = StreamConfig::new(brokers, archive.clone());
    cfg.topics = t.clone();
    cfg.group_id = group.to_owned();
    cfg.flush_interval = Duration::from_millis(200);
    cfg.exit_when_idle = Some(Duration::from_secs(3));
    cfg
}

/// Produces `msgs` to `topic` on `brokers`: where each one landed.
async fn produce_at(brokers: &str, topic: &str, msgs: &Msgs) -> Vec<(i32, i64)> {
    let p = playsource_kafka::producer(brokers).unwrap();
    produce_tracked(&p, topic, msgs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// The process's metrics recorder (one per process; counters are told apart by topic).
fn recorder() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .unwrap()
    })
}

/// The counter `name` per `topic` label, from the rendered metrics.
fn counter(rendered: &str, name: &str, topic: &str) -> u64 {
    rendered
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{name}{{")) && l.contains(&format!("topic=\"{topic}\""))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// The first offset of each partition in `landed`, per partition (`None`: nothing landed there).
fn first_offsets(landed: &[(i32, i64)]) -> Vec<Option<i64>> {
    (0..PARTITIONS)
        .map(|p| {
            landed
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| *o)
                .min()
        })
        .collect()
}

/// What the scenario left for the assertions.
struct Outcome {
    metrics: String,
    topics: Topics,
    /// Every event produced.
    all: Workload,
    /// Events the archive held below the cut (all of the first two days), per topic.
    old: (u64, u64),
}

/// Two days of events read, archived and committed, then a third; Kafka then keeps only the
/// third day (and what follows), the checkpoints are gone, and a fourth day (plays whose Source of
/// Discovery lies in the first two days) is read by a restarted stream whose archive is `second`
/// (the first run's, or an empty one). With `foreign`, the first run's local archive folder, the
/// first two days there are rewritten as another tool's files first ([`rewrite_as_foreign`]).
async fn scenario(
    pool: &PgPool,
    name: &str,
    first: &ArchiveStore,
    second: &ArchiveStore,
    foreign: Option<&Path>,
) -> Outcome {
    let metrics = recorder();
    let bin = tansu_bin().expect(
        "no tansu binary: install tansu (cargo install tansu) or point PLAYSOURCE_TANSU at it",
    );
    let logs = Logs::new(name);
    let mut broker = Broker::start(bin, &logs).await;
    let brokers = broker.brokers();
    let t = topics(name);
    create_topics_on(&brokers, &t).await;
    let group = format!("g-{}", t.plays);

    // Recent days, so the bootstrap's walk back from the clock reaches them quickly.
    let now = Ts(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64);
    let start = now.day().plus(-5).start();
    let day = 86_400_000;
    let old = workload(61, 400, start, 44);
    let last = workload(62, 150, Ts(start.0 + 2 * day), 20);
    let later = workload(63, 300, Ts(start.0 + 3 * day), 20);
    load_catalog(pool, &old.catalog).await;
    produce_at(&brokers, &t.impressions, &imp_msgs(&old.impressions)).await;
    produce_at(&brokers, &t.plays, &play_msgs(&old.plays)).await;
    let last_imps = produce_at(&brokers, &t.impressions, &imp_msgs(&last.impressions)).await;
    let last_plays = produce_at(&brokers, &t.plays, &play_msgs(&last.plays)).await;
    let s = run_until_idle(config_on(&brokers, &t, &group, first), pool).await;
    assert!(s.consumed > 0, "the first run read the three days");
    if let Some(root) = foreign {
        let rows = rewrite_as_foreign(root, &t, [start.day(), start.day().plus(1)]);
        assert_eq!(
            rows,
            (old.impressions.len() as u64, old.plays.len() as u64),
            "the first two days' archive is the first two days' events"
        );
    }

    // "Retention": Kafka keeps each partition from the third day's first offset on.
    broker.stop().await;
    for (topic, last_landed) in [(&t.impressions, &last_imps), (&t.plays, &last_plays)] {
        for (p, first) in first_offsets(last_landed).into_iter().enumerate() {
            let p = p as i32;
            let cut = match first {
                Some(o) => o,
                None => playsource_stream::sink_postgres::committed_offset(pool, &group, topic, p)
                    .await
                    .unwrap()
                    .unwrap_or(0),
            };
            assert_eq!(
                delete_below(&broker.db(), topic, p, cut),
                cut,
                "{topic}/{p}"
            );
        }
    }
    broker.restart().await;
    for (p, first) in first_offsets(&last_plays).into_iter().enumerate() {
        if let Some(o) = first {
            assert_eq!(
                watermarks(&brokers, &t.plays, p as i32).0,
                o,
                "earliest of plays/{p}"
            );
        }
    }
    // No usable checkpoint: the unit must rebuild from the offsets Kafka still holds.
    let gone = sqlx::query("DELETE FROM stream_checkpoints WHERE group_id = $1")
        .bind(&group)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(gone > 0, "the first run wrote checkpoints");

    produce_at(&brokers, &t.impressions, &imp_msgs(&later.impressions)).await;
    produce_at(&brokers, &t.plays, &play_msgs(&later.plays)).await;
    // A new consumer group takes the view over (continuing from the first group's offsets): the
    // restarted private broker keeps the first group's state, where tansu 0.6 can strand a
    // rejoining member's assignment (RELIABILITY.md, finding 1), and it does not answer
    // DescribeGroups, so --replica-name cannot clear it.
    let mut cfg = config_on(&brokers, &t, &format!("{group}-2"), second);
    cfg.take_over = true;
    run_until_idle(cfg, pool).await;
    broker.stop().await;

    let all = Workload {
        impressions: [&old, &last, &later]
            .iter()
            .flat_map(|w| w.impressions.iter().cloned())
            .collect(),
        plays: [&old, &last, &later]
            .iter()
            .flat_map(|w| w.plays.iter().cloned())
            .collect(),
        catalog: old.catalog.clone(),
    };
    Outcome {
        metrics: metrics.render(),
        topics: t,
        all,
        old: (old.impressions.len() as u64, old.plays.len() as u64),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_unit_rebuilds_what_kafka_retention_dropped_from_the_archive(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let archive = ArchiveStore::local(dir.path());
    let o = scenario(&pool, "boot", &archive, &archive, None).await;
    assert_rebuilt(&pool, &o).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_unit_rebuilds_what_kafka_retention_dropped_from_an_s3_archive(pool: PgPool) {
    let Some((_, archive)) = test_support::fresh_archive("stream-bootstrap") else {
        return;
    };
    let o = scenario(&pool, "boots3", &archive, &archive, None).await;
    assert_rebuilt(&pool, &o).await;
}

/// The views equal the reference and every archived event below the cut was fed once.
async fn assert_rebuilt(pool: &PgPool, o: &Outcome) {
    let t = &o.topics;
    // The views equal the reference over every event, the fourth day's plays attributed with
    // the impressions of the first two days.
    assert_views_exact(pool, &o.all).await;
    assert_eq!(
        (
            counter(&o.metrics, m::BOOTSTRAP_EVENTS, &t.impressions),
            counter(&o.metrics, m::BOOTSTRAP_EVENTS, &t.plays)
        ),
        o.old,
        "every event of the first two days (redeliveries included: each has its own offset) was fed from the archive, once"
    );
    assert_eq!(counter(&o.metrics, m::BOOTSTRAP_MISSING, &t.impressions), 0);
    assert_eq!(counter(&o.metrics, m::BOOTSTRAP_MISSING, &t.plays), 0);
    assert_eq!(counter(&o.metrics, m::BOOTSTRAP_SKIPPED_FILES, &t.plays), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn without_the_archive_the_missing_state_is_counted_and_the_views_differ(pool: PgPool) {
    let (dir, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (archive, empty) = (
        ArchiveStore::local(dir.path()),
        ArchiveStore::local(empty.path()),
    );
    let o = scenario(&pool, "noboot", &archive, &empty, None).await;
    let t = &o.topics;
    assert_eq!(counter(&o.metrics, m::BOOTSTRAP_EVENTS, &t.impressions), 0);
    assert_eq!(
        counter(&o.metrics, m::BOOTSTRAP_MISSING, &t.impressions),
        PARTITIONS as u64,
        "every unit reports that the archive has none of what retention dropped"
    );
    assert_eq!(
        counter(&o.metrics, m::BOOTSTRAP_MISSING, &t.plays),
        PARTITIONS as u64
    );
    // The existing behaviour, made visible: the fourth day's plays lack the first two days'
    // impressions, so the views are not the reference's (the scenario is one the bootstrap
    // changes).
    let cfg = AttributionConfig::default();
    let catalog = Catalog::new(o.all.catalog.clone());
    let expected = reference::counts(&cfg, &o.all.impressions, &o.all.plays, &catalog);
    assert_ne!(
        rt_hourly(&pool).await,
        expected.hourly_rows(),
        "without the first two days' impressions some Source of Discovery differs"
    );
}

/// Rewrites the archive's hours of `days` (both input topics) as another tool would have written
/// them: per hour, every partition's rows in one shuffled `part-00000.parquet`; on the first day
/// without the `_partition`/`_offset` columns, on the second with them all null. The first
/// impressions hour also gets a row without `member_id` (that no partitioner can place). Returns
/// the rows rewritten per topic, that row aside.
fn rewrite_as_foreign(root: &Path, t: &Topics, days: [Day; 2]) -> (u64, u64) {
    const SCRIPT: &str = r#"
import glob, os, random, sys
import pyarrow as pa, pyarrow.parquet as pq
root, topics, days = sys.argv[1], sys.argv[2:4], sys.argv[4:6]
rng = random.Random(17)
counts = []
for topic in topics:
    n = 0
    for d, day in enumerate(days):
        hours = sorted(glob.glob(f"{root}/{topic}/date={day}/hour=*"))
        assert hours, f"no archive for {topic} on {day}"
        for h, path in enumerate(hours):
            hour = os.path.basename(path)
            files = glob.glob(f"{path}/*.parquet") + glob.glob(f"{root}/_pending/{topic}/date={day}/{hour}/*.parquet")
            t = pa.concat_tables([pq.read_table(f, partitioning=None) for f in files])
            t = t.replace_schema_metadata(None)
            t = t.cast(pa.schema([f.with_nullable(True) for f in t.schema]))
            for c in ("_partition", "_offset"):
                i = t.schema.get_field_index(c)
                if d == 0:
                    t = t.remove_column(i)
                else:
                    ty = t.schema.field(c).type
                    t = t.set_column(i, pa.field(c, ty), pa.nulls(len(t), ty))
            n += len(t)
            order = list(range(len(t)))
            rng.shuffle(order)
            t = t.take(order)
            if topic == topics[0] and d == 0 and h == 0:
                row = t.slice(0, 1).to_pylist()[0]
                row["member_id"], row["event_id"] = None, "no-member"
                t = pa.concat_tables([t, pa.Table.from_pylist([row], schema=t.schema)])
            pq.write_table(t, f"{path}/part-00000.parquet")
            for f in files:
                os.remove(f)
    counts.append(n)
print(*counts)
"#;
    let python = std::env::var("PLAYSOURCE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", SCRIPT])
        .arg(root)
        .args([&t.impressions, &t.plays])
        .args(days.map(|d| d.to_string()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set PLAYSOURCE_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "rewriting the archive as foreign files failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout);
    let mut n = out.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_unit_rebuilds_what_kafka_retention_dropped_from_another_tools_archive_files(
    pool: PgPool,
) {
    let dir = tempfile::tempdir().unwrap();
    let archive = ArchiveStore::local(dir.path());
    let o = scenario(&pool, "bootfor", &archive, &archive, Some(dir.path())).await;
    let t = &o.topics;
    // The fourth day's plays attributed with the first two days' impressions, read from files
    // without provenance: each unit took its members' rows by key.
    assert_views_exact(&pool, &o.all).await;
    let fed = |name| {
        (
            counter(&o.metrics, name, &t.impressions),
            counter(&o.metrics, name, &t.plays),
        )
    };
    assert_eq!(
        fed(m::BOOTSTRAP_FOREIGN_EVENTS),
        o.old,
        "every row of the first two days went to one unit (its member's partition) and was fed"
    );
    assert_eq!(fed(m::BOOTSTRAP_EVENTS), o.old, "and nothing else was fed");
    assert_eq!(fed(m::BOOTSTRAP_MISSING), (0, 0));
    assert_eq!(
        fed(m::BOOTSTRAP_SKIPPED_FILES),
        (PARTITIONS as u64, 0),
        "each unit skipped the row without member_id, counting its file once"
    );
}
