//! Fault-injection checks (`stream/tests/faults.rs`): whether the stream caught up, what the
//! archive holds, and what was lost or doubled.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use playsource_domain::attribution::reference;
use playsource_domain::{AttributionConfig, Catalog};
use playsource_kafka::Topics;
use sqlx::PgPool;

use crate::common::{rt_hourly, Workload};
use crate::faults::{long, Produced};

// -------------------------------------------------------------------------------- caught up

/// Whether the group committed every produced message and moved every committed staged file
/// into the archive.
pub async fn caught_up(
    pool: &PgPool,
    group: &str,
    topics: &Topics,
    produced: &Produced,
) -> Result<bool, String> {
    let names = [&topics.impressions, &topics.plays];
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    for ((k, p), end) in produced.ends() {
        let at = rows
            .iter()
            .find(|(t, q, _)| t == names[k] && *q == p)
            .map_or(0, |r| r.2);
        if at < end {
            return Ok(false);
        }
    }
    let staged: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stream_archive_staged WHERE group_id = $1")
            .bind(group)
            .fetch_one(pool)
            .await
            .map_err(|e| e.to_string())?;
    Ok(staged == 0)
}

// --------------------------------------------------------------------------------- checking

/// (partition, offset) → rows, of the Parquet files under `dir` (recursively) or of `files`.
pub fn archived(dir: Option<&Path>, files: &[PathBuf]) -> BTreeMap<(i32, i64), usize> {
    use parquet::file::reader::FileReader;
    use parquet::record::Field;
    let mut all: Vec<PathBuf> = files.to_vec();
    if let Some(dir) = dir {
        all.extend(crate::common::parquet_rows(dir).0);
    }
    let mut out = BTreeMap::new();
    for f in all {
        let r = parquet::file::serialized_reader::SerializedFileReader::new(
            std::fs::File::open(&f).unwrap(),
        )
        .unwrap();
        for row in r.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            let (mut p, mut o) = (None, None);
            for (name, field) in row.get_column_iter() {
                match (name.as_str(), field) {
                    ("_partition", Field::Int(v)) => p = Some(*v),
                    ("_offset", Field::Long(v)) => o = Some(*v),
                    _ => {}
                }
            }
            let key = (
                p.expect("a row without _partition"),
                o.expect("a row without _offset"),
            );
            *out.entry(key).or_insert(0) += 1;
        }
    }
    out
}

/// What a scenario lost or doubled.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Messages the broker acknowledged (both input topics).
    pub events: usize,
    /// Messages not in the archive.
    pub lost_archive: usize,
    /// Extra archive copies of messages.
    pub doubled_archive: usize,
    /// Archive rows of offsets the producer was not acknowledged (a failed delivery that the
    /// broker wrote after all, then sent again: at most `Produced::resent`).
    pub unexpected_archive: usize,
    /// Plays missing from `rt_hourly` rows, against the reference over the workload.
    pub lost_view: i64,
    /// Plays too many in `rt_hourly` rows.
    pub doubled_view: i64,
    /// `rt_video_daily` rows that differ from the reference.
    pub video_rows_off: usize,
    /// Messages the producer sent again after a failed delivery.
    pub resent: usize,
    /// Plays the reference attributes (the test means little if small).
    pub expected_plays: i64,
    /// Parquet files left in `_staging` (uncommitted leftovers; readers skip `_` folders).
    pub staging_leftovers: usize,
}

impl Outcome {
    pub fn lost(&self) -> i64 {
        self.lost_archive as i64 + self.lost_view
    }

    pub fn doubled(&self) -> i64 {
        self.doubled_archive as i64 + self.doubled_view
    }
}

/// Compares the archive with the acknowledged offsets and the realtime views with the
/// reference over the workload (each event acknowledged once; a resent one is a redelivery).
///
/// The topics are not read back: tansu's fetch skips messages when asked for an offset inside a
/// record batch, so a read-back would report losses that are the reader's.
pub async fn outcome(
    pool: &PgPool,
    w: &Workload,
    archive: &Path,
    topics: &Topics,
    produced: &Produced,
) -> Outcome {
    let mut o = Outcome {
        events: produced.events(),
        resent: produced.resent,
        ..Outcome::default()
    };
    for (k, topic) in [&topics.impressions, &topics.plays].into_iter().enumerate() {
        let mut rows = archived(None, &crate::common::topic_files(archive, topic));
        for at in &produced.at[k] {
            match rows.remove(at) {
                None => o.lost_archive += 1,
                Some(n) => o.doubled_archive += n - 1,
            }
        }
        o.unexpected_archive += rows.values().sum::<usize>();
    }
    o.staging_leftovers = crate::common::parquet_rows(&archive.join("_staging"))
        .0
        .len();
    let catalog = Catalog::new(w.catalog.clone());
    let expected = reference::counts(
        &AttributionConfig::default(),
        &w.impressions,
        &w.plays,
        &catalog,
    );
    o.expected_plays = expected.total();
    type Key = (i64, String, String, String, String, String, bool);
    let mut diff: BTreeMap<Key, i64> = BTreeMap::new();
    for r in expected.hourly_rows() {
        let key = (
            r.hour.0,
            r.country,
            r.device,
            r.sop_row,
            r.sod_row,
            r.genre,
            r.new_launch,
        );
        *diff.entry(key).or_insert(0) += r.plays;
    }
    for r in rt_hourly(pool).await {
        let key = (
            r.hour.0,
            r.country,
            r.device,
            r.sop_row,
            r.sod_row,
            r.genre,
            r.new_launch,
        );
        *diff.entry(key).or_insert(0) -= r.plays;
    }
    for d in diff.values() {
        if *d > 0 {
            o.lost_view += d;
        } else {
            o.doubled_view -= d;
        }
    }
    let want = expected.video_rows();
    let got = crate::common::rt_video_daily(pool).await;
    o.video_rows_off = want.iter().filter(|r| !got.contains(r)).count()
        + got.iter().filter(|r| !want.contains(r)).count();
    o
}

