//! The day's enriched plays (the training set) as Parquet under
//! `<archive>/enriched_plays/date=YYYY-MM-DD/`: one row per counted play, the fields of
//! [`playsource_domain::EnrichedPlay`] flattened (`sop_*` and `sod_*` columns describe the source
//! impressions), `ts` columns as UTC millisecond timestamps.
//!
//! A run writes its files into a fresh folder under `enriched_plays/_staging/` (which Spark,
//! DuckDB and pyarrow skip) and swaps it into place once the batch view is published. On a local
//! root the swap is two renames, so the final folder is never seen half-written. On an object
//! store (no folder rename there) each staged file is copied over the same name in
//! `date=D/` (each copy is atomic: a reader sees the old file or the new one), then the old files
//! the new run did not write are deleted; a reader listing the folder during the swap may see
//! some old files beside new ones, which hold the same rows when the inputs did not change.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use playsource_archive::layout::{date_segment, ENRICHED_DIR};
use playsource_archive::ArchiveStore;
use playsource_domain::attribution::{Attribution, ImpressionRecord, PlayRecord};
use playsource_domain::catalog::Enrichment;
use playsource_domain::{Day, Interner, UNATTRIBUTED};

use crate::error::Error;

/// Rows gathered in memory before they are handed to the Parquet writer.
const FLUSH_ROWS: usize = 65_536;
/// The folder under `enriched_plays/` where runs stage their output.
pub const STAGING_DIR: &str = "_staging";

/// The Arrow schema of the enriched plays files.
pub fn enriched_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
            let s = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
            Arc::new(Schema::new(vec![
                s("event_id", false),
                Field::new("ts", ts(), false),
                Field::new("member_id", DataType::UInt64, false),
                Field::new("video_id", DataType::UInt64, false),
                s("country", false),
                s("device", false),
                s("session_id", true),
                Field::new("revision", DataType::UInt32, false),
                s("sop_row", false),
                s("sod_row", false),
                s("sop_event_id", true),
                Field::new("sop_ts", ts(), true),
                Field::new("sop_row_index", DataType::UInt16, true),
                Field::new("sop_rank", DataType::UInt16, true),
                s("sod_event_id", true),
                Field::new("sod_ts", ts(), true),
                Field::new("sod_row_index", DataType::UInt16, true),
                Field::new("sod_rank", DataType::UInt16, true),
                s("title", true),
                s("genre", false),
                s("kind", true),
                Field::new("launch_date", DataType::Date32, true),
                Field::new("is_new_launch", DataType::Boolean, false),
            ]))
        })
        .clone()
}

/// The columns of one source impression.
struct SourceCols {
    row: StringBuilder,
    event_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    row_index: UInt16Builder,
    rank: UInt16Builder,
}

impl SourceCols {
    fn new() -> SourceCols {
        SourceCols {
            row: StringBuilder::new(),
            event_id: StringBuilder::new(),
            ts: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            row_index: UInt16Builder::new(),
            rank: UInt16Builder::new(),
        }
    }

    fn push(&mut self, names: &Interner, imp: Option<&ImpressionRecord>) {
        match imp {
            Some(i) => {
                self.row.append_value(names.resolve(i.row_type));
                // Writes the id straight into the column, without a String per row.
                let _ = write!(self.event_id, "{}", i.event_id);
                self.event_id.append_value("");
                self.ts.append_value(i.ts.0);
                self.row_index.append_value(i.row_index);
                self.rank.append_value(i.rank);
            }
            None => {
                self.row.append_value(UNATTRIBUTED);
                self.event_id.append_null();
                self.ts.append_null();
                self.row_index.append_null();
                self.rank.append_null();
            }
        }
    }
}

/// Builds record batches of enriched plays.
struct EnrichedBuilder {
    event_id: StringBuilder,
    ts: TimestampMillisecondBuilder,
    member_id: UInt64Builder,
    video_id: UInt64Builder,
    country: StringBuilder,
    device: StringBuilder,
    session_id: StringBuilder,
    revision: UInt32Builder,
    sop: SourceCols,
    sod: SourceCols,
    title: StringBuilder,
    genre: StringBuilder,
    kind: StringBuilder,
    launch_date: Date32Builder,
    is_new_launch: BooleanBuilder,
    rows: usize,
}

