//! Crash-safe Parquet writes, and the [`PartitionedWriter`] that buffers one topic's events by
//! their (day, hour) archive partition.
//!
//! A file is written as a hidden temporary file `.<name>.tmp` in its final folder, fsynced,
//! renamed into place and its folder fsynced: readers (which skip names starting with `.` or
//! `_`, as Spark and pyarrow do) see either the whole file or nothing, even after a crash.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use playsource_domain::Day;

use crate::builders::{EventBuilder, ImpressionsBuilder, PlaysBuilder};
use crate::error::Error;
use crate::layout::{
    check_file_stem, check_topic_dir, date_segment, hour_segment, partition_of, ArchiveLayout,
    PARQUET_EXT,
};
use crate::metrics;
use crate::store::ArchiveStore;

/// Most rows in one Parquet row group.
pub const MAX_ROW_GROUP_ROWS: usize = 1_000_000;
/// Rows a [`PartitionedWriter`] gathers into one in-memory record batch before starting the next.
pub const BATCH_ROWS: usize = 65_536;
/// The zstd level of archive files.
const ZSTD_LEVEL: i32 = 3;

/// The writer properties of every archive file: zstd, row groups of at most
/// [`MAX_ROW_GROUP_ROWS`] rows, page and column-chunk statistics.
pub fn writer_properties() -> WriterProperties {
    writer_properties_builder().build()
}

/// The builder of [`writer_properties`], to add footer metadata.
pub(crate) fn writer_properties_builder() -> WriterPropertiesBuilder {
    let zstd = ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
}

/// The folder of `path` (created durably) and the hidden temporary file `.<name>.tmp` beside it
/// that an atomic write fills before renaming it onto `path`.
fn temporary_beside(path: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let name = path.file_name().ok_or_else(|| Error::Io {
        action: "write a file at",
        path: path.to_path_buf(),
        cause: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        ),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dirs_durably(&dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    Ok((dir, tmp))
}

/// Writes already encoded bytes to `path` atomically, as [`write_parquet_atomic`] does (hidden
/// temporary file, fsync, rename, folder fsync).
pub(crate) fn write_bytes_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let (dir, tmp) = temporary_beside(path)?;
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(data).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("rename the temporary file onto", path))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |cause| Error::Io {
        action,
        path,
        cause,
    }
}

/// Writes `batches` (all of one schema; at least one, possibly empty, to give the schema) as one
/// Parquet file at `path`, atomically: a temporary `.<name>.tmp` beside it is written, fsynced
/// and renamed over `path`, then the folder is fsynced. Missing folders are created. On failure
/// no file is left at `path` (an existing one stays as it was) and the temporary file is removed.
/// Returns the number of rows written.
pub fn write_parquet_atomic(path: &Path, batches: &[RecordBatch]) -> Result<u64, Error> {
    write_file(path, batches).map(|(rows, _bytes)| rows)
}