/// Prints the scenario's result line (`FAULT-RESULT key=value ... notes=free text`) and appends
/// it to the file named by `PLAYSOURCE_FAULTS_RESULTS`, if set (`scripts/faults.sh` builds its
/// table from it).
pub fn report(scenario: &str, runs: usize, o: &Outcome, secs: u64, notes: &str) {
    let line = format!(
        "FAULT-RESULT scenario={scenario} variant={} runs={runs} events={} lost={} doubled={} \
         resent={} lost_archive={} doubled_archive={} unexpected_archive={} lost_view={} \
         doubled_view={} video_rows_off={} staging_leftovers={} seconds={secs} notes={}",
        if long() { "long" } else { "short" },
        o.events,
        o.lost(),
        o.doubled(),
        o.resent,
        o.lost_archive,
        o.doubled_archive,
        o.unexpected_archive,
        o.lost_view,
        o.doubled_view,
        o.video_rows_off,
        o.staging_leftovers,
        notes.replace('\n', " "),
    );
    println!("{line}");
    if let Some(path) = std::env::var_os("PLAYSOURCE_FAULTS_RESULTS") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

/// Reports, then asserts that nothing was lost or doubled and both views are exact.
pub async fn report_and_assert(
    pool: &PgPool,
    scenario: &str,
    runs: usize,
    o: &Outcome,
    started: Instant,
    notes: &str,
) {
    report(scenario, runs, o, started.elapsed().as_secs(), notes);
    assert!(
        o.expected_plays > 50,
        "the workload is too small to mean much: {o:?}"
    );
    assert_eq!(
        (o.lost_archive, o.doubled_archive),
        (0, 0),
        "archive: messages lost, doubled: {o:?}"
    );
    assert!(
        o.unexpected_archive <= o.resent,
        "archive rows of offsets never acknowledged (more than the resent messages): {o:?}"
    );
    assert_eq!(
        (o.lost_view, o.doubled_view, o.video_rows_off),
        (0, 0, 0),
        "realtime views: plays lost, plays doubled, video rows off: {o:?}"
    );
    let zero: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM rt_hourly WHERE plays = 0) + (SELECT count(*) FROM rt_video_daily WHERE plays = 0)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(zero, 0, "retractions left empty rows in the views");
}

/// Produced messages below the committed offsets that are neither in the archive nor in a
/// staged file listed as committed: what a flush committed without archiving (must be none), as
/// (topic, partition, offset, committed next offset).
pub async fn committed_not_archived(
    pool: &sqlx::PgPool,
    group: &str,
    topics: &Topics,
    archive: &std::path::Path,
    produced: &Produced,
) -> Vec<(String, i32, i64, i64)> {
    let names = [&topics.impressions, &topics.plays];
    let offsets: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM stream_offsets WHERE group_id = $1",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .unwrap();
    let staged: Vec<String> =
        sqlx::query_scalar("SELECT staged_path FROM stream_archive_staged WHERE group_id = $1")
            .bind(group)
            .fetch_all(pool)
            .await
            .unwrap();
    let mut missing = Vec::new();
    for (k, name) in names.into_iter().enumerate() {
        let listed: Vec<PathBuf> = staged
            .iter()
            .filter(|s| {
                std::path::Path::new(s)
                    .components()
                    .any(|c| c.as_os_str() == name.as_str())
            })
            .map(|s| archive.join(s))
            // A listed file already moved into the archive (a publish cut short) is read there.
            .filter(|p| p.exists())
            .collect();
        let mut files = listed;
        files.extend(crate::common::topic_files(archive, name));
        let rows = archived(None, &files);
        for (p, o) in &produced.at[k] {
            let committed = offsets
                .iter()
                .find(|(t, q, _)| t == name && q == p)
                .map_or(0, |r| r.2);
            if *o < committed && !rows.contains_key(&(*p, *o)) {
                missing.push((name.clone(), *p, *o, committed));
            }
        }
    }
    missing
}
