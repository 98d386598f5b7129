//! Reading the archive back (the batch layer's input), including files written by other tools.
//!
//! [`list_files`] finds the `*.parquet` files of a topic's day partitions (skipping hidden and
//! `_`-prefixed files and folders such as `_staging`, as Spark and pyarrow do).
//! [`ImpressionReader`] and [`PlayReader`] stream a file's record batches (row group by row group,
//! never the whole file at once) and turn rows into domain events that borrow their strings from
//! the Arrow arrays. They accept what other writers produce: ids as signed or unsigned integers
//! (or scale-0 decimals), `ts` as a timestamp of any unit with or without a time zone (naive
//! means UTC) or an RFC 3339 string, strings as Utf8, LargeUtf8, Utf8View, binary or dictionary
//! columns; extra columns are ignored and `session_id` may be missing. A row that breaks a rule
//! of docs/reference.md §1 is skipped and counted in [`ReadStats`], never a panic; a file that is not
//! Parquet, or lacks a required column, is an [`Error`] naming the file and the column.

mod columns;
mod fields;
mod list;
mod provenance;
#[cfg(test)]
mod tests;

pub use self::list::list_files;
pub(crate) use self::list::walk_dir;
pub use self::provenance::{ImpressionsWithProvenance, PlaysWithProvenance, Provenance};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::array::{BooleanArray, Int64Array};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Schema};
use parquet::arrow::arrow_reader::{
    ArrowPredicate, ArrowPredicateFn, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
    RowFilter,
};
use parquet::arrow::ProjectionMask;
use playsource_domain::{Day, Impression, MemberId, Play, Rejection, Ts, VideoId};

use self::columns::{IntCol, StrCol, StrValue, TsCol};
use self::fields::{id_field, not_utf8, str_field, ts_field, u16_field};
use crate::error::Error;
use crate::schema;
use crate::store::ArchiveStore;

/// Rows per record batch handed out by the readers.
pub const READ_BATCH_ROWS: usize = 8192;

/// Which rows a filtered reader decodes, by `(member_id, video_id)`: the Parquet reader reads
/// those two columns first and decodes the others only for the rows this accepts (late
/// materialisation). Rows whose ids are null or below 1 are left out. The batch layer's
/// impressions of the lookback days use it: only the pairs with a play of the day matter.
pub type PairFilter = Arc<dyn Fn(u64, u64) -> bool + Send + Sync>;

/// What reading some rows gave: how many were used, out of the requested time range, or skipped
/// for breaking a rule (by field), with the first such row described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Rows looked at (including those a [`PairFilter`] left out).
    pub rows: u64,
    /// Rows a [`PairFilter`] left out: only their `member_id` and `video_id` were read, so they
    /// were neither validated nor handed out.
    pub filtered: u64,
    /// Valid rows inside the time range, handed to the caller.
    pub accepted: u64,
    /// Rows whose `ts` is outside the time range (not validated further).
    pub out_of_range: u64,
    /// Rows skipped for breaking a rule of docs/reference.md §1.
    pub invalid: u64,
    /// Skipped rows by the field they got wrong.
    pub invalid_by_field: BTreeMap<&'static str, u64>,
    /// The first skipped row: `<file> row <n>: <why>`.
    pub first_invalid: Option<String>,
}

impl ReadStats {
    /// Adds `other` to these counts (keeping the first example already held).
    pub fn merge(&mut self, other: &ReadStats) {
        self.rows += other.rows;
        self.filtered += other.filtered;
        self.accepted += other.accepted;
        self.out_of_range += other.out_of_range;
        self.invalid += other.invalid;
        for (field, n) in &other.invalid_by_field {
            *self.invalid_by_field.entry(field).or_default() += n;
        }
        if self.first_invalid.is_none() {
            self.first_invalid.clone_from(&other.first_invalid);
        }
    }

    /// Counts `n` rows a [`PairFilter`] left out of a file.
    pub fn add_filtered(&mut self, n: u64) {
        self.rows += n;
        self.filtered += n;
    }

    fn reject(&mut self, path: &Path, row: u64, r: Rejection) {
        self.invalid += 1;
        *self.invalid_by_field.entry(r.field).or_default() += 1;
        if self.first_invalid.is_none() {
            self.first_invalid = Some(format!("{} row {row}: {r}", path.display()));
        }
    }
}

/// What a column must be able to hold.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Time,
}

