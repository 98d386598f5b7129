//! `gen --to archive`: Hive-style Parquet that pyarrow reads, with the row counts and column
//! types of the contract, deterministic file names and contents.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use playsource_archive::ArchiveLayout;
use playsource_domain::Ts;
use playsource_gen::sink_archive::write_archive;
use playsource_gen::{GenConfig, MessageKind, Topic, Traffic};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLAYSOURCE_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.services/venv/bin/python");
    assert!(
        p.exists(),
        "no Python with pyarrow at {}: run scripts/services.sh or set PLAYSOURCE_PYTHON",
        p.display()
    );
    p
}

const CHECK: &str = r#"
import json, sys
import pyarrow.dataset as ds
out = {}
for topic in ("imp-topic", "play-topic"):
    t = ds.dataset(sys.argv[1] + "/" + topic, format="parquet", partitioning="hive").to_table()
    out[topic] = {
        "rows": t.num_rows,
        "types": {f.name: str(f.type) for f in t.schema},
        "dates": sorted(set(str(d) for d in t.column("date").to_pylist())),
        "min_ts": str(t.column("ts").to_pylist()[0].tzinfo),
    }
print(json.dumps(out))
"#;

fn cfg() -> GenConfig {
    GenConfig {
        seed: 3,
        members: 150,
        videos: 300,
        start: Ts::parse_rfc3339("2026-11-20T00:00:00Z").unwrap(),
        days: 2,
        duplicate_share: 0.01,
        late_share: 0.01,
        malformed_share: 0.01,
        ..Default::default()
    }
}

#[test]
fn gen_to_archive_is_read_by_pyarrow() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let report = write_archive(
        Traffic::new(&cfg()).unwrap(),
        &layout,
        "imp-topic",
        "play-topic",
        3,
        None,
    )
    .unwrap();
    // Every non-malformed message is archived, per topic.
    let (mut want_imp, mut want_play) = (0u64, 0u64);
    for m in Traffic::new(&cfg()).unwrap() {
        match (m.kind, m.topic) {
            (MessageKind::Malformed, _) => {}
            (_, Topic::Impressions) => want_imp += 1,
            (_, Topic::Plays) => want_play += 1,
        }
    }
    assert_eq!(report.rows(), want_imp + want_play);
    assert!(report.counts.malformed > 0);
    for f in &report.files {
        let name = f.path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "gen-s3-00000.parquet");
    }

    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imp = &v["imp-topic"];
    assert_eq!(imp["rows"].as_u64().unwrap(), want_imp);
    assert_eq!(imp["types"]["ts"], "timestamp[ms, tz=UTC]");
    assert_eq!(imp["types"]["member_id"], "uint64");
    assert_eq!(imp["types"]["video_id"], "uint64");
    assert_eq!(imp["types"]["row_type"], "string");
    assert_eq!(
        imp["dates"],
        serde_json::json!(["2026-11-20", "2026-11-21"])
    );
    assert_eq!(imp["min_ts"], "UTC");
    let play = &v["play-topic"];
    assert_eq!(play["rows"].as_u64().unwrap(), want_play);
    assert_eq!(play["types"]["ts"], "timestamp[ms, tz=UTC]");
    assert_eq!(play["types"]["member_id"], "uint64");
    assert_eq!(play["types"]["session_id"], "string");
}

#[test]
fn same_seed_writes_the_same_files() {
    let write = || {
        let dir = tempfile::tempdir().unwrap();
        let report = write_archive(
            Traffic::new(&cfg()).unwrap(),
            &ArchiveLayout::new(dir.path()),
            "imp-topic",
            "play-topic",
            3,
            None,
        )
        .unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> = report
            .files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(dir.path()).unwrap().to_owned(),
                    std::fs::read(&f.path).unwrap(),
                )
            })
            .collect();
        files
    };
    let a = write();
    assert!(!a.is_empty());
    assert!(a == write(), "same config, same archive bytes");
}

#[test]
fn a_topic_name_that_is_not_a_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_archive(
        Traffic::new(&cfg()).unwrap(),
        &ArchiveLayout::new(dir.path()),
        "../escape",
        "plays",
        3,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("../escape"), "{err}");
}

/// `gen --to archive s3://...`: the same files, byte for byte, as on a local disk, on the S3
/// server `scripts/services.sh` starts (`PLAYSOURCE_S3_ENDPOINT`, bucket `PLAYSOURCE_S3_BUCKET`).
#[test]
fn gen_to_an_s3_archive_writes_the_local_files() {
    let Some((url, s3)) = playsource_archive::store::test_support::fresh_archive("gen") else {
        return;
    };
    let report = write_archive(
        Traffic::new(&cfg()).unwrap(),
        s3.clone(),
        "imp-topic",
        "play-topic",
        3,
        None,
    )
    .unwrap();
    assert!(report.files.iter().all(|f| f.path.starts_with(&url)));
    let dir = tempfile::tempdir().unwrap();
    let local = playsource_archive::ArchiveStore::local(dir.path());
    let want = write_archive(
        Traffic::new(&cfg()).unwrap(),
        local.clone(),
        "imp-topic",
        "play-topic",
        3,
        None,
    )
    .unwrap();
    assert_eq!(report.rows(), want.rows());
    let (on_s3, on_disk) = (s3.list("").unwrap(), local.list("").unwrap());
    assert_eq!(on_s3, on_disk);
    assert!(!on_s3.is_empty());
    for (rel, _) in &on_disk {
        assert_eq!(s3.get(rel).unwrap(), local.get(rel).unwrap(), "{rel}");
    }
}