impl EnrichedBuilder {
    fn new() -> EnrichedBuilder {
        EnrichedBuilder {
            event_id: StringBuilder::new(),
            ts: TimestampMillisecondBuilder::new().with_timezone("UTC"),
            member_id: UInt64Builder::new(),
            video_id: UInt64Builder::new(),
            country: StringBuilder::new(),
            device: StringBuilder::new(),
            session_id: StringBuilder::new(),
            revision: UInt32Builder::new(),
            sop: SourceCols::new(),
            sod: SourceCols::new(),
            title: StringBuilder::new(),
            genre: StringBuilder::new(),
            kind: StringBuilder::new(),
            launch_date: Date32Builder::new(),
            is_new_launch: BooleanBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, names: &Interner, play: &PlayRecord, att: &Attribution, e: &Enrichment<'_>) {
        let _ = write!(self.event_id, "{}", play.event_id);
        self.event_id.append_value("");
        self.ts.append_value(play.ts.0);
        self.member_id.append_value(play.member_id.0);
        self.video_id.append_value(play.video_id.0);
        self.country.append_value(names.resolve(play.country));
        self.device.append_value(names.resolve(play.device));
        self.session_id.append_option(play.session_id.as_deref());
        // The batch layer's attribution is final: never corrected, so revision 0.
        self.revision.append_value(0);
        self.sop.push(names, att.sop.as_ref());
        self.sod.push(names, att.sod.as_ref());
        self.title.append_option(e.meta.map(|m| m.title.as_str()));
        self.genre.append_value(e.genre);
        self.kind.append_option(e.meta.map(|m| m.kind.as_str()));
        self.launch_date
            .append_option(e.meta.map(|m| m.launch_date.0));
        self.is_new_launch.append_value(e.is_new_launch);
        self.rows += 1;
    }

    fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        self.rows = 0;
        let (sop, sod) = (&mut self.sop, &mut self.sod);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.member_id.finish()),
            Arc::new(self.video_id.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.device.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.revision.finish()),
            Arc::new(sop.row.finish()),
            Arc::new(sod.row.finish()),
            Arc::new(sop.event_id.finish()),
            Arc::new(sop.ts.finish()),
            Arc::new(sop.row_index.finish()),
            Arc::new(sop.rank.finish()),
            Arc::new(sod.event_id.finish()),
            Arc::new(sod.ts.finish()),
            Arc::new(sod.row_index.finish()),
            Arc::new(sod.rank.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.genre.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.launch_date.finish()),
            Arc::new(self.is_new_launch.finish()),
        ];
        RecordBatch::try_new(enriched_schema(), cols)
    }
}

/// Where a part file's bytes go: a local file, or memory until it is PUT whole to an object
/// store.
enum Sink {
    File(BufWriter<File>),
    Memory(Vec<u8>),
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Memory(v) => v.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Memory(_) => Ok(()),
        }
    }
}

/// Streams enriched plays into one Parquet file, created on the first row: locally straight to
/// disk; on an object store encoded in memory and written with one PUT on close.
pub(crate) struct PartWriter {
    store: ArchiveStore,
    rel: String,
    path: PathBuf,
    builder: EnrichedBuilder,
    writer: Option<ArrowWriter<Sink>>,
    rows: u64,
}

impl PartWriter {
    fn new(store: ArchiveStore, rel: String) -> PartWriter {
        PartWriter {
            path: store.describe(&rel),
            store,
            rel,
            builder: EnrichedBuilder::new(),
            writer: None,
            rows: 0,
        }
    }

    /// Adds one counted play.
    pub(crate) fn push(
        &mut self,
        names: &Interner,
        play: &PlayRecord,
        att: &Attribution,
        e: &Enrichment<'_>,
    ) -> Result<(), Error> {
        self.builder.push(names, play, att, e);
        self.rows += 1;
        if self.builder.rows >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let batch = self.builder.finish().map_err(|cause| {
            Error::Archive(playsource_archive::Error::Arrow {
                path: self.path.clone(),
                cause,
            })
        })?;
        let writer = match &mut self.writer {
            Some(w) => w,
            None => {
                let sink = match self.store.local_root() {
                    Some(_) => Sink::File(BufWriter::new(
                        File::create(&self.path)
                            .map_err(Error::io("create the enriched plays file", &self.path))?,
                    )),
                    None => Sink::Memory(Vec::new()),
                };
                let w = ArrowWriter::try_new(
                    sink,
                    enriched_schema(),
                    Some(playsource_archive::write::writer_properties()),
                )
                .map_err(|e| self.parquet_err(e))?;
                self.writer.insert(w)
            }
        };
        writer.write(&batch).map_err(|e| parquet_err(&self.path, e))
    }

    fn parquet_err(&self, cause: parquet::errors::ParquetError) -> Error {
        parquet_err(&self.path, cause)
    }

    /// Writes what is buffered and closes the file (fsynced locally, PUT on an object store);
    /// with `even_if_empty`, a file with no rows is still written (so readers find the schema).
    /// Returns the rows written.
    pub(crate) fn close(mut self, even_if_empty: bool) -> Result<u64, Error> {
        if self.builder.rows > 0 || (self.writer.is_none() && even_if_empty) {
            self.flush()?;
        }
        let Some(writer) = self.writer.take() else {
            return Ok(0);
        };
        match writer.into_inner().map_err(|e| self.parquet_err(e))? {
            Sink::File(buf) => {
                let file = buf
                    .into_inner()
                    .map_err(|e| Error::io("write", &self.path)(e.into_error()))?;
                file.sync_all().map_err(Error::io("fsync", &self.path))?;
            }
            Sink::Memory(data) => self.store.put_bytes(&self.rel, data)?,
        }
        Ok(self.rows)
    }
}

fn parquet_err(path: &Path, cause: parquet::errors::ParquetError) -> Error {
    Error::Archive(playsource_archive::Error::Parquet {
        action: "written",
        path: path.to_path_buf(),
        cause,
    })
}

