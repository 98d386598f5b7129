//! The archive store on both kinds of root: a local folder and a real S3-protocol server (the one
//! `scripts/services.sh` starts: `PLAYSOURCE_S3_ENDPOINT`, default http://127.0.0.1:9000, bucket
//! `PLAYSOURCE_S3_BUCKET`, default `playsource-test`). Each test writes real Parquet files and
//! reads them back through the same code the batch layer uses.

#![allow(clippy::unwrap_used)]

use arrow::array::RecordBatch;
use playsource_archive::read::{PlayReader, ReadStats};
use playsource_archive::store::{is_url, test_support, ArchiveStore};
use playsource_archive::{Error, PlaysBuilder};
use playsource_domain::{decode_play, Day};

/// A fresh prefix of the test bucket on the S3 server (the shared set-up of
/// `playsource_archive::store::test_support`); `None` when the S3 tests are skipped.
fn s3_store(test: &str) -> Option<ArchiveStore> {
    test_support::fresh_archive(&format!("store-{test}")).map(|(_, store)| store)
}

fn plays(ids: &[&str]) -> RecordBatch {
    let mut b = PlaysBuilder::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let json = format!(
            r#"{{"event_id":"{id}","ts":"2026-11-21T07:0{}:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}}"#,
            i % 10
        );
        b.push(&decode_play(json.as_bytes()).unwrap(), Some((0, i as i64)));
    }
    b.finish()
}

fn read_ids(store: &ArchiveStore, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stats = ReadStats::default();
    for batch in PlayReader::open_in(store, rel).unwrap() {
        batch.unwrap().for_each(None, &mut stats, |_, play| {
            out.push(play.event_id.to_string())
        });
    }
    assert_eq!(stats.invalid, 0);
    out
}

fn check_put_list_read(store: &ArchiveStore) {
    let day = Day::parse("2026-11-21").unwrap();
    let published = "plays/date=2026-11-21/hour=07/p0-o0-1.parquet";
    let (rows, bytes) = store.put_parquet(published, &[plays(&["a", "b"])]).unwrap();
    assert_eq!(rows, 2);
    assert!(bytes > 0);
    // Work in progress and hidden files are not data files.
    store
        .put_parquet(
            "plays/date=2026-11-21/hour=07/_staging/p0-o2-2.parquet",
            &[plays(&["c"])],
        )
        .unwrap();
    store
        .put_parquet("plays/date=2026-11-21/_tmp/x.parquet", &[plays(&["d"])])
        .unwrap();
    store
        .put_parquet(
            "_staging/g/p0/plays/date=2026-11-21/hour=07/y.parquet",
            &[plays(&["e"])],
        )
        .unwrap();
    let files = store.list_data_files("plays", day..=day).unwrap();
    assert_eq!(files, vec![published.to_string()]);
    assert_eq!(read_ids(store, published), ["a", "b"]);
    let all = store.list("").unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().all(|(_, size)| *size > 0));
    assert_eq!(store.get(published).unwrap().len() as u64, bytes);
}

fn check_put_if_absent(store: &ArchiveStore) {
    let rel = "plays/date=2026-11-21/hour=07/compact.parquet";
    assert!(!store.exists(rel).unwrap());
    let first = store
        .put_parquet_if_absent(rel, &[plays(&["a", "b", "c"])])
        .unwrap();
    assert_eq!(first.map(|(rows, _)| rows), Some(3));
    // A second writer of the same name loses and the first file stays whole.
    let second = store.put_parquet_if_absent(rel, &[plays(&["x"])]).unwrap();
    assert_eq!(second, None);
    assert_eq!(read_ids(store, rel), ["a", "b", "c"]);
    store.delete(rel).unwrap();
    store.delete(rel).unwrap();
    assert!(!store.exists(rel).unwrap());
    assert!(store.list("plays").unwrap().is_empty());
}

fn check_missing_file(store: &ArchiveStore) {
    let rel = "plays/date=2026-11-21/hour=07/missing.parquet";
    let err = PlayReader::open_in(store, rel).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("missing.parquet"), "{msg}");
    assert!(store
        .list_data_files(
            "plays",
            Day::parse("2026-11-20").unwrap()..=Day::parse("2026-11-22").unwrap()
        )
        .unwrap()
        .is_empty());
}

