//! Taking over a partition: the unit a newly assigned (or rebuilt) partition starts as — the
//! lease epoch that fences older owners, the staged archive files its last owner committed, the
//! committed offsets (counting what retention dropped) and the engine from the latest snapshot
//! that fits, else a replay from the earliest retained offsets (preceded, when Kafka no longer
//! holds a topic-partition from offset 0, by a bootstrap from the archive: `bootstrap.rs`).

use playsource_domain::{PerTopic, Topic};

use super::state::Loop;
use crate::align::Alignment;
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
        let mut engine = playsource_domain::Engine::new(s.cfg.attribution);
        let mut start = low;
        if let Some(snap) =
            sink_postgres::load_snapshot(&s.pool, group, p, &s.topics, crate::snapshot::FORMAT)
                .await?
        {
            match crate::snapshot::decode(&snap.state) {
                Ok(e) if *e.config() == s.cfg.attribution
                    && snap.impressions_offset >= low.impressions
                    && snap.plays_offset >= low.plays
                    && snap.impressions_offset <= committed.impressions
                    && snap.plays_offset <= committed.plays =>
                {
                    engine = e;
                    start = PerTopic::new(snap.impressions_offset, snap.plays_offset);
                }
                Ok(_) => tracing::info!(partition = p, "snapshot does not fit the offsets or configuration; rebuilding from the earliest offsets"),
                Err(e) => tracing::warn!(partition = p, error = %e, "snapshot unreadable; rebuilding from the earliest offsets"),
            }
        }
        let engine = self
            .bootstrap_from_archive(p, assigned, low, engine)
            .await?;
        let align = Alignment::new(s.cfg.max_drift);
        Ok(Unit::new(
            p, epoch, engine, assigned, start, committed, low, align,
        ))
    }

    async fn low_watermark(&self, topic: &str, p: i32) -> Result<i64, Error> {
        Ok(self.watermarks(topic, p).await?.0)
    }
}