impl Kind {
    fn accepts(self, t: &DataType) -> bool {
        match self {
            Kind::Str => columns::is_string_type(t),
            Kind::Int => columns::is_integer_type(t),
            Kind::Time => columns::is_timestamp_type(t),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Str => "a string (Utf8, LargeUtf8, Utf8View, binary or a dictionary of these)",
            Kind::Int => "an integer (signed or unsigned, any width) or a decimal with scale 0",
            Kind::Time => {
                "a timestamp (s, ms, µs or ns, with or without time zone) or an RFC 3339 string"
            }
        }
    }
}

const IMPRESSION_COLUMNS: [(&str, Kind); 10] = [
    (schema::EVENT_ID, Kind::Str),
    (schema::TS, Kind::Time),
    (schema::MEMBER_ID, Kind::Int),
    (schema::VIDEO_ID, Kind::Int),
    (schema::PAGE, Kind::Str),
    (schema::ROW_TYPE, Kind::Str),
    (schema::ROW_INDEX, Kind::Int),
    (schema::RANK, Kind::Int),
    (schema::COUNTRY, Kind::Str),
    (schema::DEVICE, Kind::Str),
];

const PLAY_COLUMNS: [(&str, Kind); 7] = [
    (schema::EVENT_ID, Kind::Str),
    (schema::TS, Kind::Time),
    (schema::MEMBER_ID, Kind::Int),
    (schema::VIDEO_ID, Kind::Int),
    (schema::COUNTRY, Kind::Str),
    (schema::DEVICE, Kind::Str),
    (schema::SESSION_ID, Kind::Str),
];

/// The columns a reader projects: for each wanted field, the file's column name (exact match
/// first, then case-insensitive), `None` for a missing optional column.
struct OpenFile {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    names: Vec<Option<String>>,
    next_row: u64,
    total_rows: u64,
    /// A [`PairFilter`] selects the rows handed out.
    pair_filtered: bool,
    /// The reader panicked (see [`guarded`]): it is not used again.
    failed: bool,
}

/// Runs a call into the Parquet reader, turning a panic into an error naming the file: the
/// parquet crate asserts on some damaged footers and pages (e.g. a negative column-chunk offset,
/// or dictionary-encoded pages without a dictionary) instead of returning an error, and one bad
/// file must not take down a batch run.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Parquet {
            action: "read (the file is damaged; restore it or remove it from the archive)",
            path: path.to_path_buf(),
            cause: parquet::errors::ParquetError::General(format!(
                "the Parquet reader stopped on an internal check: {why}"
            )),
        })
    })
}