/// Deleting a folder takes whole path segments: clearing `p1` leaves `p10` alone.
fn check_delete_dir(store: &ArchiveStore) {
    for rel in [
        "_staging/g/p1/e1/a.parquet",
        "_staging/g/p1/e2/b.parquet",
        "_staging/g/p10/e1/c.parquet",
    ] {
        store.put_parquet(rel, &[plays(&["x"])]).unwrap();
    }
    store.delete_dir("_staging/g/p1").unwrap();
    store.delete_dir("_staging/g/p1").unwrap();
    let left: Vec<String> = store
        .list("_staging")
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(left, ["_staging/g/p10/e1/c.parquet"]);
    assert!(store
        .move_file("_staging/g/p10/e1/c.parquet", "plays/c.parquet")
        .unwrap());
    assert!(!store
        .move_file("_staging/g/p10/e1/c.parquet", "plays/c.parquet")
        .unwrap());
    assert!(store.list("_staging").unwrap().is_empty());
    assert!(store.exists("plays/c.parquet").unwrap());
}

#[test]
fn local_delete_dir_and_move() {
    let dir = tempfile::tempdir().unwrap();
    check_delete_dir(&ArchiveStore::local(dir.path()));
}

#[test]
fn s3_delete_dir_and_move() {
    let Some(s3) = s3_store("deldir") else { return };
    check_delete_dir(&s3);
}

/// Replay plans and reads an object-store archive as it does the same archive on disk.
#[test]
fn replay_reads_an_s3_archive_like_a_local_one() {
    use playsource_archive::replay::{plan, plan_in, EventTimeMerge, Topic};
    use playsource_archive::{ArchiveLayout, PlaysWriter};
    let dir = tempfile::tempdir().unwrap();
    let Some(s3) = s3_store("replay") else { return };
    for store in [ArchiveStore::local(dir.path()), s3.clone()] {
        let mut w = PlaysWriter::in_store(store, "plays").unwrap();
        for (i, hour) in [7, 8, 8, 9].into_iter().enumerate() {
            let m = i + 1;
            let json = format!(
                r#"{{"event_id":"e{i}","ts":"2026-11-21T{hour:02}:1{i}:00Z","member_id":{m},"video_id":2,"country":"US","device":"tv"}}"#
            );
            w.push(&decode_play(json.as_bytes()).unwrap(), None);
        }
        w.flush("f1").unwrap();
    }
    let range = playsource_domain::Ts::parse_rfc3339("2026-11-21T07:30:00Z").unwrap()
        ..playsource_domain::Ts::parse_rfc3339("2026-11-21T09:00:00Z").unwrap();
    let topics = [(Topic::Plays, "plays")];
    let local = plan(&ArchiveLayout::new(dir.path()), &topics, &range).unwrap();
    let remote = plan_in(&s3, &topics, &range).unwrap();
    assert_eq!(remote.len(), 2, "{remote:?}");
    assert_eq!(
        remote.iter().map(|p| p.window.clone()).collect::<Vec<_>>(),
        local.iter().map(|p| p.window.clone()).collect::<Vec<_>>()
    );
    let events = |merge: EventTimeMerge| -> Vec<String> {
        merge
            .flat_map(|chunk| chunk.unwrap())
            .map(|e| e.json)
            .collect()
    };
    let want = events(EventTimeMerge::new(local, range.clone()));
    assert_eq!(want.len(), 2);
    assert_eq!(events(EventTimeMerge::in_store(s3, remote, range)), want);
}

#[test]
fn local_put_list_read() {
    let dir = tempfile::tempdir().unwrap();
    check_put_list_read(&ArchiveStore::local(dir.path()));
}

#[test]
fn s3_put_list_read() {
    let Some(s3) = s3_store("list") else { return };
    check_put_list_read(&s3);
}

#[test]
fn local_put_if_absent_writes_a_name_once() {
    let dir = tempfile::tempdir().unwrap();
    check_put_if_absent(&ArchiveStore::local(dir.path()));
}

