//! The batch layer over an archive on the S3 test server (`scripts/services.sh`; the shared
//! set-up of `playsource_archive::store::test_support`), reached as users reach it: an
//! `s3://bucket/prefix` archive configured by the `AWS_*` variables. Batch over S3 equals the
//! naive reference and the same archive on disk (rows of the view and enriched plays); the audit
//! of a day published from S3; the completeness gate keyed by the URL; N shards equal one
//! machine; a missing bucket fails with one clear error and publishes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use playsource_archive::store::test_support;
use playsource_archive::{ArchiveStore, ImpressionsWriter, PlaysWriter};
use playsource_batch::{audit_day, run_day, run_shard, BatchOptions, Error, Shard};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::attribution::reference::{self, NaiveAttribution};
use playsource_domain::{AttributionConfig, Day, Play};
use sqlx::PgPool;

/// A fresh archive on the S3 test server; `None` when the S3 tests are skipped.
fn s3(test: &str) -> Option<(String, ArchiveStore)> {
    test_support::fresh_archive(&format!("batch-{test}"))
}

/// The record batches of every enriched plays file of `d`, read through the store.
fn enriched_batches(store: &ArchiveStore, d: Day) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for (rel, _) in store.list(&format!("enriched_plays/date={d}")).unwrap() {
        assert!(rel.ends_with(".parquet"), "{rel}");
        let r = ParquetRecordBatchReaderBuilder::try_new(store.get(&rel).unwrap())
            .unwrap()
            .build()
            .unwrap();
        out.extend(r.map(Result::unwrap));
    }
    out
}

/// Every enriched row of `d` as text, sorted.
fn enriched_rows(store: &ArchiveStore, d: Day) -> Vec<String> {
    rows_as_text(&enriched_batches(store, d))
}

/// The sources of every enriched play of `d`, sorted.
fn enriched_attributions_of(store: &ArchiveStore, d: Day) -> Vec<NaiveAttribution> {
    enriched_attributions(&enriched_batches(store, d))
}

/// The batch view of `d` and its enriched rows.
#[derive(Debug, PartialEq)]
struct View {
    hourly: Vec<HourlyRow>,
    video: Vec<VideoDayRow>,
    /// (plays, impressions, too_late_plays) of batch_days.
    totals: (i64, i64, i64),
    enriched: Vec<String>,
}

async fn view(pool: &PgPool, store: &ArchiveStore, d: Day) -> (i64, View) {
    let (generation, plays, imps, late) = batch_day(pool, d).await.unwrap();
    let v = View {
        hourly: batch_hourly(pool, "batch_hourly", d).await,
        video: batch_video_daily(pool, d).await,
        totals: (plays, imps, late),
        enriched: enriched_rows(store, d),
    };
    (generation, v)
}

fn staging_left(store: &ArchiveStore) -> usize {
    store.list("enriched_plays/_staging").unwrap().len()
}

