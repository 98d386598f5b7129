//! Writes the valid messages of a workload to the Parquet archive (docs/reference.md §5).

use playsource_archive::{ArchiveStore, ImpressionsWriter, PlaysWriter, WrittenFile};

use crate::error::Error;
use crate::message::{Counts, Event};
use crate::progress::Progress;
use crate::traffic::Traffic;

/// Rows buffered (both topics) before the buffered partitions are written.
pub const FLUSH_ROWS: usize = 1_000_000;

/// What was written to the archive.
#[derive(Clone, Debug, Default)]
pub struct ArchiveReport {
    /// Every message generated (malformed ones are counted but not written).
    pub counts: Counts,
    /// The files written.
    pub files: Vec<WrittenFile>,
}

impl ArchiveReport {
    /// Rows written over all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Writes every non-malformed message of `traffic` (first deliveries, late ones and
/// redeliveries, as a stream would have archived them) under `archive` (a local layout or an
/// object store), in the folders
/// `impressions_dir` and `plays_dir` (the topic names). Files are named
/// `gen-s<seed>-<chunk>.parquet`, so the same config writes the same files.
pub fn write_archive(
    traffic: Traffic,
    archive: impl Into<ArchiveStore>,
    impressions_dir: &str,
    plays_dir: &str,
    seed: u64,
    progress: Option<&Progress>,
) -> Result<ArchiveReport, Error> {
    let archive = archive.into();
    let mut imps = ImpressionsWriter::in_store(archive.clone(), impressions_dir)?;
    let mut plays = PlaysWriter::in_store(archive, plays_dir)?;
    let mut report = ArchiveReport::default();
    let mut chunk = 0u32;
    let mut traffic = traffic;
    for msg in traffic.by_ref() {
        match &msg.event {
            Some(Event::Impression(i)) => imps.push(i, None),
            Some(Event::Play(p)) => plays.push(p, None),
            None => {}
        }
        if let Some(p) = progress {
            p.on_message(&msg);
        }
        if imps.len() + plays.len() >= FLUSH_ROWS {
            flush(&mut imps, &mut plays, seed, chunk, &mut report)?;
            chunk += 1;
        }
    }
    flush(&mut imps, &mut plays, seed, chunk, &mut report)?;
    report.counts = traffic.counts().clone();
    Ok(report)
}

fn flush(
    imps: &mut ImpressionsWriter,
    plays: &mut PlaysWriter,
    seed: u64,
    chunk: u32,
    report: &mut ArchiveReport,
) -> Result<(), Error> {
    let stem = format!("gen-s{seed}-{chunk:05}");
    report.files.extend(imps.flush(&stem)?);
    report.files.extend(plays.flush(&stem)?);
    Ok(())
}
