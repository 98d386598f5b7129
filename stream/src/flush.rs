//! The flush task: stage archive files, wait for dead-letter and enriched-play deliveries,
//! commit the one Postgres transaction, then move the staged files into the archive. Also the
//! recovery of a newly owned unit's staging folder.

use std::sync::Arc;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::archive_sink;
use crate::dlq;
use crate::error::Error;
use crate::metrics as m;
use crate::sink_postgres::{self, OffsetRow};
use crate::unit::UnitFlush;
use crate::StreamConfig;

/// What a finished flush reports back to the loop.
pub struct FlushDone {
    pub committed: Vec<(i32, Vec<OffsetRow>)>,
    pub fenced: Vec<(i32, i64)>,
}

/// Things the flush task needs.
pub struct Shared {
    pub cfg: StreamConfig,
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub topics: [String; 2],
}

/// Publishes committed staged files of a newly owned unit and clears its staging folder.
pub async fn recover_staging(s: &Shared, p: i32) -> Result<(), Error> {
    let group = &s.cfg.group_id;
    let files = sink_postgres::staged_files(&s.pool, group, p).await?;
    let root = s.cfg.archive.clone();
    let g = group.clone();
    let pairs = files.clone();
    tokio::task::spawn_blocking(move || {
        archive_sink::publish(&root, &pairs)?;
        archive_sink::clear_staging(&root, &g, p)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    let staged: Vec<String> = files.into_iter().map(|(s, _)| s).collect();
    sink_postgres::forget_staged(&s.pool, group, p, &staged).await
}

/// One flush: stage archive files, wait for DLQ deliveries and enriched plays, commit the
/// transaction, then move the staged files into the archive.
pub async fn flush(shared: Arc<Shared>, flushes: Vec<UnitFlush>) -> Result<FlushDone, Error> {
    let s = &shared;
    let mut commits = Vec::with_capacity(flushes.len());
    let mut dlq_all = Vec::new();
    let mut enriched_all = Vec::new();
    for f in flushes {
        let mut commit = f.commit;
        if !f.archive.is_empty() {
            let root = s.cfg.archive.clone();
            let group = s.cfg.group_id.clone();
            let topics = s.topics.clone();
            let (p, epoch) = (commit.partition, commit.epoch);
            let files = f.archive;
            commit.staged = tokio::task::spawn_blocking(move || {
                archive_sink::write_staged(&root, &group, p, epoch, &topics, files)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        }
        dlq_all.extend(f.dlq);
        enriched_all.extend(f.enriched);
        commits.push(commit);
    }
    dlq::await_all(&s.cfg.topics.dlq, dlq_all).await?;
    if !enriched_all.is_empty() {
        let mut deliveries = Vec::with_capacity(enriched_all.len());
        for (key, json) in &enriched_all {
            deliveries.push(dlq::send_plain(&s.producer, &s.cfg.topics.enriched, key, json).await?);
        }
        dlq::await_all(&s.cfg.topics.enriched, deliveries).await?;
        ::metrics::counter!(m::ENRICHED).increment(enriched_all.len() as u64);
    }
    let epochs: Vec<(i32, i64)> = commits.iter().map(|c| (c.partition, c.epoch)).collect();
    let outcome = sink_postgres::commit(&s.pool, &s.cfg.group_id, &s.topics, &mut commits).await?;
    let fenced = epochs
        .into_iter()
        .filter(|(p, _)| outcome.fenced.contains(p))
        .collect();
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
                ::metrics::counter!(m::ARCHIVED_ROWS, "topic" => s.topics[usize::from(f.topic)].clone())
                    .increment(f.rows);
            }
            let staged: Vec<String> = c.staged.iter().map(|f| f.staged.clone()).collect();
            sink_postgres::forget_staged(&s.pool, &s.cfg.group_id, c.partition, &staged).await?;
        }
        committed.push((c.partition, c.offsets));
    }
    Ok(FlushDone { committed, fenced })
}
