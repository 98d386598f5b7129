//! A day's batch split into N shards (`--shard I/N`, docs/batch.md): N = 1, 3 and 4 give the same
//! batch view and the same enriched plays, over stream-written files (shares by partition) and
//! files of another tool (shares by member hash); a missing shard, or one that fails mid-way on a
//! damaged file of its share, publishes nothing and leaves the previous view; re-runs are
//! idempotent and parts of another listing are never merged.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use playsource_archive::{ArchiveLayout, ImpressionsWriter, PlaysWriter};
use playsource_batch::{run_day, run_shard, BatchOptions, Error, Shard};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Catalog, Day};
use sqlx::PgPool;

const PARTITIONS: u64 = 4;

/// Writes the workload as the stream would: one file per (topic, partition, hour) named
/// `p<partition>-o<first>-<last>`, members spread over 4 co-partitioned partitions.
fn write_stream_archive(root: &Path, w: &Workload) {
    let layout = ArchiveLayout::new(root);
    let mut iw = ImpressionsWriter::new(layout.clone(), "impressions").unwrap();
    let mut pw = PlaysWriter::new(layout, "plays").unwrap();
    for p in 0..PARTITIONS {
        let of_p = |m: u64| m % PARTITIONS == p;
        let mut n = 0;
        for i in w.impressions.iter().filter(|i| of_p(i.member_id.0)) {
            iw.push(i, None);
            n += 1;
        }
        iw.flush(&format!("p{p}-o{}-{}", p * 100_000, p * 100_000 + n))
            .unwrap();
        let mut n = 0;
        for pl in w.plays.iter().filter(|pl| of_p(pl.member_id.0)) {
            pw.push(pl, None);
            n += 1;
        }
        pw.flush(&format!("p{p}-o{}-{}", p * 100_000, p * 100_000 + n))
            .unwrap();
    }
}

/// The batch view of a day and its enriched plays (every row of every file, sorted).
#[derive(Debug, PartialEq)]
struct View {
    hourly: Vec<HourlyRow>,
    video: Vec<VideoDayRow>,
    /// (plays, impressions, too_late_plays) of batch_days.
    totals: (i64, i64, i64),
    enriched: Vec<String>,
}

async fn view(pool: &PgPool, root: &Path, d: Day) -> (i64, View) {
    let (generation, plays, imps, late) = batch_day(pool, d).await.unwrap();
    let v = View {
        hourly: batch_hourly(pool, "batch_hourly", d).await,
        video: batch_video_daily(pool, d).await,
        totals: (plays, imps, late),
        enriched: enriched_rows(&ArchiveLayout::new(root).enriched_dir(d)),
    };
    (generation, v)
}

