//! The raw archive (docs/reference.md §5), exactly once.
//!
//! A unit buffers its valid events by (topic, day, hour). At a flush each buffer is written to the
//! unit's staging folder `<archive>/_staging/<group>/p<p>/e<epoch>/...` (readers skip folders
//! starting with `_`), named by its offset range, so the name is deterministic. The flush
//! transaction lists the staged files in `stream_archive_staged`; after the commit they are
//! renamed into the pending area `<archive>/_pending/<topic>/date=D/hour=H/` and the rows
//! deleted; `crate::compact` later publishes each hour as one file per partition. A new owner of the
//! partition renames what is listed (committed but not yet moved) and deletes every other staged
//! file (never committed), so each event reaches the archive once and no reader sees half a file.
//! The archive is a local folder or an object store ([`ArchiveStore`]): on an object store a
//! "rename" is a conditional PUT of the final name, then the deletion of the staged file.

use std::path::{Path, PathBuf};

use playsource_archive::compact::PENDING_DIR;
use playsource_archive::layout::{date_segment, hour_segment, partition_of};
use playsource_archive::{ArchiveStore, ImpressionsBuilder, PlaysBuilder};
use playsource_domain::{Day, Impression, PerTopic, Play, Topic};
use rustc_hash::FxHashMap;

use crate::error::Error;

/// Name of the staging folder under the archive root.
pub const STAGING_DIR: &str = "_staging";

/// One (topic, day, hour) buffer.
enum Rows {
    Impressions(Box<ImpressionsBuilder>),
    Plays(Box<PlaysBuilder>),
}

struct Part {
    rows: Rows,
    first: i64,
    last: i64,
    n: u64,
}

/// The archive buffers of one unit between flushes.
#[derive(Default)]
pub struct ArchiveBuffer {
    parts: FxHashMap<(Topic, Day, u32), Part>,
}

/// A buffer ready to be written: where it goes and its rows.
pub struct PendingFile {
    pub topic: Topic,
    pub day: Day,
    pub hour: u32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub rows: u64,
    builder: Rows,
}

/// A file written to staging: paths relative to the archive root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedFile {
    pub staged: String,
    pub final_path: String,
    pub rows: u64,
    pub topic: Topic,
}

impl ArchiveBuffer {
    /// Buffers one valid impression read at `offset` of partition `p`.
    pub fn push_impression(&mut self, imp: &Impression<'_>, p: i32, offset: i64) {
        let (day, hour) = partition_of(imp.ts);
        let part = self
            .parts
            .entry((Topic::Impressions, day, hour))
            .or_insert_with(|| Part {
                rows: Rows::Impressions(Box::new(ImpressionsBuilder::with_capacity(256))),
                first: offset,
                last: offset,
                n: 0,
            });
        if let Rows::Impressions(b) = &mut part.rows {
            b.push(imp, Some((p, offset)));
            part.last = offset;
            part.n += 1;
        }
    }

    /// Buffers one valid play read at `offset` of partition `p`.
    pub fn push_play(&mut self, play: &Play<'_>, p: i32, offset: i64) {
        let (day, hour) = partition_of(play.ts);
        let part = self
            .parts
            .entry((Topic::Plays, day, hour))
            .or_insert_with(|| Part {
                rows: Rows::Plays(Box::new(PlaysBuilder::with_capacity(256))),
                first: offset,
                last: offset,
                n: 0,
            });
        if let Rows::Plays(b) = &mut part.rows {
            b.push(play, Some((p, offset)));
            part.last = offset;
            part.n += 1;
        }
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Takes every buffer.
    pub fn take(&mut self) -> Vec<PendingFile> {
        let mut out: Vec<PendingFile> = self
            .parts
            .drain()
            .map(|((topic, day, hour), p)| PendingFile {
                topic,
                day,
                hour,
                first_offset: p.first,
                last_offset: p.last,
                rows: p.n,
                builder: p.rows,
            })
            .collect();
        out.sort_by_key(|f| (f.topic, f.day, f.hour));
        out
    }

    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        self.parts.clear();
    }
}

