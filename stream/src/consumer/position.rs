//! Where the consumer reads: checked seeks (see [`crate::seek`]) and event-time alignment holds
//! and releases (see [`crate::align`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::Loop;
use crate::align::Change;
use crate::error::Error;
use crate::seek::{seek_blocking, SeekCheck};

impl Loop {
    /// Seeks the unit's assigned topic-partitions to `at`, checked (see [`crate::seek`]), and
    /// resumes them.
    pub(super) async fn position(
        &mut self,
        p: i32,
        assigned: [bool; 2],
        at: [i64; 2],
    ) -> Result<(), Error> {
        let low = self.units.get(&p).map_or([0; 2], |u| u.low);
        let checks = [0, 1].map(|k| assigned[k].then(|| SeekCheck::new(at[k], low[k])));
        let consumer = Arc::clone(&self.consumer);
        let topics = self.shared.topics.clone();
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let mut tpl = TopicPartitionList::new();
            for k in 0..2 {
                let Some(check) = checks[k] else {
                    continue;
                };
                seek_blocking(consumer.as_ref(), &topics[k], p, check.sought)
                    .map_err(Error::kafka("seek to the committed offset"))?;
                tpl.add_partition(&topics[k], p);
            }
            consumer
                .resume(&tpl)
                .map_err(Error::kafka("resume a partition"))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        if let Some(u) = self.units.get_mut(&p) {
            for k in 0..2 {
                if assigned[k] {
                    u.seek_check[k] = checks[k];
                }
            }
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
            while let Some(m) = self.units.get_mut(&p).and_then(|u| u.align.next_kept(k)) {
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
            if u.align.take_resume(k) {
                let next = u.next;
                let mut only = [false; 2];
                only[k] = true;
                tracing::debug!(topic = %self.shared.topics[k], partition = p, from = next[k], "resumed");
                self.position(p, only, next).await?;
            }
        }
        Ok(())
    }

    /// The messages kept for alignment passed the budget: pause held topic `k` of unit `p` at
    /// the broker (read again from the unit's next offset once its kept ones are processed).
    pub(super) fn pause_kept(&mut self, p: i32, k: usize) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.shared.topics[k], p);
        if let Err(e) = self.consumer.pause(&tpl) {
            // Not fatal: the messages are kept instead, over the budget.
            tracing::warn!(error = %e, partition = p, "cannot pause a held topic-partition");
            return;
        }
        if let Some(u) = self.units.get_mut(&p) {
            u.align.pause(k);
        }
        self.summary.align_pauses += 1;
        tracing::debug!(topic = %self.shared.topics[k], partition = p, "alignment buffer full; paused");
    }

    /// Releases held topics whose other topic brought nothing for a while (idle for now).
    pub(super) async fn release_behind_idle(&mut self) -> Result<(), Error> {
        ::metrics::gauge!(crate::metrics::ALIGN_KEPT_BYTES).set(self.kept_bytes() as f64);
        let now = Instant::now();
        let idle_after = (self.shared.cfg.flush_interval * 2).max(Duration::from_millis(500));
        let released: Vec<(i32, usize)> = self
            .units
            .iter_mut()
            .filter_map(|(p, u)| u.align.release_if_idle(now, idle_after).map(|k| (*p, k)))
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

    /// The broker skipped past where the unit asked to start: seek back further.
    pub(super) async fn seek_back(
        &mut self,
        k: usize,
        p: i32,
        check: SeekCheck,
    ) -> Result<(), Error> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.shared.topics[k].clone();
        self.meters.seek_backs[k].increment(1);
        tracing::debug!(topic = %topic, partition = p, want = check.want, sought = check.sought,
            "the broker started after the offset asked for; seeking back");
        tokio::task::spawn_blocking(move || {
            seek_blocking(consumer.as_ref(), &topic, p, check.sought)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(Error::kafka("seek back to the committed offset"))?;
        if let Some(u) = self.units.get_mut(&p) {
            u.seek_check[k] = Some(check);
        }
        Ok(())
    }
}
