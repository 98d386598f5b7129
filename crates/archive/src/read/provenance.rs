//! Reading events together with their Kafka provenance, the nullable `_partition` and `_offset`
//! columns the stream writes (for the stream's bootstrap from the archive, docs/stream.md "State
//! across restarts"). The events are read exactly as [`super::ImpressionReader`] and
//! [`super::PlayReader`] read them (same column rules, same fallback for a pending file compacted
//! since it was listed); a file without the provenance columns (written by another tool) reads
//! with [`Provenance::get`] giving `None` for every row.

use arrow::array::RecordBatch;

use super::columns::IntCol;
use super::{
    open_in_store, ImpressionBatch, Kind, OpenFile, PlayBatch, IMPRESSION_COLUMNS, PLAY_COLUMNS,
};
use crate::error::Error;
use crate::schema;
use crate::store::ArchiveStore;

/// The provenance columns, optional, after a topic's own columns.
const PROVENANCE_COLUMNS: [(&str, Kind); 2] =
    [(schema::PARTITION, Kind::Int), (schema::OFFSET, Kind::Int)];

/// The Kafka partition and offset of each row of one record batch.
pub struct Provenance {
    partition: Option<IntCol>,
    offset: Option<IntCol>,
}

impl Provenance {
    fn of(f: &OpenFile, b: &RecordBatch, first: usize) -> Result<Provenance, Error> {
        let col = |i: usize| match f.column(b, i) {
            Some(a) => IntCol::new(&a).map(Some).ok_or_else(|| f.bad_column(i)),
            None => Ok(None),
        };
        Ok(Provenance {
            partition: col(first)?,
            offset: col(first + 1)?,
        })
    }

    /// The (partition, offset) the stream read row `row` of the batch at; `None` when the file
    /// has no provenance columns or the row's are null or out of range.
    pub fn get(&self, row: usize) -> Option<(i32, i64)> {
        let p = self.partition.as_ref()?.get(row)?;
        let o = self.offset.as_ref()?.get(row)?;
        Some((i32::try_from(p).ok()?, i64::try_from(o).ok()?))
    }
}

