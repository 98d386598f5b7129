use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, DictionaryArray, Float64Array, Int32Array, Int64Array, LargeStringArray,
    StringArray, StringViewArray, TimestampMicrosecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt64Array,
};
use arrow::datatypes::{Field, Int8Type, Schema};

use super::*;
use crate::builders::PlaysBuilder;
use crate::layout::ArchiveLayout;
use crate::write::write_parquet_atomic;

const T0: i64 = 1_795_262_400_000; // 2026-11-21T12:00:00Z

fn write(path: &Path, cols: Vec<(&str, ArrayRef)>) {
    let schema = Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch =
        RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).unwrap();
    write_parquet_atomic(path, &[batch]).unwrap();
}

fn dict(values: &[&str]) -> ArrayRef {
    Arc::new(
        values
            .iter()
            .copied()
            .collect::<DictionaryArray<Int8Type>>(),
    )
}

#[test]
fn impressions_of_other_tools_types_are_read_and_bad_rows_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    let n = 6;
    write(
        &path,
        vec![
            (
                "EVENT_ID",
                Arc::new(LargeStringArray::from(vec!["a", "b", "c", "d", "e", "f"])) as ArrayRef,
            ),
            // Naive nanoseconds (read as UTC), one row a microsecond before T0 (floors to T0-1 ms).
            (
                "ts",
                Arc::new(TimestampNanosecondArray::from(vec![
                    T0 * 1_000_000,
                    T0 * 1_000_000 - 1_000,
                    T0 * 1_000_000,
                    T0 * 1_000_000,
                    T0 * 1_000_000,
                    T0 * 1_000_000,
                ])),
            ),
            (
                "member_id",
                Arc::new(Int64Array::from(vec![1, 2, -3, 4, 5, 6])),
            ),
            ("video_id", Arc::new(Int64Array::from(vec![Some(9); 6]))),
            ("page", dict(&["home"; 6])),
            (
                "row_type",
                Arc::new(StringViewArray::from(vec![
                    "top_picks",
                    "billboard",
                    "x",
                    "unattributed",
                    "top_picks",
                    "top_picks",
                ])),
            ),
            (
                "row_index",
                Arc::new(Int32Array::from(vec![0, 1, 2, 3, 70_000, 5])),
            ),
            (
                "rank",
                Arc::new(Int32Array::from(vec![
                    Some(0),
                    Some(1),
                    Some(2),
                    Some(3),
                    Some(4),
                    None,
                ])),
            ),
            (
                "country",
                Arc::new(BinaryArray::from(vec![
                    &b"US"[..],
                    b"GB",
                    b"US",
                    b"US",
                    b"US",
                    b"US",
                ])),
            ),
            ("device", Arc::new(StringArray::from(vec!["tv"; 6]))),
            ("extra", Arc::new(Float64Array::from(vec![0.5; 6]))),
        ],
    );
    let mut stats = ReadStats::default();
    let mut got = Vec::new();
    let reader = ImpressionReader::open(&path).unwrap();
    assert_eq!(reader.total_rows(), n);
    for b in reader {
        let b = b.unwrap();
        b.for_each(None, &mut stats, |_, i| got.push(i.into_owned()));
    }
    assert_eq!(got.len(), 2, "{stats:?}");
    assert_eq!(got[0].event_id, "a");
    assert_eq!(got[0].ts, Ts(T0));
    assert_eq!(got[1].ts, Ts(T0 - 1));
    assert_eq!(
        (
            got[1].row_type.as_ref(),
            got[1].country.as_ref(),
            got[1].row_index
        ),
        ("billboard", "GB", 1)
    );
    assert_eq!(stats.rows, 6);
    assert_eq!(stats.invalid, 4);
    for field in ["member_id", "row_type", "row_index", "rank"] {
        assert_eq!(
            stats.invalid_by_field.get(field),
            Some(&1),
            "{field}: {stats:?}"
        );
    }
    let first = stats.first_invalid.unwrap();
    assert!(
        first.contains("x.parquet row 2") && first.contains("member_id"),
        "{first}"
    );
}

#[test]
fn plays_without_session_id_and_with_seconds_and_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.parquet");
    write(
        &path,
        vec![
            ("event_id", dict(&["p1", "p2", "p3"])),
            (
                "ts",
                Arc::new(
                    TimestampSecondArray::from(vec![T0 / 1000, T0 / 1000 + 86_400, T0 / 1000])
                        .with_timezone("+02:00"),
                ),
            ),
            ("member_id", Arc::new(UInt64Array::from(vec![1, 2, 3]))),
            (
                "video_id",
                Arc::new(UInt64Array::from(vec![Some(7), Some(7), None])),
            ),
            ("country", dict(&["US", "US", "US"])),
            ("device", dict(&["tv", "tv", "tv"])),
        ],
    );
    let range = ts_range(Ts(T0).day()..=Ts(T0).day());
    let mut stats = ReadStats::default();
    let mut got = Vec::new();
    for b in PlayReader::open(&path).unwrap() {
        b.unwrap().for_each(Some(&range), &mut stats, |row, p| {
            got.push((row, p.into_owned()))
        });
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0);
    assert_eq!((got[0].1.ts, got[0].1.session_id.clone()), (Ts(T0), None));
    assert_eq!((stats.out_of_range, stats.invalid), (1, 1));
    assert_eq!(stats.invalid_by_field.get("video_id"), Some(&1));
}