/// A group id as a folder name.
fn group_dir(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `_staging/<group>/p<p>` relative to the archive root.
pub fn unit_staging_dir(group: &str, partition: i32) -> PathBuf {
    Path::new(STAGING_DIR)
        .join(group_dir(group))
        .join(format!("p{partition}"))
}

/// Writes each pending file to staging (blocking I/O: call from `spawn_blocking`).
pub fn write_staged(
    store: &ArchiveStore,
    group: &str,
    partition: i32,
    epoch: i64,
    topics: &PerTopic<String>,
    files: Vec<PendingFile>,
) -> Result<Vec<StagedFile>, Error> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let topic = &topics[f.topic];
        let name = format!("p{partition}-o{}-{}.parquet", f.first_offset, f.last_offset);
        let rel_dir = Path::new(topic)
            .join(date_segment(f.day))
            .join(hour_segment(f.hour));
        let staged = unit_staging_dir(group, partition)
            .join(format!("e{epoch}"))
            .join(&rel_dir)
            .join(&name);
        let final_path = Path::new(PENDING_DIR).join(&rel_dir).join(&name);
        let batch = match f.builder {
            Rows::Impressions(mut b) => b.finish(),
            Rows::Plays(mut b) => b.finish(),
        };
        let staged = staged.to_string_lossy().into_owned();
        store.put_parquet(&staged, &[batch])?;
        out.push(StagedFile {
            staged,
            final_path: final_path.to_string_lossy().into_owned(),
            rows: f.rows,
            topic: f.topic,
        });
    }
    Ok(out)
}

/// Moves committed staged files into the archive (blocking I/O). A file already moved is
/// skipped, so this can be repeated after a crash.
pub fn publish(store: &ArchiveStore, files: &[(String, String)]) -> Result<(), Error> {
    for (staged, final_rel) in files {
        store.move_file(staged, final_rel)?;
    }
    Ok(())
}

/// Removes the unit's staging folder (everything in it was never committed once the committed
/// files are published).
pub fn clear_staging(store: &ArchiveStore, group: &str, partition: i32) -> Result<(), Error> {
    let dir = unit_staging_dir(group, partition);
    Ok(store.delete_dir(&dir.to_string_lossy())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use playsource_domain::decode_play;

    #[test]
    fn staged_files_are_named_by_offsets_and_published_once() {
        let root = tempfile::tempdir().unwrap();
        let mut buf = ArchiveBuffer::default();
        let a = br#"{"event_id":"a","ts":"2026-11-21T10:00:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}"#;
        let b = br#"{"event_id":"b","ts":"2026-11-21T11:00:00Z","member_id":1,"video_id":2,"country":"US","device":"tv"}"#;
        buf.push_play(&decode_play(a).unwrap(), 3, 10);
        buf.push_play(&decode_play(b).unwrap(), 3, 11);
        buf.push_play(&decode_play(a).unwrap(), 3, 12);
        let topics = PerTopic::new("imps".to_string(), "plays".to_string());
        let store = ArchiveStore::local(root.path());
        let staged = write_staged(&store, "g/1", 3, 7, &topics, buf.take()).unwrap();
        assert!(buf.is_empty());
        assert_eq!(staged.len(), 2);
        assert_eq!(
            staged[0].final_path,
            "_pending/plays/date=2026-11-21/hour=10/p3-o10-12.parquet"
        );
        assert_eq!(staged[0].rows, 2);
        assert!(staged[0].staged.starts_with("_staging/g_1/p3/e7/plays/"));
        let pairs: Vec<(String, String)> = staged
            .iter()
            .map(|s| (s.staged.clone(), s.final_path.clone()))
            .collect();
        publish(&store, &pairs).unwrap();
        publish(&store, &pairs).unwrap();
        assert!(root.path().join(&staged[1].final_path).exists());
        clear_staging(&store, "g/1", 3).unwrap();
        assert!(!root.path().join("_staging/g_1/p3").exists());
    }
}
