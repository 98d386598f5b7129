//! Every statement of `store::{realtime, leases, progress, feeder, catalog, batch, views}` run
//! against a real Postgres (a fresh, migrated database per test), checking what it wrote or read.
//! The layers' own tests run them too, through the stream's flush, the batch publish and the
//! serving API; these pin each statement down on its own.

#![allow(clippy::unwrap_used)] // tests may unwrap

use chrono::{DateTime, Utc};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::{Day, Ts, VideoId};
use playsource_store::leases::{self, Offset, Staged, StoredCheckpoint};
use playsource_store::views::{self, View};
use playsource_store::{batch, catalog, feeder, progress, realtime};
use sqlx::PgPool;

const H: i64 = 3_600_000;

fn day() -> Day {
    Day::parse("2026-11-21").unwrap()
}

fn hour(n: i64) -> Ts {
    Ts(day().start().0 + n * H)
}

fn utc(ts: Ts) -> DateTime<Utc> {
    ts.to_datetime().unwrap()
}

fn hourly(h: i64, country: &str, plays: i64) -> HourlyRow {
    HourlyRow {
        hour: hour(h),
        country: country.into(),
        device: "tv".into(),
        sop_row: "top_picks".into(),
        sod_row: "my_list".into(),
        genre: "drama".into(),
        new_launch: false,
        plays,
    }
}

