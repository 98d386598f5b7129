#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use playsource_domain::{decode_impression, decode_play, Impression, Play, VideoId};

use super::*;
use crate::builders::{ImpressionsBuilder, PlaysBuilder};
use crate::write::write_parquet_atomic;

/// 2026-11-21T00:00:00Z in ms.
const DAY0: i64 = 1_795_219_200_000;
const MIN: i64 = 60_000;

fn imp(id: &str, ts: i64, member: u64) -> Impression<'static> {
    Impression {
        event_id: Cow::Owned(id.to_owned()),
        ts: Ts(ts),
        member_id: MemberId(member),
        video_id: VideoId(7),
        page: Cow::Borrowed("home"),
        row_type: Cow::Borrowed("top_picks"),
        row_index: 2,
        rank: 5,
        country: Cow::Borrowed("BR"),
        device: Cow::Borrowed("tv"),
    }
}

fn play(id: &str, ts: i64, member: u64) -> Play<'static> {
    Play {
        event_id: Cow::Owned(id.to_owned()),
        ts: Ts(ts),
        member_id: MemberId(member),
        video_id: VideoId(7),
        country: Cow::Borrowed("BR"),
        device: Cow::Borrowed("tv"),
        session_id: (member % 2 == 0).then(|| Cow::Owned(format!("s\"{member}"))),
    }
}

fn write_imps(path: &Path, events: &[Impression<'static>]) {
    let mut b = ImpressionsBuilder::with_capacity(events.len());
    for e in events {
        b.push(e, None);
    }
    write_parquet_atomic(path, &[b.finish()]).unwrap();
}

fn write_plays(path: &Path, events: &[Play<'static>]) {
    let mut b = PlaysBuilder::with_capacity(events.len());
    for e in events {
        b.push(e, None);
    }
    write_parquet_atomic(path, &[b.finish()]).unwrap();
}

fn hour_file(root: &Path, topic: &str, hour: u32, name: &str) -> PathBuf {
    ArchiveLayout::new(root).file_path(topic, Day((DAY0 / 86_400_000) as i32), hour, name)
}

fn all(merge: EventTimeMerge) -> (Vec<ReplayEvent>, EventTimeMerge) {
    let mut merge = merge;
    let mut out = Vec::new();
    while let Some(chunk) = merge.next_chunk().unwrap() {
        assert!(!chunk.is_empty());
        out.extend(chunk);
    }
    (out, merge)
}

fn ids(events: &[ReplayEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.topic {
            Topic::Impressions => decode_impression(e.json.as_bytes())
                .unwrap()
                .event_id
                .into_owned(),
            Topic::Plays => decode_play(e.json.as_bytes())
                .unwrap()
                .event_id
                .into_owned(),
        })
        .collect()
}

#[test]
fn merges_both_topics_in_event_time_order_over_a_half_open_range() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let h = |n: i64| DAY0 + n * 3_600_000;
    // Hour 05: before the range; an unreadable file there proves it is never opened.
    let skipped = hour_file(root, "imp", 5, "junk");
    std::fs::create_dir_all(skipped.parent().unwrap()).unwrap();
    std::fs::write(&skipped, b"not parquet").unwrap();
    // Hour 06: two files, rows out of order inside and across them.
    write_imps(
        &hour_file(root, "imp", 6, "a"),
        &[
            imp("i-0630", h(6) + 30 * MIN, 1),
            imp("i-0600-before", h(6) - 1, 2), // 05:59:59.999, out of range
            imp("i-0610", h(6) + 10 * MIN, 3),
        ],
    );
    write_imps(
        &hour_file(root, "imp", 6, "b"),
        &[imp("i-0620", h(6) + 20 * MIN, 4), imp("i-0600", h(6), 5)],
    );
    write_plays(
        &hour_file(root, "plays", 6, "a"),
        &[
            play("p-0620", h(6) + 20 * MIN, 4),
            play("p-0615", h(6) + 15 * MIN, 6),
        ],
    );
    // Hour 07: the range ends at 07:30 (exclusive).
    write_plays(
        &hour_file(root, "plays", 7, "a"),
        &[
            play("p-0730", h(7) + 30 * MIN, 1),
            play("p-0729", h(7) + 30 * MIN - 1, 2),
        ],
    );
    write_imps(
        &hour_file(root, "imp", 7, "a"),
        &[imp("i-0705", h(7) + 5 * MIN, 1)],
    );
    // `_staging` is never read, even inside the range.
    let staging = root.join("imp/date=2026-11-21/hour=06/_staging/x.parquet");
    write_imps(&staging, &[imp("i-staged", h(6) + MIN, 1)]);

    let layout = ArchiveLayout::new(root);
    let range = Ts(h(6))..Ts(h(7) + 30 * MIN);
    let topics = [(Topic::Impressions, "imp"), (Topic::Plays, "plays")];
    let parts = plan(&layout, &topics, &range).unwrap();
    let windows: Vec<(Topic, i64)> = parts
        .iter()
        .map(|p| (p.topic, (p.window.start.0 - DAY0) / 3_600_000))
        .collect();
    assert_eq!(
        windows,
        [
            (Topic::Impressions, 6),
            (Topic::Plays, 6),
            (Topic::Impressions, 7),
            (Topic::Plays, 7)
        ]
    );
    let (events, merge) = all(EventTimeMerge::new(parts, range.clone()));
    assert_eq!(
        ids(&events),
        ["i-0600", "i-0610", "p-0615", "i-0620", "p-0620", "i-0630", "i-0705", "p-0729"]
    );
    assert!(events.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(merge.out_of_order(), 0);
    assert_eq!(merge.files_read(), 5);
    assert_eq!(merge.stats(Topic::Impressions).accepted, 5);
    assert_eq!(merge.stats(Topic::Impressions).out_of_range, 1);
    assert_eq!(merge.stats(Topic::Plays).accepted, 3);
    assert_eq!(merge.stats(Topic::Plays).out_of_range, 1);

    // Only plays.
    let parts = plan(&layout, &topics[1..], &range).unwrap();
    let (events, _) = all(EventTimeMerge::new(parts, range.clone()));
    assert_eq!(ids(&events), ["p-0615", "p-0620", "p-0729"]);
    assert_eq!(events[0].key(), "6");
}

#[test]
fn json_is_the_contract_encoding_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let i = imp("i-\u{e9}\"x", DAY0 + 123, 42);
    let p = play("p-1", DAY0 + 456, 42);
    let p2 = play("p-2", DAY0 + 789, 43);
    write_imps(
        &hour_file(dir.path(), "impressions", 0, "a"),
        std::slice::from_ref(&i),
    );
    write_plays(
        &hour_file(dir.path(), "plays", 0, "a"),
        &[p.clone(), p2.clone()],
    );
    let layout = ArchiveLayout::new(dir.path());
    let range = Ts(DAY0)..Ts(DAY0 + 1000);
    let topics = [(Topic::Impressions, "impressions"), (Topic::Plays, "plays")];
    let parts = plan(&layout, &topics, &range).unwrap();
    let (events, _) = all(EventTimeMerge::new(parts, range));
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].json, i.to_json());
    assert_eq!(decode_impression(events[0].json.as_bytes()).unwrap(), i);
    assert_eq!(decode_play(events[1].json.as_bytes()).unwrap(), p);
    assert_eq!(decode_play(events[2].json.as_bytes()).unwrap(), p2);
    assert!(events[1].json.contains("\"session_id\":\"s\\\"42\""));
    assert!(!events[2].json.contains("session_id"));
    assert_eq!(events[0].key(), "42");
}