fn open(path: &Path, wanted: &[(&str, Kind)], optional: &[&str]) -> Result<OpenFile, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(cause) => {
            // A pending file compacted since it was listed: read it from the published file.
            let pending = path.iter().position(|c| c == crate::compact::PENDING_DIR);
            if let (Some(i), std::io::ErrorKind::NotFound) = (pending, cause.kind()) {
                let root: PathBuf = path.iter().take(i).collect();
                let rel: Vec<String> = path
                    .iter()
                    .skip(i)
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                return open_in_store(
                    &ArchiveStore::local(root),
                    &rel.join("/"),
                    wanted,
                    optional,
                    None,
                );
            }
            return Err(Error::Io {
                action: "open",
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    guarded(path, || {
        open_parquet(path, file, wanted, optional, None, None)
    })
}

/// Opens the file `rel` of `store`. A pending file (`_pending/...`, see [`crate::compact`]) that
/// is gone was compacted since it was listed: its rows are read from the published file of its
/// hour, keeping only its offset range (its rows, exactly; no other file of that partition and
/// hour holds those offsets).
fn open_in_store(
    store: &ArchiveStore,
    rel: &str,
    wanted: &[(&str, Kind)],
    optional: &[&str],
    pairs: Option<&PairFilter>,
) -> Result<OpenFile, Error> {
    match open_in_store_as(store, rel, wanted, optional, None, pairs) {
        Err(e) if e.is_not_found() => match crate::compact::published_of_pending(rel) {
            Some((published, offsets)) => {
                open_in_store_as(store, &published, wanted, optional, Some(offsets), pairs)
            }
            None => Err(e),
        },
        other => other,
    }
}

fn open_in_store_as(
    store: &ArchiveStore,
    rel: &str,
    wanted: &[(&str, Kind)],
    optional: &[&str],
    offsets: Option<RangeInclusive<i64>>,
    pairs: Option<&PairFilter>,
) -> Result<OpenFile, Error> {
    match store.local_root() {
        Some(root) => {
            let path = root.join(rel);
            let file = File::open(&path).map_err(|cause| Error::Io {
                action: "open",
                path: path.clone(),
                cause,
            })?;
            guarded(&path, || {
                open_parquet(&path, file, wanted, optional, offsets, pairs)
            })
        }
        None => {
            let path = store.describe(rel);
            let bytes = store.get(rel)?;
            guarded(&path, || {
                open_parquet(&path, bytes, wanted, optional, offsets, pairs)
            })
        }
    }
}

fn open_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    path: &Path,
    file: R,
    wanted: &[(&str, Kind)],
    optional: &[&str],
    offsets: Option<RangeInclusive<i64>>,
    pairs: Option<&PairFilter>,
) -> Result<OpenFile, Error> {
    let not_parquet = |cause| Error::Parquet {
        action: "read (is it a Parquet file?)",
        path: path.to_path_buf(),
        cause,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
    let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let arrow_schema: &Schema = builder.schema();
    let mut names = Vec::with_capacity(wanted.len());
    let mut roots = Vec::with_capacity(wanted.len());
    for &(field, kind) in wanted {
        let found = arrow_schema.index_of(field).ok().or_else(|| {
            let mut it = arrow_schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().eq_ignore_ascii_case(field));
            match (it.next(), it.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        });
        let Some(i) = found else {
            if optional.contains(&field) {
                names.push(None);
                continue;
            }
            return Err(Error::Schema {
                path: path.to_path_buf(),
                message: format!("required column `{field}` is missing"),
            });
        };
        let f = &arrow_schema.fields()[i];
        if !kind.accepts(f.data_type()) {
            return Err(Error::Schema {
                path: path.to_path_buf(),
                message: format!(
                    "column `{}` has type {}, expected {}",
                    f.name(),
                    f.data_type(),
                    kind.expected()
                ),
            });
        }
        names.push(Some(f.name().clone()));
        roots.push(i);
    }
    let mut predicates: Vec<Box<dyn ArrowPredicate>> = Vec::new();
    if let Some(range) = offsets {
        let Ok(i) = arrow_schema.index_of(schema::OFFSET) else {
            return Err(Error::Schema {
                path: path.to_path_buf(),
                message: format!("column `{}` is missing", schema::OFFSET),
            });
        };
        let only = ProjectionMask::roots(builder.parquet_schema(), [i]);
        predicates.push(Box::new(ArrowPredicateFn::new(
            only,
            move |batch: RecordBatch| {
                let offsets = arrow::compute::cast(batch.column(0), &DataType::Int64)?;
                let (lo, hi) = (*range.start(), *range.end());
                let lo =
                    arrow::compute::kernels::cmp::gt_eq(&offsets, &Int64Array::new_scalar(lo))?;
                let hi =
                    arrow::compute::kernels::cmp::lt_eq(&offsets, &Int64Array::new_scalar(hi))?;
                arrow::compute::and(&lo, &hi)
            },
        )));
    }
    if let Some(keep) = pairs {
        let root_of = |field: &str| {
            let k = wanted.iter().position(|&(f, _)| f == field)?;
            arrow_schema.index_of(names.get(k)?.as_deref()?).ok()
        };
        let (member, video) = (root_of(schema::MEMBER_ID), root_of(schema::VIDEO_ID));
        let (Some(m), Some(v)) = (member, video) else {
            return Err(Error::Schema {
                path: path.to_path_buf(),
                message: "a pair filter needs the `member_id` and `video_id` columns".into(),
            });
        };
        let only = ProjectionMask::roots(builder.parquet_schema(), [m, v]);
        let names = (
            arrow_schema.field(m).name().clone(),
            arrow_schema.field(v).name().clone(),
        );
        predicates.push(Box::new(ArrowPredicateFn::new(
            only,
            pair_predicate(names, Arc::clone(keep)),
        )));
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let builder = if predicates.is_empty() {
        builder
    } else {
        builder.with_row_filter(RowFilter::new(predicates))
    };
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(not_parquet)?;
    Ok(OpenFile {
        path: path.to_path_buf(),
        reader,
        names,
        next_row: 0,
        total_rows,
        pair_filtered: pairs.is_some(),
        failed: false,
    })
}

/// The predicate of a [`PairFilter`] over a batch of the `(member_id, video_id)` columns (named
/// as in the file).
fn pair_predicate(
    (member, video): (String, String),
    keep: PairFilter,
) -> impl FnMut(RecordBatch) -> Result<BooleanArray, arrow::error::ArrowError> + Send + 'static {
    move |batch: RecordBatch| {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(IntCol::new)
                .ok_or_else(|| {
                    arrow::error::ArrowError::CastError(format!(
                        "column `{name}` holds values that cannot be read as an id"
                    ))
                })
        };
        let (m, v) = (col(&member)?, col(&video)?);
        let id = |c: &IntCol, row| {
            c.get(row)
                .and_then(|x| u64::try_from(x).ok())
                .filter(|&x| x >= 1)
        };
        let bits = BooleanBuffer::collect_bool(
            batch.num_rows(),
            |row| matches!((id(&m, row), id(&v, row)), (Some(m), Some(v)) if keep(m, v)),
        );
        Ok(BooleanArray::new(bits, None))
    }
}

impl OpenFile {
    fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// The next record batch and the file row number of its first row.
    fn next(&mut self) -> Option<Result<(RecordBatch, u64), Error>> {
        if self.failed {
            return None;
        }
        let reader = &mut self.reader;
        let next = guarded(&self.path, || Ok(reader.next()));
        let batch = match next {
            Ok(None) => return None,
            Ok(Some(Ok(b))) => b,
            Ok(Some(Err(cause))) => {
                return Some(Err(Error::Arrow {
                    path: self.path.clone(),
                    cause,
                }))
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let first = self.next_row;
        self.next_row += batch.num_rows() as u64;
        Some(Ok((batch, first)))
    }

    fn column(&self, batch: &RecordBatch, i: usize) -> Option<arrow::array::ArrayRef> {
        let name = self.names.get(i)?.as_deref()?;
        batch.column_by_name(name).cloned()
    }

    fn bad_column(&self, i: usize) -> Error {
        let name = self.names.get(i).cloned().flatten().unwrap_or_default();
        Error::Schema {
            path: self.path.clone(),
            message: format!("column `{name}` holds values that cannot be read as its field"),
        }
    }

    fn str_col(&self, b: &RecordBatch, i: usize) -> Result<StrCol, Error> {
        self.column(b, i)
            .and_then(|a| StrCol::new(&a))
            .ok_or_else(|| self.bad_column(i))
    }

    fn int_col(&self, b: &RecordBatch, i: usize) -> Result<IntCol, Error> {
        self.column(b, i)
            .and_then(|a| IntCol::new(&a))
            .ok_or_else(|| self.bad_column(i))
    }

    fn ts_col(&self, b: &RecordBatch, i: usize) -> Result<TsCol, Error> {
        self.column(b, i)
            .and_then(|a| TsCol::new(&a))
            .ok_or_else(|| self.bad_column(i))
    }
}

/// Streams the impressions of one archive file.
pub struct ImpressionReader {
    file: OpenFile,
}

/// One record batch of impressions.
pub struct ImpressionBatch {
    path: PathBuf,
    first_row: u64,
    len: usize,
    event_id: StrCol,
    ts: TsCol,
    member_id: IntCol,
    video_id: IntCol,
    page: StrCol,
    row_type: StrCol,
    row_index: IntCol,
    rank: IntCol,
    country: StrCol,
    device: StrCol,
}

impl ImpressionReader {
    /// Opens a file; fails if it is not Parquet or lacks a column of docs/reference.md §1.
    pub fn open(path: &Path) -> Result<ImpressionReader, Error> {
        Ok(ImpressionReader {
            file: open(path, &IMPRESSION_COLUMNS, &[])?,
        })
    }

    /// Opens the file `rel` (relative to the archive root) of `store`, local or remote.
    pub fn open_in(store: &ArchiveStore, rel: &str) -> Result<ImpressionReader, Error> {
        let file = open_in_store(store, rel, &IMPRESSION_COLUMNS, &[], None)?;
        Ok(ImpressionReader { file })
    }

    /// Like [`ImpressionReader::open_in`], decoding only the rows `keep` accepts (see
    /// [`PairFilter`]); the others never reach [`ImpressionBatch::for_each`], so the caller counts
    /// them with [`ReadStats::add_filtered`]`(`[`filtered_out`](Self::filtered_out)`)` once the
    /// reader is exhausted. Row numbers in rejections then count the rows handed out.
    pub fn open_in_where(
        store: &ArchiveStore,
        rel: &str,
        keep: &PairFilter,
    ) -> Result<ImpressionReader, Error> {
        let file = open_in_store(store, rel, &IMPRESSION_COLUMNS, &[], Some(keep))?;
        Ok(ImpressionReader { file })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The file's total number of rows (from its footer).
    pub fn total_rows(&self) -> u64 {
        self.file.total_rows()
    }

    /// Rows a [`PairFilter`] left out (the file's rows less those handed out so far; complete
    /// once the reader is exhausted); 0 for a reader opened without one.
    pub fn filtered_out(&self) -> u64 {
        if self.file.pair_filtered {
            self.file.total_rows.saturating_sub(self.file.next_row)
        } else {
            0
        }
    }
}

impl Iterator for ImpressionReader {
    type Item = Result<ImpressionBatch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (b, first_row) = match self.file.next()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        Some(ImpressionBatch::of(&self.file, &b, first_row))
    }
}

impl ImpressionBatch {
    fn of(f: &OpenFile, b: &RecordBatch, first_row: u64) -> Result<ImpressionBatch, Error> {
        Ok(ImpressionBatch {
            path: f.path.clone(),
            first_row,
            len: b.num_rows(),
            event_id: f.str_col(b, 0)?,
            ts: f.ts_col(b, 1)?,
            member_id: f.int_col(b, 2)?,
            video_id: f.int_col(b, 3)?,
            page: f.str_col(b, 4)?,
            row_type: f.str_col(b, 5)?,
            row_index: f.int_col(b, 6)?,
            rank: f.int_col(b, 7)?,
            country: f.str_col(b, 8)?,
            device: f.str_col(b, 9)?,
        })
    }
}

/// The row loop both kinds of batch share: read `ts`, filter by range, decode, count.
struct Rows<'b> {
    path: &'b Path,
    first_row: u64,
    len: usize,
    ts: &'b TsCol,
}

impl Rows<'_> {
    fn for_each<E>(
        &self,
        range: Option<&Range<Ts>>,
        stats: &mut ReadStats,
        decode: impl Fn(usize, Ts) -> Result<E, Rejection>,
        mut f: impl FnMut(usize, E),
    ) {
        for row in 0..self.len {
            stats.rows += 1;
            let at = self.first_row + row as u64;
            let ts = match ts_field(self.ts, row) {
                Ok(ts) => ts,
                Err(r) => {
                    stats.reject(self.path, at, r);
                    continue;
                }
            };
            if range.is_some_and(|r| !r.contains(&ts)) {
                stats.out_of_range += 1;
                continue;
            }
            match decode(row, ts) {
                Ok(event) => {
                    stats.accepted += 1;
                    f(row, event);
                }
                Err(r) => stats.reject(self.path, at, r),
            }
        }
    }
}

impl ImpressionBatch {
    /// Rows in this batch.
    pub fn num_rows(&self) -> usize {
        self.len
    }

    /// The file row number of this batch's first row (0-based).
    pub fn first_row(&self) -> u64 {
        self.first_row
    }

    /// Calls `f(row, impression)` for every valid row whose `ts` is in `range` (all rows when
    /// `None`), in order; other rows are counted in `stats`. Strings borrow from the batch.
    pub fn for_each<'a>(
        &'a self,
        range: Option<&Range<Ts>>,
        stats: &mut ReadStats,
        f: impl FnMut(usize, Impression<'a>),
    ) {
        let rows = Rows {
            path: &self.path,
            first_row: self.first_row,
            len: self.len,
            ts: &self.ts,
        };
        rows.for_each(range, stats, |row, ts| self.decode(row, ts), f);
    }

    fn decode(&self, row: usize, ts: Ts) -> Result<Impression<'_>, Rejection> {
        let imp = Impression {
            event_id: str_field(schema::EVENT_ID, &self.event_id, row)?,
            ts,
            member_id: MemberId(id_field(schema::MEMBER_ID, &self.member_id, row)?),
            video_id: VideoId(id_field(schema::VIDEO_ID, &self.video_id, row)?),
            page: str_field(schema::PAGE, &self.page, row)?,
            row_type: str_field(schema::ROW_TYPE, &self.row_type, row)?,
            row_index: u16_field(schema::ROW_INDEX, &self.row_index, row)?,
            rank: u16_field(schema::RANK, &self.rank, row)?,
            country: str_field(schema::COUNTRY, &self.country, row)?,
            device: str_field(schema::DEVICE, &self.device, row)?,
        };
        imp.validate()?;
        Ok(imp)
    }
}

