//! Right-sized, exactly-once files (docs/reference.md §5): the pending area and its compaction.
//!
//! The stream moves each committed flush's small files to
//! `_pending/<topic>/date=D/hour=HH/p<p>-o<first>-<last>.parquet` (readers skip `_` folders).
//! Compacting (topic, partition p, D, HH) writes ONE file `<topic>/date=D/hour=HH/p<p>.parquet`
//! holding the rows of the previous `p<p>.parquet` (if any) and of every pending file of that
//! partition and hour it does not cover yet, and records in its footer's key-value metadata
//! ([`COVERS_KEY`]) the stems of every pending file it covers (the old ones and the new ones).
//! The write replaces the file atomically (one PUT; locally a temporary file renamed over it),
//! and only then are the covered pending files deleted. A crash at any step leaves either the old
//! file and the pending files, or the new file and pending files it covers (deleted by the next
//! compaction, skipped by [`crate::ArchiveStore::list_data_files`]), never a row twice or none.
//!
//! This module decides nothing about *when* an hour is compacted, nor who may do it: the stream
//! does (after its watermark passed the hour, when idle, before exiting), under its partition
//! lease.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader};
use parquet::file::reader::ChunkReader;
use playsource_domain::Day;

use crate::error::Error;
use crate::layout::{date_segment, hour_segment, stream_file_range, PARQUET_EXT};
use crate::store::ArchiveStore;
use crate::write::writer_properties_builder;

/// The folder of committed files not yet compacted into the Hive layout.
pub const PENDING_DIR: &str = "_pending";
/// The footer key listing the pending files (their stems, comma-separated) a compacted file holds.
pub const COVERS_KEY: &str = "playsource.covers";
/// Rows read from a source file at a time while compacting.
const COPY_BATCH_ROWS: usize = 65_536;

/// `_pending/<topic>/date=D/hour=HH`.
pub fn pending_hour_dir(topic_dir: &str, day: Day, hour: u32) -> String {
    format!(
        "{PENDING_DIR}/{topic_dir}/{}/{}",
        date_segment(day),
        hour_segment(hour)
    )
}

/// `<topic>/date=D/hour=HH/p<p>.parquet`: the one published file of a topic-partition's hour.
pub fn published_path(topic_dir: &str, day: Day, hour: u32, partition: u32) -> String {
    format!(
        "{topic_dir}/{}/{}/p{partition}.{PARQUET_EXT}",
        date_segment(day),
        hour_segment(hour)
    )
}

/// The published file that holds the rows of the pending file `rel`, and that file's offset
/// range: `_pending/<t>/date=D/hour=H/p<p>-o<a>-<b>.parquet` gives
/// (`<t>/date=D/hour=H/p<p>.parquet`, a..=b). `None` for any other path.
pub fn published_of_pending(rel: &str) -> Option<(String, RangeInclusive<i64>)> {
    let below = rel.strip_prefix(PENDING_DIR)?.strip_prefix('/')?;
    let (dir, name) = below.rsplit_once('/')?;
    let (p, first, last) = stream_file_range(name)?;
    Some((format!("{dir}/p{p}.{PARQUET_EXT}"), first..=last))
}

/// The pending-file stems the published file `rel` covers; empty when it does not exist (or
/// carries no such metadata, e.g. a file written by another tool).
pub fn published_covers(store: &ArchiveStore, rel: &str) -> Result<BTreeSet<String>, Error> {
    let Some(footer) = store.footer(rel)? else {
        return Ok(BTreeSet::new());
    };
    let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(|cause| Error::Parquet {
        action: "read (its footer)",
        path: store.describe(rel),
        cause,
    })?;
    let covers = meta
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key == COVERS_KEY)
        .filter_map(|kv| kv.value.as_deref())
        .flat_map(|v| v.split(','))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(covers)
}

/// The pending files of partition `partition` in `_pending/<topic>/date=D/hour=HH`, as
/// (stem, path relative to the root), in offset order.
pub fn pending_files(
    store: &ArchiveStore,
    topic_dir: &str,
    day: Day,
    hour: u32,
    partition: u32,
) -> Result<Vec<(String, String)>, Error> {
    let dir = pending_hour_dir(topic_dir, day, hour);
    let mut out: Vec<(i64, String, String)> = Vec::new();
    for (rel, _) in store.list(&dir)? {
        let Some(name) = rel.rsplit('/').next() else {
            continue;
        };
        let Some((p, first, _)) = stream_file_range(name) else {
            continue;
        };
        if p == partition && rel.len() == dir.len() + 1 + name.len() {
            let stem = name.trim_end_matches(".parquet").to_owned();
            out.push((first, stem, rel));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, s, r)| (s, r)).collect())
}

/// What [`write_published`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// The published file (`<topic>/date=D/hour=HH/p<p>.parquet`).
    pub path: String,
    /// Whether a new version of it was written (false: every pending file was covered already).
    pub written: bool,
    /// Rows in the published file (when written).
    pub rows: u64,
    /// Its size in bytes (when written).
    pub bytes: u64,
    /// Pending files now covered by the published file: delete them with [`delete_covered`].
    pub covered: Vec<String>,
}

