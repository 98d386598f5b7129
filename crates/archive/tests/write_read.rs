//! Archive files round-trip through parquet's own reader and through pyarrow, and writes are
//! atomic.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType, UInt64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use playsource_archive::{
    schema, write_parquet_atomic, ArchiveLayout, Error, ImpressionsBuilder, ImpressionsWriter,
    PlaysWriter,
};
use playsource_domain::{Day, HOUR_MS};

use common::{impression, play, run_python, DAY0};

fn read_all(path: &std::path::Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn partitioned_writer_round_trips_through_parquet_reader() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let mut w = ImpressionsWriter::new(layout.clone(), "impressions").unwrap();
    // Hours 0 and 1 of day 0, and hour 23 of the day before.
    let events: Vec<_> = (0..300u64)
        .map(|i| {
            let ts = match i % 3 {
                0 => DAY0 + i as i64,
                1 => DAY0 + HOUR_MS + i as i64,
                _ => DAY0 - 1 - i as i64,
            };
            impression(i, ts)
        })
        .collect();
    for (i, e) in events.iter().enumerate() {
        w.push(e, (i % 2 == 0).then_some((3, i as i64)));
    }
    assert_eq!(w.len(), 300);
    let written = w.flush("p3-o0").unwrap();
    assert!(w.is_empty());
    let day0 = Day::parse("2026-11-21").unwrap();
    let paths: Vec<_> = written
        .iter()
        .map(|f| f.path.strip_prefix(dir.path()).unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "impressions/date=2026-11-20/hour=23/p3-o0.parquet",
            "impressions/date=2026-11-21/hour=00/p3-o0.parquet",
            "impressions/date=2026-11-21/hour=01/p3-o0.parquet",
        ]
        .map(std::path::PathBuf::from)
    );
    assert_eq!(written[1].day, day0);
    assert_eq!(written[2].hour, 1);
    assert!(written.iter().all(|f| f.rows == 100 && f.bytes > 0));

    // Every row of hour 0 comes back with the same values, in push order.
    let batches = read_all(&written[1].path);
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(batch.schema(), schema::impressions_schema());
    let expected: Vec<_> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .collect();
    assert_eq!(batch.num_rows(), expected.len());
    let ids = batch.column_by_name("event_id").unwrap().as_string::<i32>();
    let ts = batch
        .column_by_name("ts")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    let video = batch
        .column_by_name("video_id")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let offset = batch
        .column_by_name("_offset")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    for (row, (i, e)) in expected.iter().enumerate() {
        assert_eq!(ids.value(row), e.event_id);
        assert_eq!(ts.value(row), e.ts.0);
        assert_eq!(video.value(row), e.video_id.0);
        if i % 2 == 0 {
            assert_eq!(offset.value(row), *i as i64);
        } else {
            assert!(offset.is_null(row));
        }
    }
}

#[test]
fn large_partitions_span_several_batches_and_row_groups_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = PlaysWriter::new(ArchiveLayout::new(dir.path()), "plays").unwrap();
    let n = playsource_archive::write::BATCH_ROWS as u64 * 2 + 17;
    for i in 0..n {
        w.push(&play(i, DAY0 + (i % 1000) as i64), None);
    }
    let written = w.flush("part-00000").unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].rows, n);
    let file = File::open(&written[0].path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = builder.metadata().clone();
    assert_eq!(meta.file_metadata().num_rows() as u64, n);
    for rg in meta.row_groups() {
        assert!(rg.num_rows() as usize <= playsource_archive::write::MAX_ROW_GROUP_ROWS);
        // Statistics are on, so readers can prune by ts.
        assert!(rg.column(1).statistics().is_some());
    }
    let rows: usize = builder
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows as u64, n);
}

#[test]
fn failed_write_leaves_no_parquet_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t/date=2026-11-21/hour=00/x.parquet");
    let mut b = ImpressionsBuilder::default();
    b.push(&impression(1, DAY0), None);
    let good = b.finish();
    assert_eq!(
        write_parquet_atomic(&path, std::slice::from_ref(&good)).unwrap(),
        1
    );
    let before = std::fs::read(&path).unwrap();

    // A second batch of another schema makes the writer fail half-way.
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1i64]))],
    )
    .unwrap();
    let err = write_parquet_atomic(&path, &[good.clone(), other]).unwrap_err();
    assert!(matches!(err, Error::Parquet { .. }), "{err}");
    assert!(err.to_string().contains("x.parquet"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["x.parquet"], "temporary file left behind");

    // A folder that cannot be created (a plain file is in the way): no file, a clear error.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"not a folder").unwrap();
    let target = blocked.join("hour=00/y.parquet");
    let err = write_parquet_atomic(&target, &[good]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(err.to_string().contains("writable"), "{err}");
    assert!(!target.exists());
}

#[test]
fn no_batches_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.parquet");
    let err = write_parquet_atomic(&path, &[]).unwrap_err();
    assert!(matches!(err, Error::NoBatches { .. }), "{err}");
    assert!(!path.exists());
    // An empty batch gives a valid empty file with the schema.
    let empty = ImpressionsBuilder::default().finish();
    assert_eq!(write_parquet_atomic(&path, &[empty]).unwrap(), 0);
    assert_eq!(
        read_all(&path).iter().map(|b| b.num_rows()).sum::<usize>(),
        0
    );
}