/// Streams the plays of one archive file.
pub struct PlayReader {
    file: OpenFile,
}

/// One record batch of plays.
pub struct PlayBatch {
    path: PathBuf,
    first_row: u64,
    len: usize,
    event_id: StrCol,
    ts: TsCol,
    member_id: IntCol,
    video_id: IntCol,
    country: StrCol,
    device: StrCol,
    session_id: Option<StrCol>,
}

impl PlayReader {
    /// Opens a file; fails if it is not Parquet or lacks a column of docs/reference.md §1 (`session_id`
    /// is optional).
    pub fn open(path: &Path) -> Result<PlayReader, Error> {
        Ok(PlayReader {
            file: open(path, &PLAY_COLUMNS, &[schema::SESSION_ID])?,
        })
    }

    /// Opens the file `rel` (relative to the archive root) of `store`, local or remote.
    pub fn open_in(store: &ArchiveStore, rel: &str) -> Result<PlayReader, Error> {
        let optional = [schema::SESSION_ID];
        let file = open_in_store(store, rel, &PLAY_COLUMNS, &optional, None)?;
        Ok(PlayReader { file })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The file's total number of rows (from its footer).
    pub fn total_rows(&self) -> u64 {
        self.file.total_rows()
    }
}

impl Iterator for PlayReader {
    type Item = Result<PlayBatch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (b, first_row) = match self.file.next()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        Some(PlayBatch::of(&self.file, &b, first_row))
    }
}

