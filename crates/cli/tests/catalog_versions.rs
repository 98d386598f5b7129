//! The temporal catalog end to end (docs/reference.md §2), through the binary: `gen` → Kafka → `stream`,
//! a changed catalog (other genres, other launch dates) loaded as a new version, `batch`, and
//! `audit`. Loaded after the plays, the change leaves both views alone and equal cell by cell;
//! effective in the middle of the workload, every play before it keeps the old genres and every
//! play after it takes the new ones, in the realtime and the batch view alike.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should fail the test loudly

use std::path::{Path, PathBuf};

use playsource_domain::catalog::parse_csv;
use sqlx::PgPool;

mod scratch;

use scratch::Scratch;

/// Writes `from` again with every genre renamed `<genre>_v2` and every launch date moved to
/// `launch` (so new-launch flags change too); returns the new file.
fn changed_catalog(from: &Path, launch: &str) -> PathBuf {
    let rows = parse_csv(std::fs::File::open(from).unwrap()).unwrap();
    let mut out = String::from("video_id,title,genre,kind,launch_date\n");
    for r in rows {
        out.push_str(&format!(
            "{},\"{}\",{}_v2,{},{launch}\n",
            r.video_id.0,
            r.title.replace('"', "\"\""),
            r.genre,
            r.kind.as_str()
        ));
    }
    let path = from.with_file_name("catalog_v2.csv");
    std::fs::write(&path, out).unwrap();
    path
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// init, catalog version 1, two days of traffic to Kafka; returns the days and the catalog file.
fn setup(s: &Scratch) -> ([String; 2], PathBuf) {
    let today = chrono::Utc::now().date_naive();
    let days = [2u64, 1].map(|n| {
        (today - chrono::Days::new(n))
            .format("%Y-%m-%d")
            .to_string()
    });
    let catalog = s.archive.path().join("catalog.csv");
    s.ok(&["init", "--partitions", "2"]);
    s.ok(&[
        "gen",
        "--to",
        "kafka",
        "--seed",
        "12",
        "--members",
        "300",
        "--start",
        &days[0],
        "--days",
        "2",
        "--late-share",
        "0",
        "--catalog-out",
        catalog.to_str().unwrap(),
    ]);
    s.ok(&["catalog", "load", catalog.to_str().unwrap()]);
    (days, catalog)
}

fn stream_and_batch(s: &Scratch, days: &[String; 2]) {
    s.ok(&[
        "stream",
        "--group-id",
        &format!("g-{}", s.id),
        "--exit-when-idle",
        "3",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    s.ok(&[
        "batch",
        "--from",
        &days[0],
        "--to",
        &days[1],
        "--no-progress",
    ]);
}

type VideoRow = (String, String, i64);

async fn video_rows(pool: &PgPool, table: &str, day: &str) -> Vec<VideoRow> {
    sqlx::query_as(&format!(
        "SELECT video_id::text, sod_row, plays FROM {table} WHERE day = $1::date AND plays <> 0 ORDER BY 1, 2"
    ))
    .bind(day)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Both views equal cell by cell, and `audit` exits 0.
async fn views_agree(s: &Scratch, pool: &PgPool, day: &str) -> Vec<scratch::HourlyRow> {
    let batch = scratch::hourly_rows(pool, "batch_hourly", day).await;
    assert!(!batch.is_empty(), "{day} has plays");
    assert_eq!(
        scratch::hourly_rows(pool, "rt_hourly", day).await,
        batch,
        "{day}"
    );
    assert_eq!(
        video_rows(pool, "rt_video_daily", day).await,
        video_rows(pool, "batch_video_daily", day).await,
        "{day}"
    );
    let o = s.run(&["audit", "--date", day]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no drift"), "{}", stdout(&o));
    batch
}

#[tokio::test]
async fn a_change_loaded_after_the_plays_leaves_realtime_equal_to_batch() {
    let s = Scratch::new("catv");
    let (days, catalog) = setup(&s);
    s.ok(&[
        "stream",
        "--group-id",
        &format!("g-{}", s.id),
        "--exit-when-idle",
        "3",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    // The change, effective now (after every play), then the batch.
    let v2 = changed_catalog(&catalog, &days[0]);
    let o = s.ok(&["catalog", "load", v2.to_str().unwrap()]);
    assert!(stdout(&o).contains("version 2"), "{}", stdout(&o));
    // The same file again records nothing.
    let o = s.ok(&["catalog", "load", v2.to_str().unwrap()]);
    assert!(stdout(&o).contains("no new version"), "{}", stdout(&o));
    let o = s.ok(&["catalog", "versions"]);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    assert!(stdout(&o).contains("beginning of time"), "{}", stdout(&o));
    s.ok(&[
        "batch",
        "--from",
        &days[0],
        "--to",
        &days[1],
        "--no-progress",
    ]);
    let pool = PgPool::connect(&s.url).await.unwrap();
    for day in &days {
        let rows = views_agree(&s, &pool, day).await;
        assert!(rows.iter().all(|r| !r.5.ends_with("_v2")), "{rows:?}");
    }
    // `catalog show` gives each version by time.
    let id = parse_csv(std::fs::File::open(&catalog).unwrap()).unwrap()[0]
        .video_id
        .0
        .to_string();
    let then = s.ok(&["catalog", "show", &id, "--at", &days[0]]);
    assert!(stdout(&then).contains("version 1"), "{}", stdout(&then));
    let now = s.ok(&["catalog", "show", &id]);
    assert!(
        stdout(&now).contains("version 2") && stdout(&now).contains("_v2"),
        "{}",
        stdout(&now)
    );
    pool.close().await;
    s.drop_db().await;
}

#[tokio::test]
async fn a_change_in_the_middle_of_the_workload_splits_plays_by_ts_in_both_views() {
    let s = Scratch::new("catm");
    let (days, catalog) = setup(&s);
    let v2 = changed_catalog(&catalog, &days[1]);
    let mid = format!("{}T00:00:00Z", days[1]);
    let o = s.ok(&[
        "catalog",
        "load",
        v2.to_str().unwrap(),
        "--effective-from",
        &mid,
    ]);
    assert!(stdout(&o).contains("version 2"), "{}", stdout(&o));
    stream_and_batch(&s, &days);
    let pool = PgPool::connect(&s.url).await.unwrap();
    let before = views_agree(&s, &pool, &days[0]).await;
    let after = views_agree(&s, &pool, &days[1]).await;
    // Plays before `mid` take version 1, plays from it on version 2 (with its launch date:
    // every play of the second day of a catalog video is a new launch).
    assert!(before.iter().all(|r| !r.5.ends_with("_v2")), "{before:?}");
    assert!(
        after
            .iter()
            .all(|r| r.5 == "unknown" || (r.5.ends_with("_v2") && r.6)),
        "{after:?}"
    );
    assert!(after.iter().any(|r| r.5.ends_with("_v2")));
    // The audit names the version loaded after it took effect (here before the stream ran, so
    // nothing drifts); a day before the version has no note.
    let o = s.run(&["audit", "--date", &days[1]]);
    assert!(
        stdout(&o).contains("note: catalog version 2"),
        "{}",
        stdout(&o)
    );
    let o = s.run(&["audit", "--date", &days[0]]);
    assert!(!stdout(&o).contains("note:"), "{}", stdout(&o));
    pool.close().await;
    s.drop_db().await;
}
