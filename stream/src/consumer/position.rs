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

    /// Holds or releases a topic-partition of unit `p` for event-time alignment (see
    /// [`crate::align`]).
    pub(super) async fn align(&mut self, p: i32, change: Change) -> Result<(), Error> {
        if let Some(k) = change.hold {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.shared.topics[k], p);
            self.consumer
                .pause(&tpl)
                .map_err(Error::kafka("pause a topic-partition running ahead"))?;
            self.meters.holds[k].increment(1);
            self.summary.holds += 1;
            tracing::debug!(topic = %self.shared.topics[k], partition = p, "ahead of the other topic in event time; held");
        }
        if let Some(k) = change.release {
            let Some(next) = self.units.get(&p).map(|u| u.next) else {
                return Ok(());
            };
            let mut only = [false; 2];
            only[k] = true;
            tracing::debug!(topic = %self.shared.topics[k], partition = p, from = next[k], "released");
            self.position(p, only, next).await?;
        }
        Ok(())
    }

    /// Releases held topics whose other topic brought nothing for a while (idle for now).
    pub(super) async fn release_behind_idle(&mut self) -> Result<(), Error> {
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
