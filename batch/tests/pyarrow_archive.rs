//! An archive written by pyarrow, as another tool would write it: int64 ids, microsecond
//! timestamps (naive for impressions, UTC for plays), dictionary and large strings, narrower
//! integers, an extra column, no session_id, small row groups, a `_SUCCESS` marker and a
//! `_staging` folder; plus two broken play rows (negative member_id, null country) that are
//! skipped and counted. The batch view still equals the reference.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use common::*;
use playsource_batch::{run_day, BatchOptions};
use playsource_domain::attribution::reference;
use playsource_domain::{AttributionConfig, Play};
use sqlx::PgPool;

const SCRIPT: &str = r#"
import json, sys, os
import pyarrow as pa, pyarrow.parquet as pq
from collections import defaultdict

root, events = sys.argv[1], sys.argv[2]
rows = {"impressions": defaultdict(list), "plays": defaultdict(list)}
for line in open(events):
    e = json.loads(line)
    h = e["ts_ms"] // 3_600_000
    day = h // 24
    import datetime
    date = (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()
    rows[e.pop("topic")][(date, h % 24)].append(e)

def dict_col(values):
    return pa.array(values, pa.string()).dictionary_encode()

for (date, hour), evs in rows["impressions"].items():
    d = f"{root}/impressions/date={date}/hour={hour:02d}"
    os.makedirs(d, exist_ok=True)
    t = pa.table({
        "ts": pa.array([e["ts_ms"] * 1000 for e in evs], pa.timestamp("us")),
        "event_id": pa.array([e["event_id"] for e in evs], pa.large_string()),
        "member_id": pa.array([e["member_id"] for e in evs], pa.int64()),
        "video_id": pa.array([e["video_id"] for e in evs], pa.int64()),
        "page": dict_col([e["page"] for e in evs]),
        "row_type": dict_col([e["row_type"] for e in evs]),
        "row_index": pa.array([e["row_index"] for e in evs], pa.int32()),
        "rank": pa.array([e["rank"] for e in evs], pa.int64()),
        "country": dict_col([e["country"] for e in evs]),
        "device": dict_col([e["device"] for e in evs]),
        "experiment": pa.array(["b"] * len(evs)),
    })
    pq.write_table(t, f"{d}/pyarrow-0.parquet", row_group_size=7)
    open(f"{d}/_SUCCESS", "w").close()

for (date, hour), evs in rows["plays"].items():
    d = f"{root}/plays/date={date}/hour={hour:02d}"
    os.makedirs(d, exist_ok=True)
    t = pa.table({
        "event_id": dict_col([e["event_id"] for e in evs]),
        "ts": pa.array([e["ts_ms"] * 1000 for e in evs], pa.timestamp("us", tz="UTC")),
        "member_id": pa.array([e["member_id"] for e in evs], pa.int64()),
        "video_id": pa.array([e["video_id"] for e in evs], pa.int64()),
        "country": dict_col([e["country"] for e in evs]),
        "device": pa.array([e["device"] for e in evs], pa.string()),
    })
    pq.write_table(t, f"{d}/pyarrow-0.parquet", row_group_size=5)
    os.makedirs(f"{d}/_staging", exist_ok=True)
    pq.write_table(t, f"{d}/_staging/ignored.parquet")
"#;

#[sqlx::test(migrations = "../migrations")]
async fn an_archive_written_by_pyarrow_is_read(pool: PgPool) {
    let d = day("2026-11-21");
    let w = workload(21, d.plus(-8), d, 50, 500);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let mut f = std::fs::File::create(&events).unwrap();
    for i in &w.impressions {
        let mut v = serde_json::to_value(i).unwrap();
        v["ts_ms"] = i.ts.0.into();
        v["topic"] = "impressions".into();
        writeln!(f, "{v}").unwrap();
    }
    for p in &w.plays {
        let mut v = serde_json::to_value(p).unwrap();
        v["ts_ms"] = p.ts.0.into();
        v["topic"] = "plays".into();
        writeln!(f, "{v}").unwrap();
    }
    // Two broken plays of D: a negative member_id and a null country.
    let noon = d.start().0 + 12 * 3_600_000;
    writeln!(f, r#"{{"topic":"plays","event_id":"bad-1","ts_ms":{noon},"member_id":-5,"video_id":1,"country":"US","device":"tv"}}"#).unwrap();
    writeln!(f, r#"{{"topic":"plays","event_id":"bad-2","ts_ms":{noon},"member_id":5,"video_id":1,"country":null,"device":"tv"}}"#).unwrap();
    drop(f);
    let archive = dir.path().join("archive");
    let out = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&archive)
        .arg(&events)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    insert_catalog(&pool, &w.catalog).await;
    let catalog = Arc::new(playsource_batch::load_catalog(&pool).await.unwrap());
    let s = run_day(&pool, catalog, &BatchOptions::new(&archive), d)
        .await
        .unwrap();

    let plays_of_d: Vec<Play<'_>> = w
        .plays
        .iter()
        .filter(|p| p.ts.day() == d)
        .cloned()
        .collect();
    let expected = reference::counts(
        &AttributionConfig::default(),
        &w.impressions,
        &plays_of_d,
        &catalog_of(&w.catalog),
    );
    assert!(expected.total() > 20);
    assert_eq!(
        batch_hourly(&pool, "batch_hourly", d).await,
        expected.hourly_rows()
    );
    assert_eq!(batch_video_daily(&pool, d).await, expected.video_rows());
    assert_eq!(s.plays_read.invalid, 2, "{:?}", s.plays_read);
    assert_eq!(s.plays_read.invalid_by_field.get("member_id"), Some(&1));
    assert_eq!(s.plays_read.invalid_by_field.get("country"), Some(&1));
    assert!(s
        .plays_read
        .first_invalid
        .as_deref()
        .unwrap_or("")
        .contains("pyarrow-0.parquet"));
    assert_eq!(s.impressions_read.invalid, 0);
}
