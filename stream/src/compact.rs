//! Publishing the raw archive's hours as one file per topic-partition (docs/reference.md §5,
//! docs/stream.md "Raw archive, exactly once").
//!
//! After a flush commits, its archive files wait in `_pending/<topic>/date=D/hour=HH/` (readers of
//! the Hive layout skip `_` folders; playsource's own readers include them, see
//! `ArchiveStore::list_data_files`). This module decides when a unit compacts an hour of its
//! partition into `<topic>/date=D/hour=HH/p<p>.parquet` (`playsource_archive::compact`):
//!
//! - after a flush, the hours the unit's event time of that topic has passed by
//!   `allowed_lateness` (closed hours), at most [`MAX_PER_FLUSH`] per flush;
//! - when nothing arrived for [`idle_after`] (caught up), every hour with pending files;
//! - before the stream exits (shutdown, `--exit-when-idle`), every hour with pending files.
//!
//! Each rewrite happens while the unit holds a shared lock on its lease row with its epoch
//! (`playsource_store::compaction`), so a take-over waits for it and a stale owner never writes.
//! A failure is logged and retried later: the rows are safe in the pending area meanwhile.

pub mod tracker;

pub use tracker::{Hour, Tracker};

use std::sync::OnceLock;
use std::time::Duration;

use playsource_archive::compact::{delete_covered, write_published, PENDING_DIR};
use playsource_archive::layout::{parse_date_segment, parse_hour_segment, stream_file_range};
use playsource_archive::ArchiveStore;
use playsource_domain::{PerTopic, Topic};

use crate::error::Error;
use crate::flush::shared::Shared;
use crate::metrics as m;

/// Most hours a flush compacts (the rest wait for the next flushes), so a flush is not delayed
/// long by a backlog of closed hours.
pub const MAX_PER_FLUSH: usize = 4;

/// How long nothing must arrive before the open hours are compacted too.
pub fn idle_after(flush_interval: Duration) -> Duration {
    (flush_interval * 2).max(Duration::from_secs(1))
}

/// The hours of a flush's files moved to the pending area (`_pending/<topic>/date=D/hour=HH/..`).
pub fn hours_of(paths: impl IntoIterator<Item = (Topic, String)>) -> Vec<Hour> {
    paths
        .into_iter()
        .filter_map(|(k, path)| {
            let mut seg = path.rsplit('/').skip(1);
            let hour = parse_hour_segment(seg.next()?)?;
            let day = parse_date_segment(seg.next()?)?;
            Some((k, day, hour))
        })
        .collect()
}

/// The pending hours of partition `p` left by an earlier owner (blocking I/O).
pub fn pending_hours_of(
    store: &ArchiveStore,
    topics: &PerTopic<String>,
    p: i32,
) -> Result<Vec<Hour>, Error> {
    let mut out = Vec::new();
    for (k, topic) in topics.iter() {
        let dir = format!("{PENDING_DIR}/{topic}");
        let files = store.list(&dir)?;
        out.extend(hours_of(files.into_iter().filter_map(|(rel, _)| {
            let name = rel.rsplit('/').next()?;
            let (fp, _, _) = stream_file_range(name)?;
            (i64::from(fp) == i64::from(p)).then_some((k, rel))
        })));
    }
    Ok(out)
}

/// Compacts the closed hours due after a flush (bounded by [`MAX_PER_FLUSH`]).
pub async fn after_flush(s: &Shared) {
    let lateness = s.cfg.attribution.allowed_lateness_ms;
    let due = s.compaction.due(lateness, false, MAX_PER_FLUSH);
    run(s, due).await;
}

/// Compacts up to [`MAX_PER_FLUSH`] hours with pending files, open ones included (idle): a job
/// the loop waits for as for a flush, so it stays short — the next idle moment takes the next
/// hours, and a message arriving meanwhile waits at most one such job.
pub async fn idle(s: &Shared) {
    let due = s.compaction.due(0, true, MAX_PER_FLUSH);
    run(s, due).await;
}

/// Compacts every hour with pending files (before exiting).
pub async fn everything(s: &Shared) {
    let due = s.compaction.due(0, true, usize::MAX);
    run(s, due).await;
}

async fn run(s: &Shared, due: Vec<(i32, i64, Hour)>) {
    for (p, epoch, hour) in due {
        match compact_hour(s, p, epoch, hour).await {
            Ok(true) => s.compaction.done(p, hour),
            Ok(false) => {
                tracing::info!(
                    partition = p,
                    "another owner holds this partition; leaving its pending archive files to it"
                );
                s.compaction.forget(p, epoch);
            }
            Err(e) => {
                // The rows are safe (and readable) in the pending area; the next owner, restart
                // or idle moment compacts them.
                ::metrics::counter!(m::COMPACTION_FAILURES).increment(1);
                tracing::warn!(partition = p, error = %e, "cannot compact an archive hour; its files stay pending");
                s.compaction.done(p, hour);
            }
        }
    }
}

/// Compacts one hour of partition `p` under the lease lock; `Ok(false)` when fenced.
async fn compact_hour(s: &Shared, p: i32, epoch: i64, (k, day, hour): Hour) -> Result<bool, Error> {
    let Some(hold) =
        playsource_store::compaction::hold_lease(&s.pool, &s.cfg.group_id, p, epoch).await?
    else {
        return Ok(false);
    };
    let store = s.cfg.archive.clone();
    let topic = s.topics[k].clone();
    let partition = u32::try_from(p).unwrap_or_default();
    let written = tokio::task::spawn_blocking(move || {
        write_published(&store, &topic, day, hour, partition, &|| {
            crash_point("compact-write")
        })
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    // Released whether or not the write succeeded.
    let released = hold.release().await;
    let Some(published) = written? else {
        return released.map(|()| true).map_err(Error::from);
    };
    released?;
    crash_point("compact-written");
    if published.written {
        ::metrics::counter!(m::COMPACTIONS, "topic" => s.topics[k].clone()).increment(1);
    }
    let store = s.cfg.archive.clone();
    let covered = published.covered;
    tokio::task::spawn_blocking(move || {
        delete_covered(&store, &covered, &|| crash_point("compact-deleting"))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    Ok(true)
}

/// Test hook: `PLAYSOURCE_TEST_CRASH_AT=<point>` aborts the process at that point of a
/// compaction (`compact-write`: the new file encoded, not written; `compact-written`: written,
/// no pending file deleted; `compact-deleting`: one pending file deleted). Used by
/// `stream/tests/compaction.rs` through the worker binary; unset in production.
fn crash_point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("PLAYSOURCE_TEST_CRASH_AT").ok());
    if at.as_deref() == Some(point) {
        tracing::error!(point, "crashing on purpose (PLAYSOURCE_TEST_CRASH_AT)");
        std::process::abort();
    }
}
