//! Units withheld from a flush because a catalog version newer than the cache applies to plays
//! they counted ([`crate::catalog_check`]): the fresh catalog is installed and each unit is
//! rebuilt as a newly assigned partition is.

use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::state::Loop;
use crate::catalog_cache::held_version;
use crate::catalog_check::Withheld;
use crate::error::Error;

impl Loop {
    /// Installs the fresh catalog and drops the withheld units (pausing their topic-partitions)
    /// for [`Loop::rebuild_stale`]. Only the unit of the withheld epoch: a newer one may have
    /// been built meanwhile.
    pub(super) fn withhold(&mut self, stale: Withheld) {
        if let Some(catalog) = stale.catalog {
            self.cache.set(catalog);
            self.catalog = self.cache.get();
            self.catalog_version = held_version(&self.catalog);
        }
        for (p, epoch) in &stale.units {
            let Some(u) = self.units.get(p).filter(|u| u.epoch() == *epoch) else {
                continue;
            };
            let assigned = u.assigned();
            self.units.remove(p);
            let mut tpl = TopicPartitionList::new();
            for t in self.shared.topics.values() {
                tpl.add_partition(t, *p);
            }
            let _ = self.consumer.pause(&tpl);
            self.rebuild.push((*p, assigned));
            self.summary.catalog_rebuilds += 1;
        }
    }

    /// Rebuilds the units withheld for a newer catalog version as a newly assigned partition is
    /// built (lease, staged files, snapshot, replay to the committed offsets with outputs
    /// suppressed), with the fresh catalog, so their plays since the last flush are counted again.
    pub(super) async fn rebuild_stale(&mut self) -> Result<(), Error> {
        for (p, assigned) in std::mem::take(&mut self.rebuild) {
            if self.units.contains_key(&p) {
                continue;
            }
            let shared = Arc::clone(&self.shared);
            let unit = shared
                .retry
                .run("rebuild a partition", |_| self.init_unit(p, assigned))
                .await?;
            let at = unit.next();
            tracing::info!(partition = p, epoch = unit.epoch(), from = ?at, committed = ?unit.committed(),
                "unit rebuilt with the new catalog version");
            self.units.insert(p, unit);
            self.position(p, assigned, at).await?;
        }
        Ok(())
    }
}
