//! Corrupt, truncated and foreign files in the archive: the readers the batch layer uses
//! ([`ImpressionReader`], [`PlayReader`]) must answer with an [`Error`] naming the file, or read
//! what they can and count bad rows in [`ReadStats`], and never panic. The batch layer stops the
//! day on such an error (`playsource batch` exits non-zero naming the file), so a damaged file is
//! never half-used silently.
//!
//! Every damaged file is read in full (open, every record batch, every row decoded); a panic is
//! caught and reported with the damage that caused it, so one run lists every failing case.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use playsource_archive::read::{ImpressionReader, PlayReader, ReadStats};
use playsource_archive::{write::writer_properties, Error, ImpressionsBuilder, PlaysBuilder};

use common::{impression, play, DAY0};

use playsource_domain::Topic;

/// Reads a whole file the way the batch layer does; stops at the first error.
fn read_all(topic: Topic, path: &Path) -> Result<ReadStats, Error> {
    let mut stats = ReadStats::default();
    match topic {
        Topic::Impressions => {
            for batch in ImpressionReader::open(path)? {
                batch?.for_each(None, &mut stats, |_, i| assert!(!i.event_id.is_empty()));
            }
        }
        Topic::Plays => {
            for batch in PlayReader::open(path)? {
                batch?.for_each(None, &mut stats, |_, p| assert!(!p.event_id.is_empty()));
            }
        }
    }
    Ok(stats)
}

/// What reading a damaged file gave.
#[derive(Default)]
struct Outcomes {
    errors: usize,
    /// Errors from a panic inside the parquet crate, caught by the reader.
    caught: usize,
    read: usize,
    panics: Vec<String>,
}

impl Outcomes {
    /// Writes `bytes` to `path`, reads it, and records the outcome under `what`.
    fn try_bytes(&mut self, topic: Topic, path: &Path, bytes: &[u8], what: &str) {
        std::fs::write(path, bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| read_all(topic, path))) {
            Ok(Ok(stats)) => {
                assert!(stats.accepted + stats.invalid + stats.out_of_range <= stats.rows);
                self.read += 1;
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&path.display().to_string()),
                    "{what}: the error does not name the file: {msg}"
                );
                self.errors += 1;
                self.caught += usize::from(msg.contains("stopped on an internal check"));
            }
            Err(payload) => {
                let why = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                self.panics.push(format!("{topic:?} {what}: {why}"));
            }
        }
    }

    fn assert_no_panic(&self) {
        eprintln!(
            "{} files read, {} errors ({} caught panics of the parquet crate)",
            self.read, self.errors, self.caught
        );
        assert!(
            self.panics.is_empty(),
            "{} damaged files made a reader panic (errors: {}, read: {}):\n{}",
            self.panics.len(),
            self.errors,
            self.read,
            self.panics.join("\n")
        );
    }
}

/// A deterministic xorshift generator, so a failing case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writer settings of the files damaged: the archive's own (zstd, page statistics), and
/// uncompressed ones where a flipped byte lands on raw lengths, offsets and dictionary keys.
fn variants() -> Vec<(&'static str, WriterProperties)> {
    let plain = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_encoding(Encoding::PLAIN)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(64)
        .set_max_row_group_row_count(Some(300))
        .build();
    let dict = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(true)
        .set_data_page_row_count_limit(100)
        .build();
    let snappy = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    vec![
        ("archive", writer_properties()),
        ("plain", plain),
        ("dictionary", dict),
        ("snappy", snappy),
    ]
}

fn batch(topic: Topic, rows: u64) -> RecordBatch {
    match topic {
        Topic::Impressions => {
            let mut b = ImpressionsBuilder::with_capacity(rows as usize);
            for i in 0..rows {
                b.push(&impression(i, DAY0 + i as i64 * 1000), Some((0, i as i64)));
            }
            b.finish()
        }
        Topic::Plays => {
            let mut b = PlaysBuilder::with_capacity(rows as usize);
            for i in 0..rows {
                b.push(&play(i, DAY0 + i as i64 * 1000), None);
            }
            b.finish()
        }
    }
}

/// A valid file of `rows` events written with `props`.
fn valid_file(topic: Topic, rows: u64, props: WriterProperties) -> Vec<u8> {
    let b = batch(topic, rows);
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
    w.write(&b).unwrap();
    w.close().unwrap();
    out
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.parquet");
    (dir, path)
}

#[test]
fn the_undamaged_files_read_in_full() {
    let (_dir, path) = scratch();
    for topic in [Topic::Impressions, Topic::Plays] {
        for (name, props) in variants() {
            std::fs::write(&path, valid_file(topic, 500, props)).unwrap();
            let stats = read_all(topic, &path).unwrap();
            assert_eq!((stats.rows, stats.accepted), (500, 500), "{topic:?} {name}");
        }
    }
}

#[test]
fn truncated_files_are_errors_naming_the_file() {
    let (_dir, path) = scratch();
    let mut out = Outcomes::default();
    for topic in [Topic::Impressions, Topic::Plays] {
        for (name, props) in variants() {
            let full = valid_file(topic, 500, props);
            // Every length near the ends, and a stride through the middle.
            let lens = (0..64.min(full.len()))
                .chain((64..full.len().saturating_sub(600)).step_by(97))
                .chain(full.len().saturating_sub(600)..full.len());
            for len in lens {
                out.try_bytes(
                    topic,
                    &path,
                    &full[..len],
                    &format!("{name} cut to {len} of {}", full.len()),
                );
            }
        }
    }
    out.assert_no_panic();
    // A cut file has no footer: every one is an error, none is read.
    assert_eq!(out.read, 0);
}

