//! The flush task: stage archive files, wait for dead-letter and enriched-play deliveries,
//! commit the one Postgres transaction, then move the staged files into the archive. Also the
//! recovery of a newly owned unit's staging folder.

use std::sync::Arc;

pub mod shared;

pub use shared::Shared;

use playsource_domain::PerTopic;

use crate::archive_sink;
use crate::checkpoint::{self, LayerFile, NextManifest, PendingCheckpoint};
use crate::error::Error;
use crate::metrics as m;
use crate::retry::Backoff;
use crate::sink_postgres::{self, OffsetRow};
use crate::unit::UnitFlush;

/// What a finished flush reports back to the loop.
pub struct FlushDone {
    pub committed: Vec<(i32, Vec<OffsetRow>)>,
    pub fenced: Vec<(i32, i64)>,
    /// Units withheld because a newer catalog version applies to them, to rebuild.
    pub stale: crate::catalog_check::Withheld,
    /// Per (partition, epoch) that checkpointed: its committed layer files, or None when its
    /// layer could not be written (the next one is then full).
    pub checkpoints: Vec<(i32, i64, Option<Vec<LayerFile>>)>,
}

/// Publishes committed staged files of a newly owned unit and clears its staging folder.
pub async fn recover_staging(s: &Shared, p: i32) -> Result<(), Error> {
    let group = &s.cfg.group_id;
    let files = s
        .retry
        .run("read staged files", |_| {
            sink_postgres::staged_files(&s.pool, group, p)
        })
        .await?;
    let root = s.cfg.archive.clone();
    let g = group.clone();
    let pairs = files.clone();
    let topics = s.topics.clone();
    let hours = tokio::task::spawn_blocking(move || {
        archive_sink::publish(&root, &pairs)?;
        archive_sink::clear_staging(&root, &g, p)?;
        crate::compact::pending_hours_of(&root, &topics, p)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    let staged: Vec<String> = files.into_iter().map(|(s, _)| s).collect();
    forget_staged(s, p, &staged).await?;
    // Pending files an earlier owner left: compacted once closed, idle or at exit.
    if let Some(epoch) = s
        .retry
        .run("read a partition lease", |_| {
            sink_postgres::lease_epoch(&s.pool, group, p)
        })
        .await?
    {
        s.compaction.note(p, epoch, PerTopic::default(), &hours);
    }
    Ok(())
}

/// Whether `epoch` still holds the lease of partition `p` (riding through a Postgres outage).
async fn still_owned(s: &Shared, p: i32, epoch: i64) -> Result<bool, Error> {
    let current = s
        .retry
        .run("read a partition lease", |_| {
            sink_postgres::lease_epoch(&s.pool, &s.cfg.group_id, p)
        })
        .await?;
    Ok(current == Some(epoch))
}

/// Forgets moved staged files, riding through a Postgres outage.
async fn forget_staged(s: &Shared, p: i32, staged: &[String]) -> Result<(), Error> {
    s.retry
        .run("forget staged files", |_| {
            sink_postgres::forget_staged(&s.pool, &s.cfg.group_id, p, staged)
        })
        .await
}

/// Deletes the staged files of units whose commit was refused: they are listed nowhere, so no
/// owner would ever publish or clear them (a take-over's new group stages under its own folder).
async fn drop_fenced_staging(s: &Shared, staged_of: &[(i32, Vec<String>)], fenced: &[i32]) {
    let files: Vec<String> = staged_of
        .iter()
        .filter(|(p, _)| fenced.contains(p))
        .flat_map(|(_, files)| files.iter().cloned())
        .collect();
    if files.is_empty() {
        return;
    }
    let store = s.cfg.archive.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for f in files {
            if let Err(e) = store.delete(&f) {
                tracing::warn!(path = %store.describe(&f).display(), error = %e, "cannot delete a fenced flush's staged file (readers skip it)");
            }
        }
    })
    .await;
}

