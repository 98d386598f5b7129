//! Taking over a partition: the unit a newly assigned (or rebuilt) partition starts as — the
//! lease epoch that fences older owners, the staged archive files its last owner committed, the
//! committed offsets (counting what retention dropped) and the engine from the latest checkpoint
//! that fits, else a replay from the earliest retained offsets (preceded, when Kafka no longer
//! holds a topic-partition from offset 0, by a bootstrap from the archive: `bootstrap.rs`).

use playsource_domain::{Engine, PerTopic, Topic};

use super::state::Loop;
use crate::align::Alignment;
use crate::checkpoint::{self, LayerFile, Manifest};
use crate::error::Error;
use crate::flush::recover_staging;
use crate::metrics as m;
use crate::sink_postgres;
use crate::unit::Unit;

impl Loop {
    /// Takes the lease, publishes committed staged files, and restores the engine.
    pub(super) async fn init_unit(&self, p: i32, assigned: PerTopic<bool>) -> Result<Unit, Error> {
        let s = &self.shared;
        let group = &s.cfg.group_id;
        let epoch = sink_postgres::acquire_lease(&s.pool, group, p, &s.cfg.owner).await?;
        recover_staging(s, p).await?;
        let mut low = PerTopic::<i64>::default();
        for k in assigned.topics() {
            low[k] = self.low_watermark(&s.topics[k], p).await?;
        }
        let mut committed = low;
        for k in Topic::ALL {
            if let Some(c) =
                sink_postgres::committed_offset(&s.pool, group, &s.topics[k], p).await?
            {
                if c < low[k] {
                    ::metrics::counter!(m::RETENTION_LOST, "topic" => s.topics[k].clone(), "partition" => p.to_string())
                        .increment((low[k] - c) as u64);
                    tracing::warn!(lost = low[k] - c, topic = %s.topics[k], partition = p, committed = c, earliest = low[k],
                        "events after the committed offset are no longer retained; continuing from the earliest retained");
                }
                committed[k] = c.max(low[k]);
            }
        }
        let (engine, manifest, start) = self.restore_checkpoint(p, low, committed).await?;
        let engine = self
            .bootstrap_from_archive(p, assigned, low, engine)
            .await?;
        let align = Alignment::new(s.cfg.max_drift);
        Ok(Unit::new(
            p, epoch, engine, manifest, assigned, start, committed, low, align,
        ))
    }

    /// The engine of the unit's latest checkpoint that fits (this configuration, offsets still
    /// retained and not past the committed ones), its manifest and the offsets it stands at;
    /// else an empty engine at the earliest retained offsets. Then deletes the unit's layer files
    /// that manifest does not name (the lease is ours: no older owner can commit them).
    async fn restore_checkpoint(
        &self,
        p: i32,
        low: PerTopic<i64>,
        committed: PerTopic<i64>,
    ) -> Result<(Engine, Manifest, PerTopic<i64>), Error> {
        let s = &self.shared;
        let group = &s.cfg.group_id;
        let cfg = s.cfg.attribution;
        let mut restored = None;
        if let Some(c) =
            sink_postgres::load_checkpoint(&s.pool, group, p, &s.topics, checkpoint::FORMAT).await?
        {
            let at = PerTopic::new(c.impressions_offset, c.plays_offset);
            let files: Vec<LayerFile> = c
                .layers
                .into_iter()
                .zip(c.layer_bytes)
                .map(|(path, bytes)| LayerFile { path, bytes })
                .collect();
            if Topic::ALL
                .into_iter()
                .all(|k| at[k] >= low[k] && at[k] <= committed[k])
            {
                let store = s.cfg.archive.clone();
                let read = files.clone();
                let started = std::time::Instant::now();
                let engine =
                    tokio::task::spawn_blocking(move || checkpoint::restore(&store, &read, &cfg))
                        .await
                        .map_err(|e| Error::Task(e.to_string()))?;
                match engine {
                    Ok(Some(e)) => {
                        tracing::info!(partition = p, layers = files.len(), keys = e.stats().keys,
                            seconds = started.elapsed().as_secs_f64(), "engine restored from its checkpoint");
                        restored = Some((e, Manifest { files }, at));
                    }
                    Ok(None) => tracing::info!(partition = p, "the checkpoint was taken under another attribution configuration; rebuilding from the earliest offsets"),
                    Err(e) => tracing::warn!(partition = p, error = %e, "checkpoint unreadable; rebuilding from the earliest offsets"),
                }
            } else {
                tracing::info!(partition = p, "the checkpoint does not fit the retained or committed offsets; rebuilding from the earliest offsets");
            }
        }
        let (engine, manifest, start) =
            restored.unwrap_or_else(|| (Engine::new(cfg), Manifest::default(), low));
        let store = s.cfg.archive.clone();
        let (g, keep) = (group.clone(), manifest.files.clone());
        let collected =
            tokio::task::spawn_blocking(move || checkpoint::collect_garbage(&store, &g, p, &keep))
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
        match collected {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                partition = p,
                files = n,
                "deleted checkpoint layers no manifest names"
            ),
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "cannot list or delete old checkpoint layers (retried at the next take-over)")
            }
        }
        Ok((engine, manifest, start))
    }

    async fn low_watermark(&self, topic: &str, p: i32) -> Result<i64, Error> {
        Ok(self.watermarks(topic, p).await?.0)
    }
}