fn video(id: u64, plays: i64) -> VideoDayRow {
    VideoDayRow {
        day: day(),
        video_id: VideoId(id),
        sod_row: "my_list".into(),
        plays,
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn realtime_deltas_add_up_and_zero_cells_go(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    realtime::add_hourly(&mut tx, &[hourly(1, "US", 2), hourly(2, "FR", 1)])
        .await
        .unwrap();
    realtime::add_video_daily(&mut tx, &[video(u64::MAX, 3), video(7, 1)])
        .await
        .unwrap();
    let late: std::collections::HashMap<realtime::TooLateKey, i64> = [
        ((hour(1), "plays".into(), "US".into(), "tv".into()), 2),
        (
            (hour(30), "impressions".into(), "US".into(), "tv".into()),
            5,
        ),
    ]
    .into_iter()
    .collect();
    realtime::add_too_late(&mut tx, &late).await.unwrap();
    tx.commit().await.unwrap();

    // A retraction: the FR cell and video 7 drop to zero and disappear.
    let mut tx = pool.begin().await.unwrap();
    realtime::add_hourly(&mut tx, &[hourly(1, "US", 1), hourly(2, "FR", -1)])
        .await
        .unwrap();
    realtime::add_video_daily(&mut tx, &[video(7, -1)])
        .await
        .unwrap();
    realtime::add_too_late(&mut tx, &late).await.unwrap();
    realtime::add_hourly(&mut tx, &[]).await.unwrap();
    tx.commit().await.unwrap();

    let (from, to) = (utc(day().start()), utc(day().plus(1).start()));
    let cells = views::hourly_cells(&pool, View::Realtime, from, to)
        .await
        .unwrap();
    assert_eq!(cells.len(), 1, "{cells:?}");
    assert_eq!((cells[0].country.as_str(), cells[0].plays), ("US", 3));
    assert_eq!(cells[0].hour, utc(hour(1)));
    let videos = views::video_cells(&pool, View::Realtime, day().to_date())
        .await
        .unwrap();
    assert_eq!(
        videos,
        [(u64::MAX.to_string(), "my_list".to_owned(), 3)],
        "u64 ids survive NUMERIC"
    );
    let late_rows = realtime::too_late_between(
        &pool,
        from,
        utc(day().plus(2).start()),
        ["plays", "impressions"],
    )
    .await
    .unwrap();
    let mut events: Vec<(String, i64)> =
        late_rows.into_iter().map(|r| (r.topic, r.events)).collect();
    events.sort();
    assert_eq!(events, [("impressions".into(), 10), ("plays".into(), 4)]);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        realtime::too_late_sum(&mut conn, "plays", from, to)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        realtime::too_late_sum(&mut conn, "impressions", from, to)
            .await
            .unwrap(),
        0,
        "hour 30 is the next day"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn leases_offsets_checkpoints_and_staged_files(pool: PgPool) {
    assert_eq!(leases::epoch(&pool, "g", 3).await.unwrap(), None);
    assert_eq!(leases::acquire(&pool, "g", 3, "a").await.unwrap(), 1);
    assert_eq!(leases::acquire(&pool, "g", 3, "b").await.unwrap(), 2);
    assert_eq!(leases::acquire(&pool, "g", 1, "b").await.unwrap(), 1);
    assert_eq!(leases::epoch(&pool, "g", 3).await.unwrap(), Some(2));

    let mut tx = pool.begin().await.unwrap();
    assert_eq!(
        leases::lock(&mut tx, "g", &[3, 1, 9]).await.unwrap(),
        [(1, 1), (3, 2)]
    );
    assert_eq!(feeder::lock_shared(&mut tx).await.unwrap(), None);
    let offsets = [
        Offset {
            topic: "plays",
            partition: 3,
            next_offset: 10,
            high_water: Some(hour(5)),
        },
        Offset {
            topic: "impressions",
            partition: 3,
            next_offset: 20,
            high_water: None,
        },
    ];
    leases::store_offsets(&mut tx, "g", &offsets).await.unwrap();
    leases::store_offsets(&mut tx, "g", &[]).await.unwrap();
    let snap = StoredCheckpoint {
        impressions_offset: 20,
        plays_offset: 10,
        epoch: 2,
        layers: vec![
            "_checkpoints/g/p3/e2-0.ckpt".into(),
            "_checkpoints/g/p3/e2-1.ckpt".into(),
        ],
        layer_bytes: vec![1000, 10],
    };
    leases::store_checkpoint(&mut tx, "g", 3, ["impressions", "plays"], 7, &snap)
        .await
        .unwrap();
    leases::stage_files(
        &mut tx,
        "g",
        &[Staged {
            partition: 3,
            staged_path: "a.tmp",
            final_path: "a.parquet",
            rows: 5,
        }],
    )
    .await
    .unwrap();
    progress::record(&mut tx, "g", "/archive", &offsets)
        .await
        .unwrap();
    let mut stored = leases::stored_offsets(&mut tx, "g", &[3]).await.unwrap();
    stored.sort();
    assert_eq!(
        stored,
        [("impressions".into(), 3, 20), ("plays".into(), 3, 10)]
    );
    tx.commit().await.unwrap();

    // The high water only grows.
    let mut tx = pool.begin().await.unwrap();
    leases::store_offsets(
        &mut tx,
        "g",
        &[Offset {
            topic: "plays",
            partition: 3,
            next_offset: 11,
            high_water: Some(hour(1)),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        leases::committed_offset(&pool, "g", "plays", 3)
            .await
            .unwrap(),
        Some(11)
    );
    assert_eq!(
        leases::committed_offset(&pool, "g", "plays", 4)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        leases::committed_partitions(&pool, "g").await.unwrap(),
        [("impressions".into(), 3), ("plays".into(), 3)]
    );
    let ages = leases::committed_ages(&pool, "g").await.unwrap();
    assert_eq!(ages.len(), 2);
    assert!(ages.iter().all(|a| (0.0..60.0).contains(&a.3)), "{ages:?}");

    assert_eq!(
        leases::load_checkpoint(&pool, "g", 3, ["impressions", "plays"], 7)
            .await
            .unwrap(),
        Some(snap)
    );
    assert_eq!(
        leases::load_checkpoint(&pool, "g", 3, ["impressions", "plays"], 8)
            .await
            .unwrap(),
        None,
        "another format"
    );
    assert_eq!(
        leases::staged_files(&pool, "g", 3).await.unwrap(),
        [("a.tmp".into(), "a.parquet".into())]
    );
    leases::forget_staged(&pool, "g", 3, &["a.tmp".into()])
        .await
        .unwrap();
    assert!(leases::staged_files(&pool, "g", 3)
        .await
        .unwrap()
        .is_empty());

    // Archive progress: recorded high water, then read to the end of the log.
    let point = utc(hour(2));
    let behind = progress::behind(&pool, "/archive", &["plays", "impressions"], point)
        .await
        .unwrap();
    assert_eq!(behind.len(), 1, "impressions has no event time: {behind:?}");
    assert_eq!(behind[0].topic, "impressions");
    let ends = [
        ("impressions".to_owned(), 3, 20),
        ("plays".to_owned(), 3, 99),
    ];
    let marked = progress::mark_caught_up(&pool, "g", "/archive", utc(hour(3)), &ends)
        .await
        .unwrap();
    assert_eq!(marked, 1, "plays is not at its log end");
    assert!(
        progress::behind(&pool, "/archive", &["plays", "impressions"], point)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        progress::mark_caught_up(&pool, "g", "/archive", utc(hour(3)), &[])
            .await
            .unwrap(),
        0
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn newer_catalog_versions(pool: PgPool) {
    assert!(catalog::versions_above(&pool, 0).await.unwrap().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.csv");
    std::fs::write(
        &path,
        "video_id,title,genre,kind,launch_date\n1,A,drama,movie,2020-01-01\n",
    )
    .unwrap();
    catalog::load_csv(&pool, &path).await.unwrap();
    let v = catalog::versions_above(&pool, 0).await.unwrap();
    assert_eq!(v.len(), 1);
    assert!(catalog::versions_above(&pool, v[0].0)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrations = "../../migrations")]
async fn batch_publish_parts_prune_and_merged_reads(pool: PgPool) {
    let d = day();
    // The realtime view of the day and of the next one.
    let mut tx = pool.begin().await.unwrap();
    realtime::add_hourly(&mut tx, &[hourly(1, "US", 9), hourly(25, "US", 4)])
        .await
        .unwrap();
    realtime::add_video_daily(&mut tx, &[video(5, 9)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(batch::generation(&pool, d).await.unwrap(), None);

    // Two shard parts, summed into the batch view.
    let mut tx = pool.begin().await.unwrap();
    batch::lock_day(&mut tx, d).await.unwrap();
    for (index, plays) in [(1, 2), (2, 3)] {
        assert_eq!(
            batch::delete_part(&mut tx, d, 2, index).await.unwrap(),
            None
        );
        batch::insert_part(
            &mut tx,
            &batch::Part {
                day: d,
                shard_count: 2,
                shard_index: index,
                inputs: "fp",
                plays,
                impressions: 10,
                enriched_dir: &format!("/e/{index}"),
            },
        )
        .await
        .unwrap();
        batch::insert_hourly(&mut tx, d, Some((2, index)), &[hourly(1, "US", plays)])
            .await
            .unwrap();
        batch::insert_video_daily(&mut tx, Some((2, index)), &[video(5, plays)])
            .await
            .unwrap();
    }
    assert_eq!(
        batch::delete_part(&mut tx, d, 2, 2).await.unwrap(),
        Some("/e/2".into())
    );
    batch::insert_part(
        &mut tx,
        &batch::Part {
            day: d,
            shard_count: 2,
            shard_index: 2,
            inputs: "fp",
            plays: 3,
            impressions: 10,
            enriched_dir: "/e/2",
        },
    )
    .await
    .unwrap();
    // The part's rows went with it (a re-run records them again).
    batch::insert_hourly(&mut tx, d, Some((2, 2)), &[hourly(1, "US", 3)])
        .await
        .unwrap();
    batch::insert_video_daily(&mut tx, Some((2, 2)), &[video(5, 3)])
        .await
        .unwrap();
    assert_eq!(
        batch::parts_of(&mut tx, d, 2, "fp").await.unwrap(),
        [(1, "/e/1".into()), (2, "/e/2".into())]
    );
    assert!(batch::parts_of(&mut tx, d, 2, "other")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(batch::sum_parts(&mut tx, d, 2).await.unwrap(), (5, 20));
    batch::clear_hourly(&mut tx, d).await.unwrap();
    batch::clear_video_daily(&mut tx, d).await.unwrap();
    batch::sum_parts_into_hourly(&mut tx, d, 2).await.unwrap();
    batch::sum_parts_into_video_daily(&mut tx, d, 2)
        .await
        .unwrap();
    let g1 = batch::mark_complete(&mut tx, d, 5, 20, 0).await.unwrap();
    batch::delete_parts(&mut tx, d, 2).await.unwrap();
    assert_eq!(batch::sum_parts(&mut tx, d, 2).await.unwrap(), (0, 0));
    tx.commit().await.unwrap();
    assert_eq!(batch::generation(&pool, d).await.unwrap(), Some(g1));

    let (from, to) = (utc(d.start()), utc(d.plus(1).start()));
    let cells = views::hourly_cells(&pool, View::Batch, from, to)
        .await
        .unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].plays, 5);
    assert_eq!(
        views::video_cells(&pool, View::Batch, d.to_date())
            .await
            .unwrap(),
        [("5".into(), "my_list".into(), 5)]
    );

    // A plain publish replaces the day with a new generation.
    let mut tx = pool.begin().await.unwrap();
    batch::clear_hourly(&mut tx, d).await.unwrap();
    batch::clear_video_daily(&mut tx, d).await.unwrap();
    batch::insert_hourly(&mut tx, d, None, &[hourly(1, "US", 8)])
        .await
        .unwrap();
    batch::insert_video_daily(&mut tx, None, &[video(5, 8)])
        .await
        .unwrap();
    let g2 = batch::mark_complete(&mut tx, d, 8, 20, 1).await.unwrap();
    tx.commit().await.unwrap();
    assert!(g2 > g1);

    // Serving's merged reads: the day from the batch view, the next one from the realtime view.
    let ping = views::ping(&pool).await;
    assert!(ping.is_ok(), "{ping:?}");
    let probe = views::probe(&pool).await;
    assert!(probe.is_ok(), "{probe:?}");
    assert!(!views::current_snapshot(&pool).await.unwrap().is_empty());
    let mut tx = views::begin_snapshot(&pool).await.unwrap();
    let (snap, fresh) = views::snapshot_and_freshness(&mut tx).await.unwrap();
    assert!(!snap.is_empty());
    assert_eq!(fresh.through, Some(d.to_date()));
    assert_eq!((fresh.days, fresh.generation), (1, g2));
    let next = d.plus(1).to_date();
    let (_, complete) = views::freshness(&mut tx, Some((d.to_date(), next)))
        .await
        .unwrap();
    assert_eq!(complete, 1);
    let (_, none) = views::freshness(&mut tx, None).await.unwrap();
    assert_eq!(none, 0);
    assert_eq!(
        views::merged_video(&mut tx, 5, d.to_date(), next.succ_opt().unwrap())
            .await
            .unwrap(),
        [("my_list".into(), 8)],
        "the batch view's 8, not the realtime 9"
    );
    assert_eq!(
        views::complete_days_from(&mut tx, d.to_date())
            .await
            .unwrap(),
        [d.to_date()]
    );
    let mut batch_rows = Vec::new();
    views::batch_hourly_from(&mut tx, d.to_date(), |r| {
        batch_rows.push((r.hour, r.country.to_owned(), r.plays))
    })
    .await
    .unwrap();
    assert_eq!(batch_rows, [(utc(hour(1)), "US".into(), 8)]);
    let mut rt_rows = Vec::new();
    views::realtime_hourly_in(&mut tx, &[to], &[utc(d.plus(2).start())], |r| {
        rt_rows.push((r.hour, r.plays))
    })
    .await
    .unwrap();
    assert_eq!(rt_rows, [(utc(hour(25)), 4)]);
    tx.commit().await.unwrap();

    let series = views::merged_series(
        &pool,
        &views::SeriesQuery {
            lo: from,
            hi: utc(d.plus(2).start()),
            first: d.to_date(),
            last: next,
            row: views::RowColumn::SourceOfPlay,
            bucket: views::Bucket::Day,
            country: Some("US"),
            device: None,
            genre: Some("drama"),
            new_launch: Some(false),
            sop_row: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(series.complete, 1);
    let mut rows = series.rows;
    rows.sort();
    assert_eq!(
        rows,
        [(from, "top_picks".into(), 8), (to, "top_picks".into(), 4)]
    );

    // Pruning: nothing is old enough at 1 day; at -1 days the complete day's realtime rows go.
    let mut tx = pool.begin().await.unwrap();
    for table in [batch::RealtimeHourly::Plays, batch::RealtimeHourly::TooLate] {
        assert_eq!(
            batch::prune_realtime_hourly(&mut tx, table, 1)
                .await
                .unwrap(),
            0
        );
    }
    assert_eq!(
        batch::prune_realtime_hourly(&mut tx, batch::RealtimeHourly::Plays, -1)
            .await
            .unwrap(),
        1,
        "hour 1 of the complete day, not hour 25"
    );
    assert_eq!(
        batch::prune_realtime_video_daily(&mut tx, -1)
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
}