fn with_provenance(cols: &[(&'static str, Kind)]) -> Vec<(&'static str, Kind)> {
    cols.iter().chain(&PROVENANCE_COLUMNS).copied().collect()
}

/// Whether `f`, opened with a topic's columns followed by the provenance columns (from `first`),
/// has both provenance columns.
fn has_provenance(f: &OpenFile, first: usize) -> bool {
    f.names.get(first).is_some_and(Option::is_some)
        && f.names.get(first + 1).is_some_and(Option::is_some)
}

/// Streams the impressions of one archive file with their provenance.
pub struct ImpressionsWithProvenance {
    file: OpenFile,
}

impl ImpressionsWithProvenance {
    /// Opens the file `rel` of `store`; fails as [`super::ImpressionReader::open_in`] does.
    pub fn open_in(store: &ArchiveStore, rel: &str) -> Result<ImpressionsWithProvenance, Error> {
        let optional = [schema::PARTITION, schema::OFFSET];
        let file = open_in_store(
            store,
            rel,
            &with_provenance(&IMPRESSION_COLUMNS),
            &optional,
            None,
        )?;
        Ok(ImpressionsWithProvenance { file })
    }

    /// Whether the file has the `_partition` and `_offset` columns.
    pub fn has_provenance(&self) -> bool {
        has_provenance(&self.file, IMPRESSION_COLUMNS.len())
    }

    /// The file's total number of rows (from its footer).
    pub fn total_rows(&self) -> u64 {
        self.file.total_rows()
    }
}

impl Iterator for ImpressionsWithProvenance {
    type Item = Result<(ImpressionBatch, Provenance), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (b, first_row) = match self.file.next()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let f = &self.file;
        Some(
            ImpressionBatch::of(f, &b, first_row)
                .and_then(|batch| Ok((batch, Provenance::of(f, &b, IMPRESSION_COLUMNS.len())?))),
        )
    }
}

/// Streams the plays of one archive file with their provenance.
pub struct PlaysWithProvenance {
    file: OpenFile,
}

impl PlaysWithProvenance {
    /// Opens the file `rel` of `store`; fails as [`super::PlayReader::open_in`] does.
    pub fn open_in(store: &ArchiveStore, rel: &str) -> Result<PlaysWithProvenance, Error> {
        let optional = [schema::SESSION_ID, schema::PARTITION, schema::OFFSET];
        let file = open_in_store(store, rel, &with_provenance(&PLAY_COLUMNS), &optional, None)?;
        Ok(PlaysWithProvenance { file })
    }

    /// Whether the file has the `_partition` and `_offset` columns.
    pub fn has_provenance(&self) -> bool {
        has_provenance(&self.file, PLAY_COLUMNS.len())
    }

    /// The file's total number of rows (from its footer).
    pub fn total_rows(&self) -> u64 {
        self.file.total_rows()
    }
}

impl Iterator for PlaysWithProvenance {
    type Item = Result<(PlayBatch, Provenance), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (b, first_row) = match self.file.next()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        let f = &self.file;
        Some(
            PlayBatch::of(f, &b, first_row)
                .and_then(|batch| Ok((batch, Provenance::of(f, &b, PLAY_COLUMNS.len())?))),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use playsource_domain::{Impression, MemberId, Ts, VideoId};

    use super::*;
    use crate::builders::ImpressionsBuilder;
    use crate::read::ReadStats;

    fn imp(id: &str) -> Impression<'static> {
        Impression {
            event_id: Cow::Owned(id.to_owned()),
            ts: Ts(1_795_219_200_000),
            member_id: MemberId(3),
            video_id: VideoId(7),
            page: Cow::Borrowed("home"),
            row_type: Cow::Borrowed("top_picks"),
            row_index: 2,
            rank: 5,
            country: Cow::Borrowed("BR"),
            device: Cow::Borrowed("tv"),
        }
    }

    type Rows = Vec<(String, Option<(i32, i64)>)>;

    /// (event id, provenance) of every row of `rel`, and whether it has the columns.
    fn read(store: &ArchiveStore, rel: &str) -> (bool, Rows) {
        let reader = ImpressionsWithProvenance::open_in(store, rel).unwrap();
        let has = reader.has_provenance();
        let mut out = Vec::new();
        let mut stats = ReadStats::default();
        for batch in reader {
            let (batch, prov) = batch.unwrap();
            batch.for_each(None, &mut stats, |row, i| {
                out.push((i.event_id.into_owned(), prov.get(row)));
            });
        }
        (has, out)
    }

    #[test]
    fn rows_come_with_their_partition_and_offset_or_none_for_other_tools_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArchiveStore::local(dir.path());
        let mut b = ImpressionsBuilder::with_capacity(3);
        b.push(&imp("a"), Some((2, 40)));
        b.push(&imp("b"), None);
        b.push(&imp("c"), Some((2, 7)));
        let batch = b.finish();
        store
            .put_parquet("own.parquet", std::slice::from_ref(&batch))
            .unwrap();
        let (has, rows) = read(&store, "own.parquet");
        assert!(has);
        assert_eq!(
            rows,
            vec![
                ("a".into(), Some((2, 40))),
                ("b".into(), None),
                ("c".into(), Some((2, 7)))
            ]
        );
        // Another tool's file: no provenance columns at all.
        let foreign = batch
            .project(&(0..IMPRESSION_COLUMNS.len()).collect::<Vec<_>>())
            .unwrap();
        store.put_parquet("foreign.parquet", &[foreign]).unwrap();
        let (has, rows) = read(&store, "foreign.parquet");
        assert!(!has);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|(_, p)| p.is_none()));
    }
}
