//! `--exit-when-idle`: when the stream may stop because everything it can read is processed.

use std::sync::Arc;
use std::time::Duration;

use playsource_domain::Topic;

use super::broker;
use super::state::Loop;
use crate::error::Error;
use crate::metrics as m;
use crate::seek;
use crate::sink_postgres;
use crate::unit::Phase;

impl Loop {
    /// With `--exit-when-idle`: nothing arrived for the idle time, every unit is live with
    /// nothing left to flush, and every assigned topic-partition is read to its end.
    pub(super) async fn idle_and_caught_up(&mut self) -> bool {
        let Some(idle) = self.shared.cfg.exit_when_idle else {
            return false;
        };
        if self.last_message.elapsed() < idle {
            return false;
        }
        if self
            .units
            .values()
            .any(|u| u.phase() != Phase::Live || u.has_changes() || u.seek_probing())
        {
            return false;
        }
        // Every partition of both topics must be read to its end: by a unit here, or (when this
        // member holds none, e.g. while a crashed member's session has not expired yet) as
        // committed in Postgres. Otherwise keep waiting for an assignment.
        let s = Arc::clone(&self.shared);
        for k in Topic::ALL {
            let topic = s.topics[k].clone();
            let Ok(n) = self.partition_count(&topic).await else {
                return false;
            };
            for p in 0..n {
                let Ok((low, high)) = self.watermarks(&topic, p).await else {
                    return false;
                };
                if let Some(u) = self.units.get_mut(&p).filter(|u| u.assigned()[k]) {
                    // Nothing came since a seek at the end: the broker may hide a batch's rest.
                    let seeks = u.seeks_mut();
                    let meter = &self.meters.seek_backs[k];
                    match seek::probe_at_end(&self.consumer, &topic, p, k, low, high, seeks, meter)
                        .await
                    {
                        Ok(false) => {}
                        Ok(true) => return false,
                        Err(e) => {
                            tracing::warn!(error = %e, partition = p, "cannot seek back to the last message");
                            return false;
                        }
                    }
                }
                let pos = match self.units.get(&p).filter(|u| u.assigned()[k]) {
                    Some(u) => u.next()[k],
                    None => {
                        match sink_postgres::committed_offset(&s.pool, &s.cfg.group_id, &topic, p)
                            .await
                        {
                            Ok(c) => c.unwrap_or(low),
                            Err(_) => return false,
                        }
                    }
                };
                ::metrics::gauge!(m::LAG, "topic" => topic.clone(), "partition" => p.to_string())
                    .set((high - pos).max(0) as f64);
                if pos < high {
                    return false;
                }
            }
        }
        if !self.ever_assigned && self.started.elapsed() < idle + Duration::from_secs(10) {
            // Give the group a moment to assign partitions before calling an empty run idle.
            return false;
        }
        true
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        broker::partition_count(Arc::downgrade(&self.consumer), topic).await
    }
}

impl Loop {
    /// With `--exit-when-idle`, when idle: stops with [`Error::Unprocessed`] if partitions that
    /// are not assigned here go unprocessed (rather than waiting for them forever).
    pub(super) fn give_up_if_stranded(&self) -> Result<(), Error> {
        let Some(idle) = self.shared.cfg.exit_when_idle else {
            return Ok(());
        };
        if self.last_message.elapsed() < idle {
            return Ok(());
        }
        let stranded: Vec<String> = self
            .unprocessed
            .get()
            .into_iter()
            .filter(|(topic, p)| {
                let k = self.topic_of(topic);
                !self
                    .units
                    .get(p)
                    .is_some_and(|u| k.is_some_and(|k| u.assigned()[k]))
            })
            .map(|(topic, p)| format!("{topic}/{p}"))
            .collect();
        if stranded.is_empty() {
            return Ok(());
        }
        Err(Error::Unprocessed(stranded.join(", ")))
    }
}
