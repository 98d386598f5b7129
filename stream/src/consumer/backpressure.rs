//! Bounded memory while a flush is slow (Postgres or the broker down and the flush retrying):
//! once a flush has been in flight for longer than [`pause_after`], every live unit's
//! topic-partitions are paused at the broker — the consumer keeps polling, so the group keeps the
//! member — and read again from each unit's next offset once the flush finishes.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use playsource_domain::PerTopic;

use super::state::Loop;
use crate::error::Error;
use crate::metrics as m;
use crate::unit::Phase;

/// How long a flush may be in flight before reading stops: five flush intervals, at least 5 s.
pub(super) fn pause_after(flush_interval: Duration) -> Duration {
    (flush_interval * 5).max(Duration::from_secs(5))
}

impl Loop {
    /// Pauses every live unit's topic-partitions if the flush in flight is taking long.
    pub(super) fn apply_backpressure(&mut self) {
        let Some(started) = self.flush_started else {
            return;
        };
        if !self.backpressure.is_empty()
            || started.elapsed() < pause_after(self.shared.cfg.flush_interval)
        {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let mut paused = Vec::new();
        for (p, u) in &self.units {
            if u.phase() != Phase::Live {
                continue;
            }
            for k in u.assigned().topics() {
                // Topics already paused for alignment are resumed by alignment.
                if !u.align().is_paused(k) {
                    tpl.add_partition(&self.shared.topics[k], *p);
                    paused.push((*p, k));
                }
            }
        }
        if paused.is_empty() {
            return;
        }
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::warn!(error = %e, "cannot pause the input partitions while a flush is slow");
            return;
        }
        for (p, k) in &paused {
            if let Some(u) = self.units.get_mut(p) {
                // Messages fetched before the pause took effect are dropped and read again.
                u.align_mut().pause(*k);
            }
        }
        tracing::warn!(partitions = paused.len(), secs = started.elapsed().as_secs(),
            "a flush is taking long (Postgres or the broker unavailable?); stopped reading until it finishes");
        ::metrics::gauge!(m::BACKPRESSURE_PAUSED).set(1.0);
        self.backpressure = paused;
    }

    /// After a flush finished: reads the paused topic-partitions again from each unit's next
    /// offset.
    pub(super) async fn end_backpressure(&mut self) -> Result<(), Error> {
        self.flush_started = None;
        if self.backpressure.is_empty() {
            return Ok(());
        }
        for (p, k) in std::mem::take(&mut self.backpressure) {
            let Some(u) = self.units.get_mut(&p) else {
                continue;
            };
            if u.align_mut().take_resume(k) {
                let next = u.next();
                self.position(p, PerTopic::only(k), next).await?;
            }
        }
        tracing::info!("flush finished; reading again");
        ::metrics::gauge!(m::BACKPRESSURE_PAUSED).set(0.0);
        Ok(())
    }
}