fn enriched_rows(dir: &Path) -> Vec<String> {
    rows_as_text(&read_batches(&parquet_files(dir)))
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// Folders left under `enriched_plays/_staging`.
fn staging_left(root: &Path) -> usize {
    std::fs::read_dir(root.join("enriched_plays/_staging")).map_or(0, |d| d.count())
}

async fn parts(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM batch_shard_parts")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn shard(i: u32, n: u32) -> Shard {
    format!("{i}/{n}").parse().unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    d: Day,
    opts: BatchOptions,
    catalog: Arc<Catalog>,
}

async fn setup(pool: &PgPool, stream_files: bool) -> Setup {
    let d = day("2026-11-21");
    let w = workload(31, d.plus(-8), d, 60, 900);
    let dir = tempfile::tempdir().unwrap();
    if stream_files {
        write_stream_archive(dir.path(), &w);
    } else {
        write_archive(dir.path(), &w.impressions, &w.plays, 3);
    }
    insert_catalog(pool, &w.catalog).await;
    let mut opts = BatchOptions::new(dir.path());
    opts.threads = 2;
    let catalog = Arc::new(playsource_batch::load_catalog(pool).await.unwrap());
    Setup {
        dir,
        d,
        opts,
        catalog,
    }
}

impl Setup {
    async fn one_machine(&self, pool: &PgPool) -> (i64, View) {
        run_day(pool, self.catalog.clone(), &self.opts, self.d)
            .await
            .unwrap();
        view(pool, self.dir.path(), self.d).await
    }

    async fn shard(
        &self,
        pool: &PgPool,
        i: u32,
        n: u32,
    ) -> Result<playsource_batch::ShardSummary, Error> {
        run_shard(pool, self.catalog.clone(), &self.opts, self.d, shard(i, n)).await
    }

    /// Runs the shards in `order`; only the last publishes.
    async fn all_shards(&self, pool: &PgPool, n: u32, order: &[u32]) -> (i64, View) {
        for (k, &i) in order.iter().enumerate() {
            let s = self.shard(pool, i, n).await.unwrap();
            assert_eq!(s.parts_recorded, k as u32 + 1, "shard {i}/{n}");
            assert_eq!(s.published.is_some(), k + 1 == order.len(), "shard {i}/{n}");
        }
        assert_eq!(parts(pool).await, 0, "published parts are spent");
        view(pool, self.dir.path(), self.d).await
    }
}

async fn n_shards_give_the_one_machine_view(pool: PgPool, stream_files: bool) {
    let s = setup(&pool, stream_files).await;
    let (g1, one) = s.one_machine(&pool).await;
    assert!(
        one.totals.0 > 50 && !one.enriched.is_empty(),
        "{:?}",
        one.totals
    );

    let (g3, three) = s.all_shards(&pool, 3, &[2, 3, 1]).await;
    assert!(g3 > g1);
    assert_eq!(three, one, "3 shards against one machine");
    let (_, four) = s.all_shards(&pool, 4, &[1, 2, 3, 4]).await;
    assert_eq!(four, one, "4 shards against one machine");
    assert_eq!(staging_left(s.dir.path()), 0);

    // Each shard read only its share: by partition for stream files, by member otherwise.
    let mut files = 0;
    for i in 1..=4 {
        let r = s.shard(&pool, i, 4).await.unwrap();
        assert_eq!(r.member_filter, !stream_files);
        files += r.files.0;
    }
    let total =
        playsource_archive::read::list_files(&ArchiveLayout::new(s.dir.path()), "plays", s.d..=s.d)
            .unwrap()
            .len();
    assert_eq!(files, if stream_files { total } else { 4 * total });
    assert_eq!(view(&pool, s.dir.path(), s.d).await.1, one);
}

#[sqlx::test(migrations = "../migrations")]
async fn n_shards_over_stream_files_give_the_one_machine_view(pool: PgPool) {
    n_shards_give_the_one_machine_view(pool, true).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn n_shards_over_files_of_another_tool_give_the_one_machine_view(pool: PgPool) {
    n_shards_give_the_one_machine_view(pool, false).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn shards_finishing_together_publish_exactly_once(pool: PgPool) {
    let s = setup(&pool, true).await;
    let (g, one) = s.one_machine(&pool).await;
    for _ in 0..3 {
        let (a, b, c, d) = tokio::join!(
            s.shard(&pool, 1, 4),
            s.shard(&pool, 2, 4),
            s.shard(&pool, 3, 4),
            s.shard(&pool, 4, 4)
        );
        let runs = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
        let publishers = runs.iter().filter(|r| r.published.is_some()).count();
        assert_eq!(publishers, 1, "exactly one of the shards publishes");
        let mut seen: Vec<u32> = runs.iter().map(|r| r.parts_recorded).collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4], "each saw the parts recorded before it");
        assert_eq!(parts(&pool).await, 0);
        let (g2, v) = view(&pool, s.dir.path(), s.d).await;
        assert!(g2 > g);
        assert_eq!(v, one);
    }
    assert_eq!(staging_left(s.dir.path()), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_missing_shard_publishes_nothing(pool: PgPool) {
    let s = setup(&pool, true).await;
    let (g, before) = s.one_machine(&pool).await;
    for i in [1, 3] {
        let r = s.shard(&pool, i, 3).await.unwrap();
        assert!(r.published.is_none());
    }
    let (g_after, after) = view(&pool, s.dir.path(), s.d).await;
    assert_eq!((g_after, &after), (g, &before), "the previous view stays");
    assert_eq!(parts(&pool).await, 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_shard_failing_on_a_damaged_file_publishes_nothing(pool: PgPool) {
    let s = setup(&pool, true).await;
    let (g, before) = s.one_machine(&pool).await;
    s.shard(&pool, 1, 3).await.unwrap();
    s.shard(&pool, 3, 3).await.unwrap();

    // Damage a plays file of partition 1 (shard 2's share) without changing its size.
    let victim =
        playsource_archive::read::list_files(&ArchiveLayout::new(s.dir.path()), "plays", s.d..=s.d)
            .unwrap()
            .into_iter()
            .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("p1-"))
            .unwrap();
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 4..].copy_from_slice(b"XXXX");
    std::fs::write(&victim, &bad).unwrap();

    let err = s.shard(&pool, 2, 3).await.unwrap_err();
    assert!(matches!(err, Error::Archive(_)), "{err}");
    assert!(err.to_string().contains("p1-"), "{err}");
    let (g_after, after) = view(&pool, s.dir.path(), s.d).await;
    assert_eq!((g_after, &after), (g, &before), "the previous view stays");
    assert_eq!(parts(&pool).await, 2, "the failed shard recorded nothing");
    assert_eq!(
        staging_left(s.dir.path()),
        2,
        "only the two recorded parts' files"
    );

    // Repaired, the shard's re-run completes the day.
    std::fs::write(&victim, &good).unwrap();
    let r = s.shard(&pool, 2, 3).await.unwrap();
    assert!(r.published.is_some());
    let (g_pub, published) = view(&pool, s.dir.path(), s.d).await;
    assert!(g_pub > g);
    assert_eq!(published, before);
    assert_eq!(staging_left(s.dir.path()), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_part_whose_files_are_gone_publishes_nothing(pool: PgPool) {
    let s = setup(&pool, true).await;
    let (g, before) = s.one_machine(&pool).await;
    let first = s.shard(&pool, 1, 3).await.unwrap();
    assert!(first.published.is_none());
    s.shard(&pool, 2, 3).await.unwrap();
    let dir: String =
        sqlx::query_scalar("SELECT enriched_dir FROM batch_shard_parts WHERE shard_index = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let err = s.shard(&pool, 3, 3).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShardFilesMissing {
                index: 1,
                count: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("run that shard again"), "{err}");
    let (g_after, after) = view(&pool, s.dir.path(), s.d).await;
    assert_eq!((g_after, &after), (g, &before), "the previous view stays");
    assert_eq!(parts(&pool).await, 2, "the failing last part rolled back");

    // Re-running the shard whose files are gone, then the last one, publishes the day.
    s.shard(&pool, 1, 3).await.unwrap();
    assert!(s.shard(&pool, 3, 3).await.unwrap().published.is_some());
    assert_eq!(view(&pool, s.dir.path(), s.d).await.1, before);
    assert_eq!(staging_left(s.dir.path()), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn re_runs_are_idempotent_and_listings_never_mix(pool: PgPool) {
    let s = setup(&pool, false).await;
    let (_, one) = s.one_machine(&pool).await;

    // A shard run twice before the others replaces its own part.
    s.shard(&pool, 1, 3).await.unwrap();
    let again = s.shard(&pool, 1, 3).await.unwrap();
    assert_eq!(again.parts_recorded, 1);
    assert_eq!(
        staging_left(s.dir.path()),
        1,
        "the replaced part's files are gone"
    );
    s.shard(&pool, 2, 3).await.unwrap();
    let last = s.shard(&pool, 3, 3).await.unwrap();
    assert!(last.published.is_some());
    let (g, v) = view(&pool, s.dir.path(), s.d).await;
    assert_eq!(v, one);

    // One shard re-run alone after the publish publishes nothing (the parts are spent).
    let lone = s.shard(&pool, 2, 3).await.unwrap();
    assert!(lone.published.is_none());
    assert_eq!(view(&pool, s.dir.path(), s.d).await.0, g);

    // A part computed from another listing is never merged: shard 3 sees an extra file.
    s.shard(&pool, 1, 3).await.unwrap();
    let first =
        playsource_archive::read::list_files(&ArchiveLayout::new(s.dir.path()), "plays", s.d..=s.d)
            .unwrap()[0]
            .clone();
    let extra = first.with_file_name("late-tool.parquet");
    std::fs::copy(&first, &extra).unwrap();
    let other = s.shard(&pool, 3, 3).await.unwrap();
    assert_eq!(other.parts_recorded, 1, "only its own part has its listing");
    assert!(other.published.is_none());
    assert_eq!(view(&pool, s.dir.path(), s.d).await.0, g);
    std::fs::remove_file(&extra).unwrap();

    // The same listing again: shard 3 re-runs and completes the set of 3.
    let done = s.shard(&pool, 3, 3).await.unwrap();
    assert!(done.published.is_some());
    let (g2, v2) = view(&pool, s.dir.path(), s.d).await;
    assert!(g2 > g);
    assert_eq!(v2, one);
    assert_eq!(staging_left(s.dir.path()), 0);
}

#[test]
fn shard_specs() {
    assert_eq!(shard(2, 4), Shard { index: 2, count: 4 });
    assert!(Shard::WHOLE.is_whole());
    for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", ""] {
        let err = bad.parse::<Shard>().unwrap_err();
        assert!(matches!(err, Error::ShardSpec { .. }), "{bad}");
        assert!(err.to_string().contains("I/N"));
    }
}