/// Writes the new version of `<topic>/date=D/hour=HH/p<p>.parquet`: the rows of the current one
/// and of every pending file of that partition and hour it does not cover yet, with the union of
/// the covers in its footer. `None` when nothing is pending. `before_write` is called once the
/// new file is encoded, just before it replaces the old one (a test hook). Deletes nothing: the
/// caller deletes `covered` once the write is done ([`delete_covered`]).
pub fn write_published(
    store: &ArchiveStore,
    topic_dir: &str,
    day: Day,
    hour: u32,
    partition: u32,
    before_write: &dyn Fn(),
) -> Result<Option<Published>, Error> {
    let pending = pending_files(store, topic_dir, day, hour, partition)?;
    if pending.is_empty() {
        return Ok(None);
    }
    let path = published_path(topic_dir, day, hour, partition);
    let mut covers = published_covers(store, &path)?;
    let covered: Vec<String> = pending.iter().map(|(_, rel)| rel.clone()).collect();
    let new: Vec<&(String, String)> = pending
        .iter()
        .filter(|(stem, _)| !covers.contains(stem))
        .collect();
    if new.is_empty() {
        return Ok(Some(Published {
            path,
            covered,
            ..Published::default()
        }));
    }
    let old_exists = !covers.is_empty() || store.exists(&path)?;
    let mut sources: Vec<&str> = Vec::with_capacity(new.len() + 1);
    if old_exists {
        sources.push(&path);
    }
    sources.extend(new.iter().map(|(_, rel)| rel.as_str()));
    covers.extend(new.iter().map(|(stem, _)| stem.clone()));
    let covers_value = covers.into_iter().collect::<Vec<_>>().join(",");
    let (rows, data) = encode_union(store, &path, &sources, covers_value)?;
    before_write();
    let bytes = data.len() as u64;
    store.put_bytes(&path, data)?;
    Ok(Some(Published {
        path,
        written: true,
        rows,
        bytes,
        covered,
    }))
}

/// Deletes the pending files a published file covers (a missing one is not an error).
/// `between` is called after each deletion (a test hook).
pub fn delete_covered(
    store: &ArchiveStore,
    covered: &[String],
    between: &dyn Fn(),
) -> Result<(), Error> {
    for rel in covered {
        store.delete(rel)?;
        between();
    }
    Ok(())
}

/// Encodes the rows of every file of `sources` (in order) as one Parquet file with `covers` in
/// its footer. Reads a row group's worth at a time; only the encoded output is held whole.
fn encode_union(
    store: &ArchiveStore,
    target: &str,
    sources: &[&str],
    covers: String,
) -> Result<(u64, Vec<u8>), Error> {
    let props = writer_properties_builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(COVERS_KEY.to_owned(), covers)]))
        .build();
    let write_err = |cause| Error::Parquet {
        action: "written",
        path: store.describe(target),
        cause,
    };
    let mut writer: Option<(ArrowWriter<Vec<u8>>, Arc<Schema>)> = None;
    let mut rows = 0u64;
    for rel in sources {
        let mut copy = |batch: RecordBatch| -> Result<(), Error> {
            if writer.is_none() {
                // Without the source's metadata (an old file's covers must not be carried over).
                let schema = Arc::new(Schema::new(batch.schema().fields().clone()));
                let w = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props.clone()))
                    .map_err(write_err)?;
                writer = Some((w, schema));
            }
            let Some((w, schema)) = writer.as_mut() else {
                return Ok(());
            };
            let batch = RecordBatch::try_new(Arc::clone(schema), batch.columns().to_vec())
                .map_err(|cause| Error::Arrow {
                    path: store.describe(rel),
                    cause,
                })?;
            rows += batch.num_rows() as u64;
            w.write(&batch).map_err(write_err)
        };
        match store.local_root() {
            Some(root) => {
                let path = root.join(rel);
                let file = std::fs::File::open(&path).map_err(|cause| Error::Io {
                    action: "open",
                    path: path.clone(),
                    cause,
                })?;
                copy_rows(store, rel, file, &mut copy)?;
            }
            None => copy_rows(store, rel, store.get(rel)?, &mut copy)?,
        }
    }
    let Some((w, _)) = writer else {
        return Err(Error::NoBatches {
            path: store.describe(target),
        });
    };
    let data = w.into_inner().map_err(write_err)?;
    Ok((rows, data))
}

fn copy_rows<R: ChunkReader + 'static>(
    store: &ArchiveStore,
    rel: &str,
    file: R,
    copy: &mut dyn FnMut(RecordBatch) -> Result<(), Error>,
) -> Result<(), Error> {
    let read_err = |cause| Error::Parquet {
        action: "read",
        path: store.describe(rel),
        cause,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(COPY_BATCH_ROWS).build())
        .map_err(read_err)?;
    for batch in reader {
        let batch = batch.map_err(|cause| Error::Arrow {
            path: store.describe(rel),
            cause,
        })?;
        copy(batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