/// A run's enriched plays folder, staged until [`StagedDir::commit`] swaps it into place.
/// Dropped without commit, it is removed.
pub struct StagedDir {
    store: ArchiveStore,
    /// Relative to the archive root: `enriched_plays/_staging/date=D-<uuid>`.
    staging: String,
    /// Relative to the archive root: `enriched_plays/date=D`.
    final_dir: String,
    committed: bool,
}

impl StagedDir {
    /// A new, empty staging folder for `day`.
    pub fn create(store: &ArchiveStore, day: Day) -> Result<StagedDir, Error> {
        let final_dir = format!("{ENRICHED_DIR}/{}", date_segment(day));
        let staging = format!(
            "{ENRICHED_DIR}/{STAGING_DIR}/date={day}-{}",
            uuid::Uuid::new_v4().simple()
        );
        store.create_dir(&staging)?;
        Ok(StagedDir {
            store: store.clone(),
            staging,
            final_dir,
            committed: false,
        })
    }

    /// The staging folder (a local path, or the URL of the prefix).
    pub fn path(&self) -> PathBuf {
        self.store.describe(&self.staging)
    }

    /// The folder the files will be visible in after commit.
    pub fn final_dir(&self) -> PathBuf {
        self.store.describe(&self.final_dir)
    }

    /// A writer of the staged part file `n`.
    pub(crate) fn part_writer(&self, n: usize) -> PartWriter {
        PartWriter::new(
            self.store.clone(),
            format!("{}/part-{n:05}.parquet", self.staging),
        )
    }

    /// Keeps the staged folder (a shard's part, see [`crate::shard`]) instead of removing it
    /// when dropped, and returns its path (as [`StagedDir::path`]).
    pub(crate) fn keep(mut self) -> PathBuf {
        self.committed = true;
        self.path()
    }

    /// Links or copies every `*.parquet` file directly in the folder `from` (relative to the
    /// archive root) into this staged folder, each name prefixed with `prefix`.
    pub(crate) fn take_files_of(&self, from: &str, prefix: &str) -> Result<(), Error> {
        for (rel, _) in self.store.list(from)? {
            let Some(name) = rel.strip_prefix(&format!("{}/", from.trim_matches('/'))) else {
                continue;
            };
            if name.contains('/') || !name.ends_with(".parquet") {
                continue;
            }
            self.store
                .copy_file(&rel, &format!("{}/{prefix}{name}", self.staging))?;
        }
        Ok(())
    }

    /// Makes the staged files the day's enriched plays. Locally the old folder (if any) is
    /// renamed away, the staged one renamed into place, the parents fsynced and the old folder
    /// removed: readers see the old files or the new ones, never a mix or a partial folder. On an
    /// object store see the module documentation.
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        match self.store.local_root().map(Path::to_path_buf) {
            Some(root) => self.commit_local(&root)?,
            None => self.commit_remote()?,
        }
        Ok(self.final_dir())
    }

    fn commit_remote(&mut self) -> Result<(), Error> {
        let old: Vec<String> = self
            .store
            .list(&self.final_dir)?
            .into_iter()
            .map(|(rel, _)| rel)
            .collect();
        let mut new = BTreeSet::new();
        for (rel, _) in self.store.list(&self.staging)? {
            let name = rel.rsplit('/').next().unwrap_or_default().to_owned();
            let to = format!("{}/{name}", self.final_dir);
            self.store.copy_file(&rel, &to)?;
            new.insert(to);
        }
        self.committed = true;
        for rel in old.iter().filter(|rel| !new.contains(*rel)) {
            if let Err(e) = self.store.delete(rel) {
                tracing::warn!(error = %e, "could not remove a previous enriched plays file; delete it by hand");
            }
        }
        if let Err(e) = self.store.delete_dir(&self.staging) {
            tracing::warn!(error = %e, "could not remove the staged enriched plays; delete the folder by hand");
        }
        Ok(())
    }

    fn commit_local(&mut self, root: &Path) -> Result<(), Error> {
        let (staging, final_dir) = (root.join(&self.staging), root.join(&self.final_dir));
        sync_dir(&staging)?;
        let parent = final_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let staging_root = staging.parent().map(Path::to_path_buf).unwrap_or_default();
        let old = staging_root.join(format!(
            "old-{}",
            staging
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("date")
        ));
        let had_old = match fs::rename(&final_dir, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(Error::io(
                    "move away the previous enriched plays",
                    &final_dir,
                )(e))
            }
        };
        if let Err(e) = fs::rename(&staging, &final_dir) {
            if had_old {
                // Put the previous files back so the day keeps its last good output.
                let _ = fs::rename(&old, &final_dir);
            }
            return Err(Error::io("move the new enriched plays into", &final_dir)(e));
        }
        self.committed = true;
        sync_dir(&parent)?;
        sync_dir(&staging_root)?;
        if had_old {
            if let Err(e) = fs::remove_dir_all(&old) {
                tracing::warn!(path = %old.display(), error = %e, "could not remove the previous enriched plays; delete the folder by hand");
            }
        }
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.store.delete_dir(&self.staging);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("fsync the folder", dir))
}
