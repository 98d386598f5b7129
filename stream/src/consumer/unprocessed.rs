//! Partitions that nobody processes: a background check, off the poll loop, that compares each
//! input partition's high watermark with its offset committed in Postgres and with how long ago
//! that offset last moved. A partition with lag whose offset has not moved for longer than twice
//! the session timeout is unprocessed: no live member holds it (e.g. tansu 0.6 kept a member that
//! died mid-rebalance in the group, so the partition is assigned to nobody who reads it).
//!
//! An idle spare member (more members than partitions) holds nothing while every partition moves:
//! that is not reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics as m;

/// The latest check's unprocessed (topic, partition)s; empty until one has run.
#[derive(Clone, Default)]
pub(super) struct Unprocessed(Arc<Mutex<BTreeSet<(String, i32)>>>);

impl Unprocessed {
    /// The unprocessed topic-partitions found by the latest check.
    pub(super) fn get(&self) -> BTreeSet<(String, i32)> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, now: BTreeSet<(String, i32)>) {
        if let Ok(mut s) = self.0.lock() {
            *s = now;
        }
    }
}

/// What the check needs.
pub(super) struct Watch {
    /// Weak: the last reference to the consumer must not be dropped on a runtime thread (its
    /// close blocks); each use upgrades it inside `spawn_blocking`.
    pub consumer: Weak<super::context::StreamKafka>,
    pub pool: PgPool,
    pub group: String,
    pub topics: playsource_domain::PerTopic<String>,
    pub session_timeout: Duration,
}

impl Watch {
    /// Runs the check every session timeout (at least every 30 s) until `stop`.
    pub(super) fn spawn(self, stop: CancellationToken) -> Unprocessed {
        let out = Unprocessed::default();
        let shared = out.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let every = self
                .session_timeout
                .clamp(Duration::from_secs(1), Duration::from_secs(30));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                match self.check(started.elapsed()).await {
                    Ok(now) => shared.set(now),
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot check for unprocessed partitions")
                    }
                }
            }
        });
        out
    }

    async fn check(&self, running: Duration) -> Result<BTreeSet<(String, i32)>, Error> {
        let limit = self.session_timeout * 2;
        let moved = committed(&self.pool, &self.group).await?;
        let mut found = BTreeSet::new();
        for topic in self.topics.values() {
            let mut count = 0u32;
            for p in 0..self.partition_count(topic).await? {
                let (low, high) = self.watermarks(topic, p).await?;
                let (at, since) = match moved.get(&(topic.clone(), p)) {
                    // Counted from this check's start at the latest: a group restarted after
                    // downtime finds old commits with lag, which its own members are about to
                    // take; only a partition this member watched stand still is unprocessed.
                    Some(&(o, secs)) => (
                        o.max(low),
                        Duration::from_secs_f64(secs.max(0.0)).min(running),
                    ),
                    // Never committed: count from when this check started.
                    None => (low, running),
                };
                if at < high && since > limit {
                    tracing::warn!(topic = %topic, partition = p, lag = high - at, idle_secs = since.as_secs(),
                        "partition has unread messages and no member has committed it for over twice the session timeout; nobody is processing it (restart the stream members; give each a stable --replica-name, or --instance-id on Kafka)");
                    found.insert((topic.clone(), p));
                    count += 1;
                }
            }
            ::metrics::gauge!(m::UNPROCESSED, "topic" => topic.clone()).set(f64::from(count));
        }
        Ok(found)
    }

    async fn watermarks(&self, topic: &str, p: i32) -> Result<(i64, i64), Error> {
        super::broker::watermarks(Weak::clone(&self.consumer), topic, p).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        super::broker::partition_count(Weak::clone(&self.consumer), topic).await
    }
}

/// Each committed (topic, partition)'s next offset and seconds since it was last written, by the
/// database's clock.
async fn committed(
    pool: &PgPool,
    group: &str,
) -> Result<BTreeMap<(String, i32), (i64, f64)>, Error> {
    let rows = playsource_store::leases::committed_ages(pool, group)
        .await
        .map_err(Error::db("read the committed offsets"))?;
    Ok(rows
        .into_iter()
        .map(|(t, p, o, s)| ((t, p), (o, s)))
        .collect())
}