/// Like [`write_parquet_atomic`], returning (rows, bytes).
pub(crate) fn write_file(path: &Path, batches: &[RecordBatch]) -> Result<(u64, u64), Error> {
    let first = batches.first().ok_or_else(|| Error::NoBatches {
        path: path.to_path_buf(),
    })?;
    let (dir, tmp) = temporary_beside(path)?;
    let result = write_tmp_then_rename(&tmp, path, &dir, first, batches);
    if result.is_err() {
        // Best effort: the temporary file is hidden from readers anyway.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_tmp_then_rename(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    first: &RecordBatch,
    batches: &[RecordBatch],
) -> Result<(u64, u64), Error> {
    let file = File::create(tmp).map_err(io_err("create", tmp))?;
    let parquet_err = |cause| Error::Parquet {
        action: "written",
        path: path.to_path_buf(),
        cause,
    };
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        first.schema(),
        Some(writer_properties()),
    )
    .map_err(parquet_err)?;
    let mut rows = 0u64;
    for batch in batches {
        writer.write(batch).map_err(parquet_err)?;
        rows += batch.num_rows() as u64;
    }
    let mut buffered = writer.into_inner().map_err(parquet_err)?;
    buffered.flush().map_err(io_err("write", tmp))?;
    let file = buffered
        .into_inner()
        .map_err(|e| io_err("write", tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err("fsync", tmp))?;
    let bytes = file.metadata().map_err(io_err("stat", tmp))?.len();
    drop(file);
    fs::rename(tmp, path).map_err(io_err("rename the temporary file onto", path))?;
    sync_dir(dir)?;
    Ok((rows, bytes))
}

/// Creates `dir` and its missing ancestors, fsyncing each parent whose entries changed so the
/// new folders survive a crash.
fn create_dirs_durably(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    fs::create_dir_all(dir).map_err(io_err("create the directory", dir))?;
    for d in missing.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync the directory", dir))
}

/// One file a [`PartitionedWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    /// The file's path.
    pub path: PathBuf,
    /// Its partition's UTC day.
    pub day: Day,
    /// Its partition's UTC hour, 0..=23.
    pub hour: u32,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

struct Pending<B> {
    builder: B,
    batches: Vec<RecordBatch>,
    rows: usize,
}

/// Buffers the events of one topic by their (day, hour) partition and writes one Parquet file
/// per partition on [`PartitionedWriter::flush`].
pub struct PartitionedWriter<B: EventBuilder> {
    store: ArchiveStore,
    topic_dir: String,
    parts: BTreeMap<(Day, u32), Pending<B>>,
    rows: usize,
}

/// A [`PartitionedWriter`] of `impressions`.
pub type ImpressionsWriter = PartitionedWriter<ImpressionsBuilder>;
/// A [`PartitionedWriter`] of `plays`.
pub type PlaysWriter = PartitionedWriter<PlaysBuilder>;

impl<B: EventBuilder> PartitionedWriter<B> {
    /// A writer of the topic folder `topic_dir` (the topic's name) under `layout`. Fails when the
    /// name is not a Kafka topic name (it must be a single path segment).
    pub fn new(layout: ArchiveLayout, topic_dir: &str) -> Result<Self, Error> {
        Self::in_store(ArchiveStore::local(layout.root()), topic_dir)
    }

    /// A writer of the topic folder `topic_dir` of an archive that may be an object store.
    pub fn in_store(store: ArchiveStore, topic_dir: &str) -> Result<Self, Error> {
        check_topic_dir(topic_dir)?;
        Ok(PartitionedWriter {
            store,
            topic_dir: topic_dir.to_owned(),
            parts: BTreeMap::new(),
            rows: 0,
        })
    }

    /// The topic folder this writer writes to.
    pub fn topic_dir(&self) -> &str {
        &self.topic_dir
    }

    /// Buffers one event with its Kafka (partition, offset), if it came from Kafka.
    pub fn push(&mut self, event: &B::Event<'_>, provenance: Option<(i32, i64)>) {
        let key = partition_of(B::event_ts(event));
        let pending = self.parts.entry(key).or_insert_with(|| Pending {
            builder: B::default(),
            batches: Vec::new(),
            rows: 0,
        });
        pending.builder.push(event, provenance);
        pending.rows += 1;
        if pending.builder.len() >= BATCH_ROWS {
            pending.batches.push(pending.builder.finish());
        }
        self.rows += 1;
    }

    /// Buffered rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The (day, hour) partitions with buffered rows, ascending.
    pub fn partitions(&self) -> impl Iterator<Item = (Day, u32)> + '_ {
        self.parts.keys().copied()
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.parts.clear();
        self.rows = 0;
    }

    /// Writes every buffered partition to `<partition dir>/<file_stem>.parquet` (replacing a
    /// file of that name, so a retried flush with the same stem is idempotent) and empties the
    /// buffer. Files are written in (day, hour) order. If a write fails, the partitions already
    /// written stay written and the rest stay buffered, so a retry with the same stem completes
    /// the flush. Nothing buffered gives no file.
    pub fn flush(&mut self, file_stem: &str) -> Result<Vec<WrittenFile>, Error> {
        check_file_stem(file_stem)?;
        let mut written = Vec::with_capacity(self.parts.len());
        let keys: Vec<(Day, u32)> = self.parts.keys().copied().collect();
        let topic = self.topic_dir.clone();
        for (day, hour) in keys {
            let Some(pending) = self.parts.get_mut(&(day, hour)) else {
                continue;
            };
            if !pending.builder.is_empty() {
                pending.batches.push(pending.builder.finish());
            }
            let rel = format!(
                "{}/{}/{}/{file_stem}.{PARQUET_EXT}",
                self.topic_dir,
                date_segment(day),
                hour_segment(hour)
            );
            let path = self.store.describe(&rel);
            match self.store.put_parquet(&rel, &pending.batches) {
                Ok((rows, bytes)) => {
                    self.rows -= pending.rows;
                    self.parts.remove(&(day, hour));
                    ::metrics::counter!(metrics::FILES_WRITTEN, "topic" => topic.clone())
                        .increment(1);
                    ::metrics::counter!(metrics::ROWS_WRITTEN, "topic" => topic.clone())
                        .increment(rows);
                    ::metrics::counter!(metrics::BYTES_WRITTEN, "topic" => topic.clone())
                        .increment(bytes);
                    tracing::debug!(path = %path.display(), rows, bytes, "archive file written");
                    written.push(WrittenFile {
                        path,
                        day,
                        hour,
                        rows,
                        bytes,
                    });
                }
                Err(e) => {
                    ::metrics::counter!(metrics::WRITE_ERRORS, "topic" => topic.clone())
                        .increment(1);
                    return Err(e);
                }
            }
        }
        Ok(written)
    }
}