#[test]
fn archive_written_files_round_trip_with_session_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("own.parquet");
    let mut b = PlaysBuilder::default();
    let play = Play {
        event_id: "e".into(),
        ts: Ts(T0),
        member_id: MemberId(u64::MAX),
        video_id: VideoId(3),
        country: "BR".into(),
        device: "web".into(),
        session_id: Some("s".into()),
    };
    b.push(&play, Some((1, 2)));
    write_parquet_atomic(&path, &[b.finish()]).unwrap();
    let mut stats = ReadStats::default();
    let mut got = Vec::new();
    for batch in PlayReader::open(&path).unwrap() {
        batch
            .unwrap()
            .for_each(None, &mut stats, |_, p| got.push(p.into_owned()));
    }
    assert_eq!(got, vec![play]);
}

#[test]
fn missing_or_mistyped_columns_and_non_parquet_files_name_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.parquet");
    write(
        &missing,
        vec![(
            "event_id",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )],
    );
    let err = PlayReader::open(&missing).err().unwrap().to_string();
    assert!(
        err.contains("missing.parquet") && err.contains("`ts`"),
        "{err}"
    );

    let mistyped = dir.path().join("mistyped.parquet");
    write(
        &mistyped,
        vec![
            (
                "event_id",
                Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
            ),
            ("ts", Arc::new(Float64Array::from(vec![1.0]))),
        ],
    );
    let err = ImpressionReader::open(&mistyped).err().unwrap().to_string();
    assert!(
        err.contains("mistyped.parquet") && err.contains("`ts` has type Float64"),
        "{err}"
    );

    let text = dir.path().join("text.parquet");
    std::fs::write(&text, "event_id,ts\n").unwrap();
    let err = PlayReader::open(&text).err().unwrap().to_string();
    assert!(
        err.contains("text.parquet") && err.contains("Parquet"),
        "{err}"
    );
}

#[test]
fn list_files_finds_data_files_of_the_days_only() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let d = Day::parse("2026-11-21").unwrap();
    let touch = |p: PathBuf| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    };
    touch(layout.partition_dir("plays", d, 3).join("b.parquet"));
    touch(layout.partition_dir("plays", d, 3).join("a.parquet"));
    touch(layout.partition_dir("plays", d, 1).join("z.parquet"));
    touch(layout.day_dir("plays", d).join("flat.parquet"));
    touch(layout.partition_dir("plays", d, 4).join(".a.parquet.tmp"));
    touch(layout.partition_dir("plays", d, 4).join("_SUCCESS"));
    touch(layout.partition_dir("plays", d, 4).join("notes.txt"));
    touch(
        layout
            .partition_dir("plays", d, 4)
            .join("_staging")
            .join("c.parquet"),
    );
    touch(
        layout
            .partition_dir("plays", d.plus(1), 0)
            .join("next.parquet"),
    );
    touch(
        layout
            .partition_dir("impressions", d, 0)
            .join("imp.parquet"),
    );
    let files = list_files(&layout, "plays", d..=d).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "plays/date=2026-11-21/flat.parquet",
            "plays/date=2026-11-21/hour=01/z.parquet",
            "plays/date=2026-11-21/hour=03/a.parquet",
            "plays/date=2026-11-21/hour=03/b.parquet",
        ]
    );
    assert_eq!(
        list_files(&layout, "plays", d..=d.plus(1)).unwrap().len(),
        5
    );
    assert!(list_files(&layout, "plays", d.plus(5)..=d.plus(6))
        .unwrap()
        .is_empty());
}

#[test]
fn microsecond_timestamps_with_time_zone_are_utc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("us.parquet");
    write(
        &path,
        vec![
            (
                "event_id",
                Arc::new(StringArray::from(vec!["p"])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![T0 * 1000 + 999])
                        .with_timezone("America/New_York"),
                ),
            ),
            ("member_id", Arc::new(Int64Array::from(vec![1]))),
            ("video_id", Arc::new(Int64Array::from(vec![1]))),
            ("country", Arc::new(StringArray::from(vec!["US"]))),
            ("device", Arc::new(StringArray::from(vec!["tv"]))),
            ("session_id", Arc::new(StringArray::from(vec![Some("s1")]))),
        ],
    );
    let mut stats = ReadStats::default();
    let mut got = Vec::new();
    for b in PlayReader::open(&path).unwrap() {
        b.unwrap()
            .for_each(None, &mut stats, |_, p| got.push(p.into_owned()));
    }
    assert_eq!(got[0].ts, Ts(T0));
    assert_eq!(got[0].session_id.as_deref(), Some("s1"));
}