#[test]
fn flipped_bytes_in_the_footer_never_panic() {
    let (_dir, path) = scratch();
    let mut out = Outcomes::default();
    let mut rng = Rng(0x5eed_f00d);
    for topic in [Topic::Impressions, Topic::Plays] {
        for (name, props) in variants() {
            let full = valid_file(topic, 300, props);
            let meta_len =
                u32::from_le_bytes(full[full.len() - 8..full.len() - 4].try_into().unwrap())
                    as usize;
            let footer = full.len() - 8 - meta_len..full.len();
            // Every footer byte of the archive's own files set to telling values,
            // then random multi-byte damage in all of them.
            let every_byte = if name == "archive" {
                footer.clone()
            } else {
                0..0
            };
            for at in every_byte {
                for v in [0xff, full[at] ^ 0x01] {
                    let mut bytes = full.clone();
                    bytes[at] = v;
                    out.try_bytes(
                        topic,
                        &path,
                        &bytes,
                        &format!("{name} footer byte {at} = {v:#04x}"),
                    );
                }
            }
            for case in 0..300 {
                let mut bytes = full.clone();
                for _ in 0..1 + rng.below(8) {
                    let at = footer.start + rng.below(footer.len());
                    bytes[at] = rng.next() as u8;
                }
                out.try_bytes(
                    topic,
                    &path,
                    &bytes,
                    &format!("{name} random footer damage #{case}"),
                );
            }
        }
    }
    out.assert_no_panic();
}

#[test]
fn flipped_bytes_in_the_data_never_panic() {
    let (_dir, path) = scratch();
    let mut out = Outcomes::default();
    let mut rng = Rng(0xda7a_da7a);
    for topic in [Topic::Impressions, Topic::Plays] {
        for (name, props) in variants() {
            let full = valid_file(topic, 300, props);
            let meta_len =
                u32::from_le_bytes(full[full.len() - 8..full.len() - 4].try_into().unwrap())
                    as usize;
            let data = 4..full.len() - 8 - meta_len;
            for case in 0..400 {
                let mut bytes = full.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = data.start + rng.below(data.len());
                    bytes[at] = match rng.below(3) {
                        0 => bytes[at] ^ (1 << rng.below(8)),
                        1 => 0xff,
                        _ => rng.next() as u8,
                    };
                }
                out.try_bytes(topic, &path, &bytes, &format!("{name} data damage #{case}"));
            }
        }
    }
    out.assert_no_panic();
}

#[test]
fn foreign_and_random_files_are_errors() {
    let (_dir, path) = scratch();
    let mut out = Outcomes::default();
    let mut rng = Rng(0xbad_f11e);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("magic only".into(), b"PAR1".to_vec()),
        ("two magics".into(), b"PAR1PAR1".to_vec()),
        (
            "zero-length footer".into(),
            [b"PAR1".as_slice(), &0u32.to_le_bytes(), b"PAR1"].concat(),
        ),
        (
            "footer longer than the file".into(),
            [b"PAR1".as_slice(), &u32::MAX.to_le_bytes(), b"PAR1"].concat(),
        ),
        (
            "csv".into(),
            b"event_id,ts\ne1,2026-11-21T00:00:00Z\n".to_vec(),
        ),
        ("json".into(), br#"{"event_id":"e1"}"#.to_vec()),
        (
            "encrypted-footer magic".into(),
            [
                b"PAR1".as_slice(),
                &[0u8; 32],
                &32u32.to_le_bytes(),
                b"PARE",
            ]
            .concat(),
        ),
    ];
    for n in 0..200 {
        let len = rng.below(4096);
        let mut body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Often a plausible frame: magic at both ends and a footer length inside the file.
        if n % 2 == 0 {
            let footer = rng.below(len + 1) as u32;
            body = [b"PAR1".as_slice(), &body, &footer.to_le_bytes(), b"PAR1"].concat();
        }
        cases.push((format!("random #{n} ({} bytes)", body.len()), body));
    }
    for topic in [Topic::Impressions, Topic::Plays] {
        for (what, bytes) in &cases {
            out.try_bytes(topic, &path, bytes, what);
        }
    }
    out.assert_no_panic();
    assert_eq!(out.read, 0, "random bytes were read as Parquet");
    // The error says what to check.
    std::fs::write(&path, b"not parquet").unwrap();
    let e = read_all(Topic::Plays, &path).unwrap_err().to_string();
    assert!(e.contains("is it a Parquet file?"), "{e}");
}

#[test]
fn a_file_of_another_schema_is_an_error_naming_the_column() {
    let (_dir, path) = scratch();
    // A valid Parquet file of plays read as impressions: `page` is missing.
    std::fs::write(&path, valid_file(Topic::Plays, 10, writer_properties())).unwrap();
    let e = read_all(Topic::Impressions, &path).unwrap_err().to_string();
    assert!(
        e.contains("`page`") && e.contains(&path.display().to_string()),
        "{e}"
    );
    // Nested columns under the right names are refused, not misread.
    let nested = RecordBatch::try_from_iter([(
        "event_id",
        Arc::new(arrow::array::ListArray::from_iter_primitive::<
            arrow::datatypes::Int32Type,
            _,
            _,
        >([Some(vec![Some(1)])])) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), nested.schema(), None).unwrap();
    w.write(&nested).unwrap();
    w.close().unwrap();
    let e = read_all(Topic::Plays, &path).unwrap_err().to_string();
    assert!(e.contains("event_id"), "{e}");
}