/// One flush: stage archive files, wait for DLQ deliveries and enriched plays, commit the
/// transaction, then move the staged files into the archive.
pub async fn flush(shared: Arc<Shared>, flushes: Vec<UnitFlush>) -> Result<FlushDone, Error> {
    let s = &shared;
    // Before anything is staged or published: units that counted plays with a catalog older
    // than a version in effect for them are withheld (rebuilt by the loop).
    let (flushes, stale) = crate::catalog_check::withhold_stale(s, flushes).await?;
    let mut commits = Vec::with_capacity(flushes.len());
    let mut dlq_all = Vec::new();
    let mut enriched_all = Vec::new();
    let mut fenced_early = Vec::new();
    let mut manifests: Vec<(i32, i64, NextManifest)> = Vec::new();
    let mut checkpoints = Vec::new();
    for f in flushes {
        let mut commit = f.commit;
        if !f.archive.is_empty() {
            let root = s.cfg.archive.clone();
            let group = s.cfg.group_id.clone();
            let topics = s.topics.clone();
            let (p, epoch) = (commit.partition, commit.epoch);
            let files = f.archive;
            let written = tokio::task::spawn_blocking(move || {
                archive_sink::write_staged(&root, &group, p, epoch, &topics, files)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
            match written {
                Ok(staged) => commit.staged = staged,
                // A new owner clears the unit's staging folder when it takes the unit, so a
                // write racing it fails: the unit is fenced (its commit would be refused anyway)
                // and nothing of it is delivered. Still ours: a real archive error.
                Err(e) if !still_owned(s, p, epoch).await? => {
                    tracing::warn!(partition = p, error = %e, "another owner holds this partition; dropping it");
                    ::metrics::counter!(m::FENCED).increment(1);
                    fenced_early.push((p, epoch));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(pending) = f.checkpoint {
            let (p, epoch) = (commit.partition, commit.epoch);
            match write_checkpoint(s, epoch, pending).await? {
                Some((row, next)) => {
                    commit.checkpoint = Some(row);
                    manifests.push((p, epoch, next));
                }
                None => checkpoints.push((p, epoch, None)),
            }
        }
        dlq_all.extend(f.dlq);
        enriched_all.extend(f.enriched);
        commits.push(commit);
    }
    let publisher = &s.publisher;
    publisher
        .deliver_all(&s.cfg.topics.dlq, dlq_all, &s.retry)
        .await?;
    if !enriched_all.is_empty() {
        let topic = &s.cfg.topics.enriched;
        let mut deliveries = Vec::with_capacity(enriched_all.len());
        for (key, json) in &enriched_all {
            deliveries.push(
                publisher
                    .enqueue(topic, Some(key.as_bytes()), Some(json), None)
                    .await?,
            );
        }
        publisher.deliver_all(topic, deliveries, &s.retry).await?;
        ::metrics::counter!(m::ENRICHED).increment(enriched_all.len() as u64);
    }
    let epochs: Vec<(i32, i64)> = commits.iter().map(|c| (c.partition, c.epoch)).collect();
    // A retried commit first checks whether the failed attempt landed after all (a connection
    // lost during COMMIT), so its deltas are never added twice.
    let mut backoff = Backoff::new(&s.retry);
    let mut retrying = false;
    let staged_of: Vec<(i32, Vec<String>)> = commits
        .iter()
        .map(|c| {
            (
                c.partition,
                c.staged.iter().map(|f| f.staged.clone()).collect(),
            )
        })
        .collect();
    let archive = playsource_store::progress::archive_key(&s.cfg.archive.location());
    let outcome = loop {
        match sink_postgres::commit_to(
            &s.pool,
            &s.cfg.group_id,
            Some(&archive),
            &s.topics,
            &mut commits,
            retrying,
        )
        .await
        {
            Ok(outcome) => break outcome,
            Err(e) if backoff.again("commit a flush", &e).await => {
                retrying = true;
            }
            Err(e) => return Err(e),
        }
    };
    let mut fenced: Vec<(i32, i64)> = epochs
        .into_iter()
        .filter(|(p, _)| outcome.fenced.contains(p))
        .collect();
    fenced.extend(fenced_early);
    drop_fenced_staging(s, &staged_of, &outcome.fenced).await;
    settle_checkpoints(s, manifests, &outcome.fenced, &mut checkpoints).await;
    let mut committed = Vec::with_capacity(commits.len());
    for c in commits {
        if !c.staged.is_empty() {
            let pairs: Vec<(String, String)> = c
                .staged
                .iter()
                .map(|f| (f.staged.clone(), f.final_path.clone()))
                .collect();
            let root = s.cfg.archive.clone();
            tokio::task::spawn_blocking(move || archive_sink::publish(&root, &pairs))
                .await
                .map_err(|e| Error::Task(e.to_string()))??;
            for f in &c.staged {
                ::metrics::counter!(m::ARCHIVED_ROWS, "topic" => s.topics[f.topic].clone())
                    .increment(f.rows);
            }
            let staged: Vec<String> = c.staged.iter().map(|f| f.staged.clone()).collect();
            forget_staged(s, c.partition, &staged).await?;
        }
        let high_water = PerTopic::from_fn(|k| {
            c.offsets
                .iter()
                .filter(|o| o.topic == s.topics[k])
                .filter_map(|o| o.high_water)
                .max()
        });
        let hours =
            crate::compact::hours_of(c.staged.iter().map(|f| (f.topic, f.final_path.clone())));
        s.compaction.note(c.partition, c.epoch, high_water, &hours);
        committed.push((c.partition, c.offsets));
    }
    // Hours past the event time by the allowed lateness: published now (bounded per flush).
    crate::compact::after_flush(s).await;
    Ok(FlushDone {
        committed,
        fenced,
        stale,
        checkpoints,
    })
}

/// Sorts, encodes and writes a unit's checkpoint layer off the loop; the manifest row to commit
/// and the manifest it makes, or None when the layer could not be written (logged and counted:
/// the flush goes on without it, and the unit's next layer is full).
async fn write_checkpoint(
    s: &Shared,
    epoch: i64,
    pending: PendingCheckpoint,
) -> Result<Option<(sink_postgres::CheckpointRow, NextManifest)>, Error> {
    let store = s.cfg.archive.clone();
    let full = pending.layer.head.is_full();
    let layer = pending.layer;
    let written = tokio::task::spawn_blocking(move || checkpoint::write_layer(&store, layer))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let kind = if full { "full" } else { "incremental" };
    let file = match written {
        Ok(file) => file,
        Err(e) => {
            ::metrics::counter!(m::CHECKPOINT_FAILURES, "stage" => "write").increment(1);
            tracing::warn!(error = %e, "cannot write a checkpoint layer; the flush goes on without it and the next layer is full");
            if let Some(m) = pending.merged {
                delete_layers(s, vec![m.file]).await;
            }
            return Ok(None);
        }
    };
    ::metrics::counter!(m::CHECKPOINTS, "kind" => kind).increment(1);
    ::metrics::gauge!(m::CHECKPOINT_LAYER_BYTES, "kind" => kind).set(file.bytes as f64);
    let next = pending.manifest.next(file, full, pending.merged);
    let row = sink_postgres::CheckpointRow {
        impressions_offset: pending.offsets[playsource_domain::Topic::Impressions],
        plays_offset: pending.offsets[playsource_domain::Topic::Plays],
        epoch,
        layers: next.files.iter().map(|f| f.path.clone()).collect(),
        layer_bytes: next.files.iter().map(|f| f.bytes).collect(),
    };
    Ok(Some((row, next)))
}

/// After the commit: a committed manifest's superseded files are deleted and its files reported
/// to the loop; a fenced unit's new files (listed nowhere) are deleted.
async fn settle_checkpoints(
    s: &Shared,
    manifests: Vec<(i32, i64, NextManifest)>,
    fenced: &[i32],
    report: &mut Vec<(i32, i64, Option<Vec<LayerFile>>)>,
) {
    for (p, epoch, next) in manifests {
        if fenced.contains(&p) {
            delete_layers(s, next.added).await;
            continue;
        }
        ::metrics::gauge!(m::CHECKPOINT_BYTES, "partition" => p.to_string())
            .set(next.files.iter().map(|f| f.bytes).sum::<i64>() as f64);
        delete_layers(s, next.superseded).await;
        report.push((p, epoch, Some(next.files)));
    }
}

/// Deletes layer files (off the loop); failures are logged, a new owner collects them.
async fn delete_layers(s: &Shared, files: Vec<LayerFile>) {
    if files.is_empty() {
        return;
    }
    let store = s.cfg.archive.clone();
    let _ =
        tokio::task::spawn_blocking(move || checkpoint::delete_superseded(&store, &files)).await;
}

/// The idle compaction (`crate::compact`) as a job of the flush task, so the loop waits for it
/// as for a flush; `None` when there is nothing to compact.
pub fn spawn_idle_compaction(
    s: &Arc<Shared>,
) -> Option<tokio::task::JoinHandle<Result<FlushDone, Error>>> {
    if !s.compaction.has_work() {
        return None;
    }
    let s = Arc::clone(s);
    Some(tokio::spawn(async move {
        crate::compact::idle(&s).await;
        Ok(FlushDone {
            committed: Vec::new(),
            fenced: Vec::new(),
            stale: Default::default(),
            checkpoints: Vec::new(),
        })
    }))
}