#[test]
fn day_level_files_and_misplaced_rows_are_merged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let h = |n: i64| DAY0 + n * 3_600_000;
    // Another tool partitioned by day only: its file covers the whole day.
    write_imps(
        &root.join("imp/date=2026-11-21/part-0.parquet"),
        &[
            imp("day-1030", h(10) + 30 * MIN, 1),
            imp("day-0100", h(1), 1),
        ],
    );
    // A non-hour sub-folder also covers the day.
    write_imps(
        &root.join("imp/date=2026-11-21/batch=3/part-0.parquet"),
        &[imp("sub-0300", h(3), 1)],
    );
    write_plays(
        &hour_file(root, "plays", 2, "a"),
        &[play("p-0200", h(2), 1)],
    );
    // A row filed under hour 04 though it happened at 01:30: handed out late, and counted.
    write_plays(
        &hour_file(root, "plays", 4, "a"),
        &[
            play("p-0400", h(4), 1),
            play("p-0130-misplaced", h(1) + 30 * MIN, 1),
        ],
    );
    // Folders that are not `date=` are ignored.
    write_plays(&root.join("plays/other/x.parquet"), &[play("x", h(2), 1)]);

    let layout = ArchiveLayout::new(root);
    let range = Ts(DAY0)..Ts(DAY0 + 86_400_000);
    let topics = [(Topic::Impressions, "imp"), (Topic::Plays, "plays")];
    let parts = plan(&layout, &topics, &range).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].window, Ts(DAY0)..Ts(DAY0 + 86_400_000));
    assert_eq!(parts[0].files.len(), 2);
    let (events, merge) = all(EventTimeMerge::new(parts, range));
    assert_eq!(
        ids(&events),
        [
            "day-0100",
            "p-0200",
            "sub-0300",
            "p-0130-misplaced",
            "p-0400",
            "day-1030"
        ]
    );
    assert_eq!(merge.out_of_order(), 1);
}

#[test]
fn nothing_planned_for_missing_folders_or_days_outside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let range = Ts(DAY0)..Ts(DAY0 + 1);
    let topics = [(Topic::Impressions, "imp"), (Topic::Plays, "plays")];
    assert!(plan(&layout, &topics, &range).unwrap().is_empty());
    write_plays(
        &hour_file(dir.path(), "plays", 1, "a"),
        &[play("p", DAY0 + 3_600_000, 1)],
    );
    assert!(plan(&layout, &topics, &range).unwrap().is_empty());
    let (events, merge) = all(EventTimeMerge::new(Vec::new(), range));
    assert!(events.is_empty());
    assert_eq!(merge.files_read(), 0);
}

#[test]
fn an_unreadable_file_in_range_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = hour_file(dir.path(), "plays", 0, "bad");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"nope").unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let range = Ts(DAY0)..Ts(DAY0 + 1000);
    let parts = plan(&layout, &[(Topic::Plays, "plays")], &range).unwrap();
    let err = EventTimeMerge::new(parts, range)
        .next_chunk()
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.parquet"), "{err}");
}
