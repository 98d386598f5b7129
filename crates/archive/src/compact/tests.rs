use super::*;
use crate::builders::PlaysBuilder;
use crate::read::PlayReader;
use playsource_domain::decode_play;

/// A pending file of partition `p` at hour 10 of 2026-11-21 holding `offsets`.
fn pending(store: &ArchiveStore, p: u32, offsets: std::ops::RangeInclusive<i64>) -> String {
    let mut b = PlaysBuilder::with_capacity(8);
    for o in offsets.clone() {
        let json = format!(
            r#"{{"event_id":"e{p}-{o}","ts":"2026-11-21T10:00:{:02}Z","member_id":1,"video_id":2,"country":"US","device":"tv"}}"#,
            o % 60
        );
        b.push(&decode_play(json.as_bytes()).unwrap(), Some((p as i32, o)));
    }
    let rel = format!(
        "{}/p{p}-o{}-{}.parquet",
        pending_hour_dir("plays", day(), 10),
        offsets.start(),
        offsets.end()
    );
    store.put_parquet(&rel, &[b.finish()]).unwrap();
    rel
}

fn day() -> Day {
    Day::parse("2026-11-21").unwrap()
}

/// Every (partition, offset) our readers see, in listing order.
fn offsets(store: &ArchiveStore) -> Vec<String> {
    let mut out = Vec::new();
    for rel in store.list_data_files("plays", day()..=day()).unwrap() {
        for b in PlayReader::open_in(store, &rel).unwrap() {
            b.unwrap().for_each(None, &mut Default::default(), |_, e| {
                out.push(e.event_id.to_string())
            });
        }
    }
    out.sort();
    out
}

#[test]
fn an_hour_compacts_into_one_file_that_says_what_it_covers() {
    let root = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(root.path());
    let a = pending(&store, 3, 0..=4);
    let b = pending(&store, 3, 5..=9);
    let other = pending(&store, 4, 0..=1);
    let ids =
        |p: u32, os: &[i64]| -> Vec<String> { os.iter().map(|o| format!("e{p}-{o}")).collect() };
    let mut all = ids(3, &(0..10).collect::<Vec<_>>());
    all.extend(ids(4, &[0, 1]));
    all.sort();
    assert_eq!(
        offsets(&store),
        all,
        "pending files are read before compaction"
    );

    let done = write_published(&store, "plays", day(), 10, 3, &|| {})
        .unwrap()
        .unwrap();
    assert!(done.written);
    assert_eq!(done.rows, 10);
    assert_eq!(done.path, "plays/date=2026-11-21/hour=10/p3.parquet");
    assert_eq!(done.covered, vec![a.clone(), b.clone()]);
    let covers = published_covers(&store, &done.path).unwrap();
    assert_eq!(
        covers.into_iter().collect::<Vec<_>>(),
        ["p3-o0-4", "p3-o5-9"]
    );
    // Killed before the deletions: the covered pending files are not read again.
    assert_eq!(offsets(&store), all);
    delete_covered(&store, &done.covered[..1], &|| {}).unwrap();
    assert_eq!(offsets(&store), all, "killed mid-way through the deletions");
    // A later pending file of the same hour (a late event) is added by the next compaction.
    let c = pending(&store, 3, 20..=20);
    let again = write_published(&store, "plays", day(), 10, 3, &|| {})
        .unwrap()
        .unwrap();
    assert!(again.written);
    assert_eq!(again.rows, 11);
    assert_eq!(again.covered, vec![b, c]);
    delete_covered(&store, &again.covered, &|| {}).unwrap();
    all.push("e3-20".to_owned());
    all.sort();
    assert_eq!(offsets(&store), all);
    assert!(write_published(&store, "plays", day(), 10, 3, &|| {})
        .unwrap()
        .is_none());
    assert!(store.exists(&other).unwrap());
    let files = store.list_data_files("plays", day()..=day()).unwrap();
    assert_eq!(
        files,
        [other.as_str(), "plays/date=2026-11-21/hour=10/p3.parquet"]
    );
}

#[test]
fn a_pending_file_compacted_after_listing_is_read_from_the_published_file() {
    let root = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(root.path());
    pending(&store, 1, 0..=2);
    let listed = store.list_data_files("plays", day()..=day()).unwrap();
    let b = pending(&store, 1, 3..=5);
    let done = write_published(&store, "plays", day(), 10, 1, &|| {})
        .unwrap()
        .unwrap();
    delete_covered(&store, &done.covered, &|| {}).unwrap();
    assert!(!store.exists(&b).unwrap());
    // `listed` names a pending file that is gone: its rows (offsets 0..=2 only) still come.
    let mut seen = Vec::new();
    for rel in &listed {
        for batch in PlayReader::open_in(&store, rel).unwrap() {
            batch
                .unwrap()
                .for_each(None, &mut Default::default(), |_, e| {
                    seen.push(e.event_id.to_string())
                });
        }
    }
    assert_eq!(seen, ["e1-0", "e1-1", "e1-2"]);
    // The same through a full path (how the batch layer opens local files).
    let mut by_path = Vec::new();
    for rel in &listed {
        for batch in PlayReader::open(&root.path().join(rel)).unwrap() {
            batch
                .unwrap()
                .for_each(None, &mut Default::default(), |_, e| {
                    by_path.push(e.event_id.to_string())
                });
        }
    }
    assert_eq!(by_path, seen);
    // A path that is not a pending file still fails when missing.
    assert!(PlayReader::open_in(&store, "plays/date=2026-11-21/hour=10/gone.parquet").is_err());
}

#[test]
fn pending_paths_name_their_published_file() {
    assert_eq!(
        published_of_pending("_pending/plays/date=2026-11-21/hour=07/p2-o5-9.parquet"),
        Some(("plays/date=2026-11-21/hour=07/p2.parquet".to_owned(), 5..=9))
    );
    assert_eq!(
        published_of_pending("plays/date=2026-11-21/hour=07/p2-o5-9.parquet"),
        None
    );
    assert_eq!(
        published_of_pending("_pending/plays/date=2026-11-21/hour=07/x.parquet"),
        None
    );
}