impl PlayBatch {
    fn of(f: &OpenFile, b: &RecordBatch, first_row: u64) -> Result<PlayBatch, Error> {
        let session_id = match f.column(b, 6) {
            Some(a) => Some(StrCol::new(&a).ok_or_else(|| f.bad_column(6))?),
            None => None,
        };
        Ok(PlayBatch {
            path: f.path.clone(),
            first_row,
            len: b.num_rows(),
            event_id: f.str_col(b, 0)?,
            ts: f.ts_col(b, 1)?,
            member_id: f.int_col(b, 2)?,
            video_id: f.int_col(b, 3)?,
            country: f.str_col(b, 4)?,
            device: f.str_col(b, 5)?,
            session_id,
        })
    }
}

impl PlayBatch {
    /// Rows in this batch.
    pub fn num_rows(&self) -> usize {
        self.len
    }

    /// The file row number of this batch's first row (0-based).
    pub fn first_row(&self) -> u64 {
        self.first_row
    }

    /// Calls `f(row, play)` for every valid row whose `ts` is in `range` (all rows when `None`),
    /// in order; other rows are counted in `stats`. Strings borrow from the batch.
    pub fn for_each<'a>(
        &'a self,
        range: Option<&Range<Ts>>,
        stats: &mut ReadStats,
        f: impl FnMut(usize, Play<'a>),
    ) {
        let rows = Rows {
            path: &self.path,
            first_row: self.first_row,
            len: self.len,
            ts: &self.ts,
        };
        rows.for_each(range, stats, |row, ts| self.decode(row, ts), f);
    }

    fn decode(&self, row: usize, ts: Ts) -> Result<Play<'_>, Rejection> {
        let session_id = match &self.session_id {
            None => None,
            Some(col) => match col.get(row) {
                StrValue::Null => None,
                StrValue::Str(s) => Some(Cow::Borrowed(s)),
                StrValue::NotUtf8 => return Err(not_utf8(schema::SESSION_ID)),
            },
        };
        let play = Play {
            event_id: str_field(schema::EVENT_ID, &self.event_id, row)?,
            ts,
            member_id: MemberId(id_field(schema::MEMBER_ID, &self.member_id, row)?),
            video_id: VideoId(id_field(schema::VIDEO_ID, &self.video_id, row)?),
            country: str_field(schema::COUNTRY, &self.country, row)?,
            device: str_field(schema::DEVICE, &self.device, row)?,
            session_id,
        };
        play.validate()?;
        Ok(play)
    }
}

/// The half-open range of instants of the days in `days`.
pub fn ts_range(days: RangeInclusive<Day>) -> Range<Ts> {
    days.start().start()..days.end().plus(1).start()
}
