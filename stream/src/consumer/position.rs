//! Where the consumer reads: checked seeks (through [`crate::seek`]) and event-time alignment holds
//! and releases (see [`crate::align`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use playsource_domain::{PerTopic, Topic};
use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::state::Loop;
use crate::align::Change;
use crate::error::Error;
use crate::seek;

impl Loop {
    /// Seeks the unit's assigned topic-partitions to `at`, checked (see [`crate::seek`]), and
    /// resumes them.
    pub(super) async fn position(
        &mut self,
        p: i32,
        assigned: PerTopic<bool>,
        at: PerTopic<i64>,
    ) -> Result<(), Error> {
        let low = self
            .units
            .get(&p)
            .map_or_else(PerTopic::default, |u| u.low());
        let at = at.map_with(|k, at| assigned[k].then_some(at));
        let consumer = Arc::clone(&self.consumer);
        let started = seek::seek_and_resume(consumer, &self.shared.topics, p, at, low).await?;
        if let Some(u) = self.units.get_mut(&p) {
            u.seeks_mut().record(started);
        }
        Ok(())
    }

    /// Holds or releases a topic of unit `p` for event-time alignment (see [`crate::align`]): a
    /// released topic's kept messages are processed, in order, until it is held again or none is
    /// left; then, if it was paused at the broker, it is read again from the unit's next offset.
    pub(super) async fn align(&mut self, p: i32, first: Change) -> Result<(), Error> {
        // Processing a kept message may hold or release again: a work list, not recursion.
        let mut todo = vec![first];
        while let Some(change) = todo.pop() {
            if let Some(k) = change.hold {
                self.meters.holds[k].increment(1);
                self.summary.holds += 1;
                tracing::debug!(topic = %self.shared.topics[k], partition = p, "ahead of the other topic in event time; held");
            }
            let Some(k) = change.release else {
                continue;
            };
            tracing::debug!(topic = %self.shared.topics[k], partition = p, "released");
            while let Some(m) = self
                .units
                .get_mut(&p)
                .and_then(|u| u.align_mut().next_kept(k))
            {
                let next = self
                    .process(
                        k,
                        p,
                        m.offset,
                        m.timestamp,
                        m.key.as_deref(),
                        m.payload.as_deref(),
                    )
                    .await?;
                if next != Change::default() {
                    todo.push(next);
                }
            }
            let Some(u) = self.units.get_mut(&p) else {
                return Ok(());
            };
            if u.align_mut().take_resume(k) {
                let next = u.next();
                tracing::debug!(topic = %self.shared.topics[k], partition = p, from = next[k], "resumed");
                self.position(p, PerTopic::only(k), next).await?;
            }
        }
        Ok(())
    }

    /// The messages kept for alignment passed the budget: pause held topic `k` of unit `p` at
    /// the broker (read again from the unit's next offset once its kept ones are processed).
    pub(super) fn pause_kept(&mut self, p: i32, k: Topic) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.shared.topics[k], p);
        if let Err(e) = self.consumer.pause(&tpl) {
            // Not fatal: the messages are kept instead, over the budget.
            tracing::warn!(error = %e, partition = p, "cannot pause a held topic-partition");
            return;
        }
        if let Some(u) = self.units.get_mut(&p) {
            u.align_mut().pause(k);
        }
        self.summary.align_pauses += 1;
        tracing::debug!(topic = %self.shared.topics[k], partition = p, "alignment buffer full; paused");
    }

    /// Releases held topics whose other topic brought nothing for a while (idle for now).
    pub(super) async fn release_behind_idle(&mut self) -> Result<(), Error> {
        ::metrics::gauge!(crate::metrics::ALIGN_KEPT_BYTES).set(self.kept_bytes() as f64);
        let now = Instant::now();
        let idle_after = (self.shared.cfg.flush_interval * 2).max(Duration::from_millis(500));
        let released: Vec<(i32, Topic)> = self
            .units
            .iter_mut()
            .filter_map(|(p, u)| {
                u.align_mut()
                    .release_if_idle(now, idle_after)
                    .map(|k| (*p, k))
            })
            .collect();
        for (p, k) in released {
            let change = Change {
                hold: None,
                release: Some(k),
            };
            self.align(p, change).await?;
        }
        Ok(())
    }
}