#[sqlx::test(migrations = "../migrations")]
async fn batch_over_an_s3_archive_equals_the_reference_and_the_local_run(pool: PgPool) {
    let Some((url, store)) = s3("reference") else {
        return;
    };
    let d = day("2026-11-21");
    let w = workload(7, d.plus(-9), d.plus(1), 150, 3000);
    write_archive_in(&store, &w.impressions, &w.plays, 2);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &w.impressions, &w.plays, 2);
    insert_catalog(&pool, &w.catalog).await;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());

    // The same archive on disk first.
    let local = ArchiveStore::local(dir.path());
    let mut opts = BatchOptions::new(local.clone());
    opts.threads = 2;
    run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    let (g_local, on_disk) = view(&pool, &local, d).await;

    let cfg = AttributionConfig::default();
    let plays_of_d: Vec<Play<'_>> = w
        .plays
        .iter()
        .filter(|p| p.ts.day() == d)
        .cloned()
        .collect();
    let expected = reference::counts(&cfg, &w.impressions, &plays_of_d, &catalog_of(&w.catalog));
    assert!(expected.total() > 100, "{}", expected.total());

    let mut opts = BatchOptions::new(store.clone());
    opts.threads = 2;
    let first = run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    assert_eq!(
        first.enriched_dir,
        Path::new(&format!("{url}/enriched_plays/date=2026-11-21"))
    );
    let (g1, on_s3) = view(&pool, &store, d).await;
    assert!(g1 > g_local);
    assert_eq!(on_s3.hourly, expected.hourly_rows());
    assert_eq!(on_s3.video, expected.video_rows());
    assert_eq!(on_s3.totals.0, expected.total());
    assert_eq!(first.plays as i64, expected.total());
    assert_eq!(on_s3, on_disk, "S3 against the same archive on disk");
    assert_eq!(
        enriched_attributions_of(&store, d),
        reference::attribute(&cfg, &w.impressions, &plays_of_d)
    );
    assert_eq!(staging_left(&store), 0);

    // A re-run with one thread: the same rows and files, a higher generation.
    let files: Vec<String> = store
        .list("enriched_plays/date=2026-11-21")
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    opts.threads = 1;
    let second = run_day(&pool, catalog, &opts, d).await.unwrap();
    let (g2, again) = view(&pool, &store, d).await;
    assert!(g2 > g1 && second.generation == g2);
    assert_eq!(again, on_s3);
    let files2: Vec<String> = store
        .list("enriched_plays/date=2026-11-21")
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    assert_eq!(files2, files);
    assert_eq!(staging_left(&store), 0);

    // The audit of the day published from S3: identical realtime rows, no drift; one play
    // fewer in the realtime view is drift.
    for sql in [
        "INSERT INTO rt_hourly SELECT * FROM batch_hourly",
        "INSERT INTO rt_video_daily SELECT * FROM batch_video_daily",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let audit = |pool: PgPool| async move {
        audit_day(
            &pool,
            d,
            "plays",
            "impressions",
            &AttributionConfig::default(),
        )
        .await
        .unwrap()
    };
    let r = audit(pool.clone()).await;
    assert!(r.is_clean(), "{}", r.render());
    assert_eq!(r.batch_plays, expected.total());
    sqlx::query(
        "UPDATE rt_hourly SET plays = plays - 1 WHERE ctid = (SELECT ctid FROM rt_hourly ORDER BY plays DESC, hour LIMIT 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let r = audit(pool.clone()).await;
    assert!(!r.is_clean());
    assert_eq!(r.batch_plays - r.realtime_plays, 1);
}

/// Writes the workload as the stream would, into `store`: one file per (topic, partition)
/// and hour named `p<partition>-o<first>-<last>`, members over 4 co-partitioned partitions.
fn write_stream_archive(store: &ArchiveStore, w: &Workload) {
    let mut iw = ImpressionsWriter::in_store(store.clone(), "impressions").unwrap();
    let mut pw = PlaysWriter::in_store(store.clone(), "plays").unwrap();
    for p in 0..4u64 {
        let of_p = |m: u64| m % 4 == p;
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

#[sqlx::test(migrations = "../migrations")]
async fn three_shards_over_an_s3_archive_give_the_one_machine_view(pool: PgPool) {
    let Some((_, store)) = s3("shards") else {
        return;
    };
    let d = day("2026-11-21");
    let w = workload(31, d.plus(-8), d, 60, 900);
    write_stream_archive(&store, &w);
    insert_catalog(&pool, &w.catalog).await;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let mut opts = BatchOptions::new(store.clone());
    opts.threads = 2;

    run_day(&pool, catalog.clone(), &opts, d).await.unwrap();
    let (g1, one) = view(&pool, &store, d).await;
    assert!(one.totals.0 > 50 && !one.enriched.is_empty(), "{one:?}");

    let mut files = 0;
    for (k, i) in [2u32, 3, 1].into_iter().enumerate() {
        let shard: Shard = format!("{i}/3").parse().unwrap();
        let s = run_shard(&pool, catalog.clone(), &opts, d, shard)
            .await
            .unwrap();
        assert_eq!(s.parts_recorded, k as u32 + 1);
        assert_eq!(s.published.is_some(), k == 2, "only the last publishes");
        assert!(!s.member_filter, "stream files are shared by partition");
        files += s.files.0;
        if k < 2 {
            assert_eq!(batch_day(&pool, d).await.unwrap().0, g1, "nothing yet");
        }
    }
    assert_eq!(files, store.list_data_files("plays", d..=d).unwrap().len());
    let (g3, three) = view(&pool, &store, d).await;
    assert!(g3 > g1);
    assert_eq!(three, one, "3 shards against one machine");
    let names: Vec<String> = store
        .list("enriched_plays/date=2026-11-21")
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        names.iter().all(|n| n.contains("/shard-0000")),
        "the one-machine files were replaced: {names:?}"
    );
    assert_eq!(staging_left(&store), 0);
    let parts: i64 = sqlx::query_scalar("SELECT count(*) FROM batch_shard_parts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(parts, 0);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[sqlx::test(migrations = "../migrations")]
async fn the_gate_refuses_an_s3_archive_the_stream_is_behind_for(pool: PgPool) {
    let Some((url, store)) = s3("gate") else {
        return;
    };
    let d = day("2026-11-21");
    let w = workload(7, d.plus(-8), d, 40, 400);
    write_archive_in(&store, &w.impressions, &w.plays, 1);
    insert_catalog(&pool, &w.catalog).await;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let mut opts = BatchOptions::new(store.clone());

    // The stream recorded this archive (keyed by its URL): plays/0 stopped at 20:00 of D.
    sqlx::query(
        "INSERT INTO archive_progress (archive, topic, partition, group_id, high_water, caught_up_at)
         VALUES ($1, 'plays', 0, 'g', $2, $3)",
    )
    .bind(playsource_store::progress::archive_key(Path::new(&format!(
        "{url}/"
    ))))
    .bind(at("2026-11-21T20:00:00Z"))
    .bind(at("2026-11-22T00:00:00Z"))
    .execute(&pool)
    .await
    .unwrap();
    let err = run_day(&pool, catalog.clone(), &opts, d).await.unwrap_err();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert!(err.to_string().contains("plays/0"), "{err}");
    assert!(batch_day(&pool, d).await.is_none(), "nothing was published");
    assert!(
        store.list("enriched_plays").unwrap().is_empty(),
        "nothing was written"
    );

    opts.force = true;
    let forced = run_day(&pool, catalog, &opts, d).await.unwrap();
    assert_eq!(forced.forced_past.len(), 1);
    assert!(batch_day(&pool, d).await.is_some());
    assert!(!enriched_rows(&store, d).is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn a_missing_bucket_is_one_clear_error_and_publishes_nothing(pool: PgPool) {
    if test_support::skip("a_missing_bucket_is_one_clear_error_and_publishes_nothing") {
        return;
    }
    let url = test_support::fresh_url("batch-nobucket");
    let url = url.replacen(
        &format!("s3://{}/", test_support::bucket()),
        "s3://playsource-no-such-bucket/",
        1,
    );
    let store = ArchiveStore::open(&url).unwrap();
    let d = day("2026-11-21");
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let err = run_day(&pool, catalog, &BatchOptions::new(store), d)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Archive(_)), "{err:?}");
    assert!(msg.contains("s3://playsource-no-such-bucket/"), "{msg}");
    assert!(msg.contains("the bucket exists"), "{msg}");
    assert!(batch_day(&pool, d).await.is_none(), "nothing was published");
}
