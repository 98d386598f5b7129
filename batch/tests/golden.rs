//! Golden cases: hand-written inputs under `tests/golden/<case>/` (impressions.json, plays.json,
//! catalog.csv) and hand-computed expected views (expected_hourly.json,
//! expected_video_daily.json), compared exactly.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use playsource_batch::{run_day, BatchOptions};
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::attribution::reference;
use playsource_domain::catalog::parse_csv;
use playsource_domain::{
    decode_impression, decode_play, AttributionConfig, Day, Impression, Play, VideoId,
};
use serde::Deserialize;
use sqlx::PgPool;

#[derive(Deserialize)]
struct ExpectedHourly {
    hour: String,
    country: String,
    device: String,
    sop_row: String,
    sod_row: String,
    genre: String,
    new_launch: bool,
    plays: i64,
}

#[derive(Deserialize)]
struct ExpectedVideo {
    day: String,
    video_id: u64,
    sod_row: String,
    plays: i64,
}

fn events(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let values: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    values.iter().map(|v| v.to_string()).collect()
}

async fn golden(pool: PgPool, case: &str, d: Day) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case);
    let imp_json = events(&dir.join("impressions.json"));
    let play_json = events(&dir.join("plays.json"));
    let imps: Vec<Impression<'_>> = imp_json
        .iter()
        .map(|s| decode_impression(s.as_bytes()).unwrap())
        .collect();
    let plays: Vec<Play<'_>> = play_json
        .iter()
        .map(|s| decode_play(s.as_bytes()).unwrap())
        .collect();
    let catalog = parse_csv(std::fs::File::open(dir.join("catalog.csv")).unwrap()).unwrap();

    let archive = tempfile::tempdir().unwrap();
    write_archive(archive.path(), &imps, &plays, 1);
    insert_catalog(&pool, &catalog).await;
    let opts = BatchOptions::new(archive.path());
    let cat = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let summary = run_day(&pool, cat, &opts, d).await.unwrap();

    let expected: Vec<ExpectedHourly> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_hourly.json")).unwrap())
            .unwrap();
    let mut expected: Vec<HourlyRow> = expected
        .into_iter()
        .map(|e| HourlyRow {
            hour: ts(&e.hour),
            country: e.country,
            device: e.device,
            sop_row: e.sop_row,
            sod_row: e.sod_row,
            genre: e.genre,
            new_launch: e.new_launch,
            plays: e.plays,
        })
        .collect();
    expected.sort();
    assert_eq!(batch_hourly(&pool, "batch_hourly", d).await, expected);

    let expected_video: Vec<ExpectedVideo> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected_video_daily.json")).unwrap(),
    )
    .unwrap();
    let mut expected_video: Vec<VideoDayRow> = expected_video
        .into_iter()
        .map(|e| VideoDayRow {
            day: day(&e.day),
            video_id: VideoId(e.video_id),
            sod_row: e.sod_row,
            plays: e.plays,
        })
        .collect();
    expected_video.sort();
    assert_eq!(batch_video_daily(&pool, d).await, expected_video);

    // The hand-computed expectation also agrees with the domain's naive reference.
    let plays_of_d: Vec<Play<'_>> = plays.iter().filter(|p| p.ts.day() == d).cloned().collect();
    let reference = reference::counts(
        &AttributionConfig::default(),
        &imps,
        &plays_of_d,
        &catalog_of(&catalog),
    );
    assert_eq!(reference.hourly_rows(), expected);
    let total: i64 = expected.iter().map(|r| r.plays).sum();
    assert_eq!(summary.plays as i64, total);
    assert_eq!(summary.duplicate_plays, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn rules_edges(pool: PgPool) {
    let d = day("2026-11-21");
    golden(pool.clone(), "rules_edges", d).await;
    // Six impressions are of the day itself.
    let (_, plays, impressions, _) = batch_day(&pool, d).await.unwrap();
    assert_eq!((plays, impressions), (7, 6));
}