#[test]
fn s3_put_if_absent_writes_a_name_once() {
    let Some(s3) = s3_store("absent") else { return };
    check_put_if_absent(&s3);
}

#[test]
fn local_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    check_missing_file(&ArchiveStore::local(dir.path()));
}

#[test]
fn s3_missing_file_is_a_clear_error() {
    let Some(s3) = s3_store("missing") else {
        return;
    };
    check_missing_file(&s3);
}

#[test]
fn locations() {
    assert!(!is_url("./data/archive"));
    assert!(!is_url("/srv/archive"));
    assert!(is_url("s3://bucket/prefix"));
    let local = ArchiveStore::open("./data/archive").unwrap();
    assert_eq!(
        local.local_root(),
        Some(std::path::Path::new("./data/archive"))
    );
    let file = ArchiveStore::open("file:///srv/archive").unwrap();
    assert_eq!(
        file.local_root(),
        Some(std::path::Path::new("/srv/archive"))
    );
    for bad in ["ftp://host/x", "s3:///prefix-only"] {
        let err = ArchiveStore::open(bad).unwrap_err();
        assert!(matches!(err, Error::Location { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("s3://bucket/prefix"), "{err}");
    }
    let s3 = ArchiveStore::open("s3://bucket/some/prefix/").unwrap();
    assert!(s3.local_root().is_none());
    assert_eq!(
        s3.describe("plays/x.parquet"),
        std::path::PathBuf::from("s3://bucket/some/prefix/plays/x.parquet")
    );
}

/// What the batch layer needs besides reading: sizes of listed files (one listing per folder on
/// an object store), copies, whole-file writes, folders, and described paths back to relative
/// ones.
fn check_batch_ops(store: &ArchiveStore) {
    let (a, b) = (
        "plays/date=2026-11-21/hour=07/a.parquet",
        "plays/date=2026-11-21/hour=08/b.parquet",
    );
    store.put_parquet(a, &[plays(&["a1", "a2"])]).unwrap();
    store.put_parquet(b, &[plays(&["b1"])]).unwrap();
    let listed = store.list("plays").unwrap();
    let rels = vec![
        b.to_owned(),
        a.to_owned(),
        "plays/date=2026-11-21/hour=09/gone.parquet".to_owned(),
    ];
    let sizes = store.sizes(&rels).unwrap();
    assert_eq!(sizes[0], listed[1].1);
    assert_eq!(sizes[1], listed[0].1);
    assert_eq!(sizes[2], 0, "a file gone counts 0");
    assert!(sizes[0] > 0);

    store.copy_file(a, "copies/x/a.parquet").unwrap();
    assert_eq!(read_ids(store, "copies/x/a.parquet"), ["a1", "a2"]);
    store.copy_file(b, "copies/x/a.parquet").unwrap();
    assert_eq!(
        read_ids(store, "copies/x/a.parquet"),
        ["b1"],
        "a copy replaces"
    );
    assert_eq!(read_ids(store, a), ["a1", "a2"], "the source stays");

    store.put_bytes("raw/one.bin", b"hello".to_vec()).unwrap();
    store.put_bytes("raw/one.bin", b"again".to_vec()).unwrap();
    assert_eq!(&store.get("raw/one.bin").unwrap()[..], b"again");
    assert_eq!(
        store.list("raw").unwrap().len(),
        1,
        "no temporary file left"
    );

    store.create_dir("empty/dir").unwrap();
    assert!(store.dir_exists("copies/x").unwrap());
    assert!(!store.dir_exists("nothing/here").unwrap());
    let described = store.describe("copies/x");
    assert_eq!(store.rel_of(&described).as_deref(), Some("copies/x"));
    assert_eq!(
        store.rel_of(std::path::Path::new("/elsewhere/copies/x")),
        None
    );
}

#[test]
fn local_batch_ops() {
    let dir = tempfile::tempdir().unwrap();
    check_batch_ops(&ArchiveStore::local(dir.path()));
}

#[test]
fn s3_batch_ops() {
    let Some(s3) = s3_store("batchops") else {
        return;
    };
    check_batch_ops(&s3);
}