#[test]
fn bad_names_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    assert!(matches!(
        ImpressionsWriter::new(layout.clone(), "../escape"),
        Err(Error::TopicDir { .. })
    ));
    let mut w = ImpressionsWriter::new(layout, "impressions").unwrap();
    w.push(&impression(1, DAY0), None);
    let err = w.flush(".hidden").unwrap_err();
    assert!(matches!(err, Error::FileStem { .. }), "{err}");
    // Nothing was lost: the event is still buffered.
    assert_eq!(w.len(), 1);
    assert_eq!(w.flush("ok").unwrap().len(), 1);
}

#[test]
fn a_failed_flush_can_be_retried_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let mut w = PlaysWriter::new(layout.clone(), "plays").unwrap();
    for i in 0..40u64 {
        w.push(&play(i, DAY0 + (i % 4) as i64 * HOUR_MS), None);
    }
    // Hour 2's folder is blocked by a file.
    let day = Day::parse("2026-11-21").unwrap();
    let blocker = layout.partition_dir("plays", day, 2);
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"").unwrap();
    let err = w.flush("f1").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(w.len(), 20, "hours 0 and 1 written, 2 and 3 still buffered");
    std::fs::remove_file(&blocker).unwrap();
    let written = w.flush("f1").unwrap();
    assert_eq!(written.iter().map(|f| f.hour).collect::<Vec<_>>(), [2, 3]);
    let total: usize = (0..4)
        .map(|h| {
            read_all(&layout.file_path("plays", day, h, "f1"))
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(total, 40);
}

const PYARROW_CHECK: &str = r#"
import json, sys
import pyarrow.dataset as ds
out = {}
for topic in ("impressions", "plays"):
    d = ds.dataset(sys.argv[1] + "/" + topic, format="parquet", partitioning="hive")
    t = d.to_table()
    out[topic] = {
        "rows": t.num_rows,
        "types": {f.name: str(f.type) for f in t.schema},
        "first_ts": str(t.sort_by("event_id").column("ts")[0]),
        "hours": sorted(set(t.column("hour").to_pylist())),
    }
print(json.dumps(out))
"#;

#[test]
fn pyarrow_reads_the_archive_with_utc_timestamps_and_64_bit_ids() {
    let dir = tempfile::tempdir().unwrap();
    let layout = ArchiveLayout::new(dir.path());
    let mut imps = ImpressionsWriter::new(layout.clone(), "impressions").unwrap();
    let mut plays = PlaysWriter::new(layout, "plays").unwrap();
    for i in 0..50u64 {
        imps.push(&impression(i, DAY0 + 1234 + (i % 2) as i64 * HOUR_MS), None);
        plays.push(&play(i, DAY0 + 5678), Some((0, i as i64)));
    }
    imps.flush("part-0").unwrap();
    plays.flush("part-0").unwrap();
    // A leftover temporary file must be ignored by readers.
    std::fs::write(
        dir.path()
            .join("plays/date=2026-11-21/hour=00/.part-1.parquet.tmp"),
        b"garbage",
    )
    .unwrap();

    let out = run_python(PYARROW_CHECK, &[dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let imp = &v["impressions"];
    assert_eq!(imp["rows"], 50);
    assert_eq!(imp["types"]["ts"], "timestamp[ms, tz=UTC]");
    assert_eq!(imp["types"]["member_id"], "uint64");
    assert_eq!(imp["types"]["video_id"], "uint64");
    assert_eq!(imp["types"]["row_index"], "uint16");
    assert_eq!(imp["types"]["row_type"], "string");
    assert_eq!(imp["hours"], serde_json::json!([0, 1]));
    assert_eq!(imp["first_ts"], "2026-11-21 00:00:01.234000+00:00");
    let pl = &v["plays"];
    assert_eq!(pl["rows"], 50);
    assert_eq!(pl["types"]["ts"], "timestamp[ms, tz=UTC]");
    assert_eq!(pl["types"]["session_id"], "string");
    assert_eq!(pl["types"]["_offset"], "int64");
    assert_eq!(pl["first_ts"], "2026-11-21 00:00:05.678000+00:00");
}

#[test]
fn ts_column_is_a_utc_millisecond_timestamp_in_parquet_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.parquet");
    let mut b = ImpressionsBuilder::default();
    b.push(&impression(1, DAY0), None);
    write_parquet_atomic(&path, &[b.finish()]).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    let field = builder.schema().field_with_name("ts").unwrap().clone();
    assert_eq!(
        field.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    // The Parquet logical type itself says UTC-adjusted millis, for readers that ignore the
    // embedded Arrow schema (Spark, DuckDB).
    let descr = builder.parquet_schema().column(1);
    let logical = format!("{:?}", descr.logical_type_ref());
    assert!(logical.contains("is_adjusted_to_u_t_c: true"), "{logical}");
    assert!(logical.contains("MILLIS"), "{logical}");
}