#[test]
fn decimal_ids_and_rfc3339_text_timestamps_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spark.parquet");
    let ids = arrow::array::Decimal128Array::from(vec![
        Some(18_446_744_073_709_551_615i128),
        Some(-1),
        None,
    ])
    .with_precision_and_scale(20, 0)
    .unwrap();
    write(
        &path,
        vec![
            (
                "event_id",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(StringArray::from(vec![
                    "2026-11-21T14:00:00.5+02:00",
                    "2026-11-21T12:00:00Z",
                    "noon",
                ])),
            ),
            ("member_id", Arc::new(ids)),
            ("video_id", Arc::new(Int64Array::from(vec![1, 1, 1]))),
            ("country", Arc::new(StringArray::from(vec!["US"; 3]))),
            ("device", Arc::new(StringArray::from(vec!["tv"; 3]))),
        ],
    );
    let mut stats = ReadStats::default();
    let mut got = Vec::new();
    for b in PlayReader::open(&path).unwrap() {
        b.unwrap()
            .for_each(None, &mut stats, |_, p| got.push(p.into_owned()));
    }
    assert_eq!(got.len(), 1, "{stats:?}");
    assert_eq!(
        (got[0].member_id, got[0].ts),
        (MemberId(u64::MAX), Ts(T0 + 500))
    );
    assert_eq!(stats.invalid_by_field.get("member_id"), Some(&1));
    assert_eq!(stats.invalid_by_field.get("ts"), Some(&1));
}

/// A [`PairFilter`] reads only the rows of the pairs it accepts, whatever the ids' column types
/// and order in the file: the others are neither handed out nor validated (a bad row of another
/// pair is not counted), a bad row of an accepted pair still is, and null or non-positive ids
/// never pass.
#[test]
fn a_pair_filter_hands_out_only_the_rows_of_its_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let rel = "x.parquet";
    const N: usize = 8;
    let n = N;
    // video_id before member_id, unsigned and signed of different widths, a dictionary rank.
    write(
        &dir.path().join(rel),
        vec![
            (
                "video_id",
                Arc::new(UInt64Array::from(vec![
                    Some(9),
                    Some(9),
                    Some(8),
                    Some(9),
                    None,
                    Some(9),
                    Some(9),
                    Some(9),
                ])) as ArrayRef,
            ),
            (
                "event_id",
                Arc::new(StringArray::from(vec![
                    "a", "b", "c", "d", "e", "f", "g", "h",
                ])),
            ),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from(vec![T0 * 1_000; n])),
            ),
            (
                "member_id",
                Arc::new(Int32Array::from(vec![1, 2, 1, 1, 1, -1, 3, 1])),
            ),
            ("page", dict(&["home"; N])),
            (
                "row_type",
                Arc::new(StringArray::from(vec![
                    "top_picks",
                    "top_picks",
                    "top_picks",
                    "billboard",
                    "top_picks",
                    "top_picks",
                    "top_picks",
                    "top_picks",
                ])),
            ),
            ("row_index", Arc::new(Int64Array::from(vec![0; n]))),
            ("rank", Arc::new(Int64Array::from(vec![0; n]))),
            // Row 6 (member 3, filtered out) and row 7 (member 1, kept) break a rule.
            (
                "country",
                Arc::new(StringArray::from(vec![
                    "US", "US", "US", "US", "US", "US", "usa", "usa",
                ])),
            ),
            ("device", dict(&["tv"; N])),
        ],
    );
    let store = ArchiveStore::local(dir.path());
    let keep: PairFilter = Arc::new(|m, v| (m, v) == (1, 9));
    let mut reader = ImpressionReader::open_in_where(&store, rel, &keep).unwrap();
    assert_eq!(reader.total_rows(), n as u64);
    let (mut stats, mut got) = (ReadStats::default(), Vec::new());
    for b in reader.by_ref() {
        let b = b.unwrap();
        b.for_each(None, &mut stats, |_, i| got.push(i.into_owned()));
    }
    assert_eq!(reader.filtered_out(), 5);
    stats.add_filtered(reader.filtered_out());
    let ids: Vec<&str> = got.iter().map(|i| i.event_id.as_ref()).collect();
    assert_eq!(ids, ["a", "d"], "{stats:?}");
    assert_eq!(got[1].row_type, "billboard");
    assert_eq!(
        (stats.rows, stats.filtered, stats.accepted, stats.invalid),
        (8, 5, 2, 1),
        "{stats:?}"
    );
    assert_eq!(stats.invalid_by_field.get("country"), Some(&1));

    // Unfiltered, the same file hands out every row and counts both bad ones.
    let mut all = ReadStats::default();
    let mut reader = ImpressionReader::open_in(&store, rel).unwrap();
    for b in reader.by_ref() {
        b.unwrap().for_each(None, &mut all, |_, _| {});
    }
    assert_eq!(reader.filtered_out(), 0);
    assert_eq!((all.rows, all.filtered, all.invalid), (8, 0, 4), "{all:?}");
}
