//! The consumer loop: one rdkafka consumer subscribed to both input topics with the `range`
//! assignor (partition p of both co-partitioned topics lands on the same member), rebalances
//! handled explicitly, and a loop that `select!`s over messages, rebalance events, a flush ticker,
//! finished flushes and shutdown. Postgres and archive work runs in a flush task, one at a time.

mod backpressure;
mod bootstrap;
mod broker;
pub(crate) mod context;
mod idle;
mod position;
mod rebuild;
mod state;
mod takeover;
mod unprocessed;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use playsource_domain::{PerTopic, Topic};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::align::Change;
use crate::catalog_cache::{held_version, CatalogCache};
use crate::checkpoint::CheckpointNow;
use crate::config::{ExitReason, RunSummary, StreamConfig};
use crate::dlq::Publisher;
use crate::error::Error;
use crate::flush::{flush, FlushDone, Shared};
use crate::metrics as m;
use crate::retry::RetryPolicy;
use crate::seek;
use crate::unit::{Action, Ctx, Phase};

use context::RebalanceEvent;
pub(crate) use context::{StreamContext, StreamKafka};
use state::{InFlight, Loop};

/// Removes from the group the member that ran under this replica's name before (crashed, or
/// about to stop), so its partitions move now rather than after the session timeout. A failure
/// only costs that wait: logged, counted.
async fn remove_predecessor(cfg: &StreamConfig, client_id: &str) {
    let timeout = Duration::from_secs(10);
    // A broker that just restarted may refuse the first tries: three, a second apart.
    for attempt in 1..=3 {
        let removed = playsource_kafka::leave::remove_predecessors(
            &cfg.brokers,
            &cfg.group_id,
            client_id,
            timeout,
        )
        .await;
        match removed {
            Ok(gone) => {
                if !gone.is_empty() {
                    ::metrics::counter!(m::PREDECESSORS_REMOVED).increment(gone.len() as u64);
                    tracing::info!(members = ?gone, client_id, "removed this replica's predecessor from the group (LeaveGroup)");
                }
                return;
            }
            Err(e) if attempt < 3 => {
                tracing::debug!(error = %e, attempt, "cannot remove this replica's predecessor yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot remove this replica's predecessor from the group");
            }
        }
    }
}

/// Runs the loop until shutdown or idleness.
pub async fn run(
    cfg: StreamConfig,
    pool: PgPool,
    cache: CatalogCache,
    shutdown: CancellationToken,
) -> Result<RunSummary, Error> {
    let (tx, mut rebalances) = mpsc::unbounded_channel();
    let session_ms = cfg.session_timeout.as_millis().max(1);
    let mut client = playsource_kafka::client_config(&cfg.brokers);
    if let Some(id) = cfg.instance_id.as_deref().filter(|id| !id.is_empty()) {
        // Static membership: a restart with the same id takes the member's partitions back
        // without waiting for the session timeout (where the broker supports it).
        client.set("group.instance.id", id);
    }
    let client_id = cfg.replica_name.as_deref().map_or_else(
        || "playsource-stream".to_owned(),
        playsource_kafka::leave::replica_client_id,
    );
    let consumer: StreamKafka = client
        .set("group.id", &cfg.group_id)
        .set("client.id", &client_id)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("session.timeout.ms", session_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (session_ms / 3).clamp(100, 3000).to_string(),
        )
        // librdkafka waits this long before fetching again once a partition's local queue is
        // over its threshold (default 1000 ms); with many partitions in one consumer that capped
        // reading at about 100 k messages/s (bench/RESULTS.md, catch-up).
        .set("fetch.queue.backoff.ms", "10")
        // Per-partition lag for the metrics, from librdkafka's own statistics (see `stats`).
        .set("statistics.interval.ms", "5000")
        .create_with_context(StreamContext { events: tx })
        .map_err(Error::kafka("create the consumer"))?;
    let topics = PerTopic::new(cfg.topics.impressions.clone(), cfg.topics.plays.clone());
    if topics.impressions == topics.plays {
        return Err(Error::Config(format!(
            "the impressions and plays topics are both `{}`; give them different names",
            topics.impressions
        )));
    }
    check_topics(&cfg.brokers, &topics).await?;
    let dlq_max_bytes = crate::dlq::check_topic(&cfg.brokers, &cfg.topics.dlq).await?;
    if cfg.replica_name.is_some() {
        remove_predecessor(&cfg, &client_id).await;
    }
    consumer
        .subscribe(&[topics.impressions.as_str(), topics.plays.as_str()])
        .map_err(Error::kafka("subscribe to the input topics"))?;
    let publisher = Publisher::with_max_bytes(&cfg.brokers, dlq_max_bytes)?;
    let flush_every = cfg.flush_interval.max(Duration::from_millis(10));
    let retry = RetryPolicy {
        budget: cfg.retry_timeout,
        cancel: shutdown.clone(),
    };
    let meters = m::EventMeters::new(&topics);
    let consumer = Arc::new(consumer);
    let watch_stop = CancellationToken::new();
    let _watch_guard = watch_stop.clone().drop_guard();
    let unprocessed = unprocessed::Watch {
        consumer: Arc::downgrade(&consumer),
        pool: pool.clone(),
        group: cfg.group_id.clone(),
        topics: topics.clone(),
        session_timeout: cfg.session_timeout,
    }
    .spawn(watch_stop);
    let mut lp = Loop {
        shared: Arc::new(Shared {
            cfg,
            pool,
            publisher,
            topics,
            retry,
            compaction: Default::default(),
        }),
        consumer,
        units: BTreeMap::new(),
        catalog: cache.get(),
        catalog_version: 0,
        cache,
        rebuild: Vec::new(),
        meters,
        summary: RunSummary::default(),
        last_message: Instant::now(),
        started: Instant::now(),
        ever_assigned: false,
        unprocessed,
        flush_started: None,
        backpressure: Vec::new(),
    };
    lp.catalog_version = held_version(&lp.catalog);
    let mut ticker = tokio::time::interval(flush_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Slices of checkpoint layers being copied, between messages (checkpoint/unit.rs).
    let mut slices = tokio::time::interval(crate::checkpoint::SLICE_EVERY);
    slices.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let consumer = Arc::clone(&lp.consumer);
    let mut in_flight: InFlight = None;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                lp.summary.exit = ExitReason::Shutdown;
                break;
            }
            Some(ev) = rebalances.recv() => lp.on_rebalance(ev, &mut in_flight).await?,
            done = async {
                match in_flight.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            }, if in_flight.is_some() => {
                in_flight = None;
                lp.on_flush_done(done)?;
                lp.end_backpressure().await?;
                lp.rebuild_stale().await?;
            }
            _ = ticker.tick() => {
                lp.catalog = lp.cache.get();
                lp.catalog_version = held_version(&lp.catalog);
                lp.rebuild_stale().await?;
                lp.release_behind_idle().await?;
                if in_flight.is_none() {
                    in_flight = lp.start_flush(false)?;
                    // Caught up: publish the open archive hours too (crate::compact).
                    if in_flight.is_none()
                        && lp.last_message.elapsed() >= crate::compact::idle_after(flush_every)
                    {
                        in_flight = crate::flush::spawn_idle_compaction(&lp.shared);
                    }
                } else {
                    lp.apply_backpressure();
                }
                if in_flight.is_none() {
                    lp.give_up_if_stranded()?;
                }
                if in_flight.is_none() && lp.idle_and_caught_up().await {
                    lp.summary.exit = ExitReason::Idle;
                    break;
                }
            }
            _ = slices.tick(), if lp.checkpoint_copying() => lp.checkpoint_slices(),
            msg = consumer.recv() => match msg {
                Ok(msg) => {
                    lp.last_message = Instant::now();
                    lp.on_message(&msg).await?;
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    lp.finish(&mut in_flight).await?;
    Ok(lp.summary)
}

/// Both input topics must exist and be co-partitioned (same partition count).
async fn check_topics(brokers: &str, topics: &PerTopic<String>) -> Result<(), Error> {
    playsource_kafka::admin::check_inputs(brokers, &topics.impressions, &topics.plays).await?;
    Ok(())
}

impl Loop {
    /// The role of a configured topic name.
    fn topic_of(&self, name: &str) -> Option<Topic> {
        self.shared.topics.find(name)
    }

    async fn on_message(
        &mut self,
        msg: &rdkafka::message::BorrowedMessage<'_>,
    ) -> Result<(), Error> {
        let Some(k) = self.topic_of(msg.topic()) else {
            return Ok(());
        };
        let p = msg.partition();
        let Some(unit) = self.units.get_mut(&p) else {
            return Ok(());
        };
        let (topic, seek_backs) = (&self.shared.topics[k], &self.meters.seek_backs[k]);
        let seeks = unit.seeks_mut();
        if seek::check_first(&self.consumer, topic, p, k, msg.offset(), seeks, seek_backs).await? {
            // The broker started past where the unit asked; sought back, read again.
            return Ok(());
        }
        let timestamp = msg.timestamp().to_millis();
        if unit.phase() == Phase::Live && unit.align().must_keep(k) {
            // Held for event-time alignment: kept in order until released.
            let next = unit.next()[k];
            if unit
                .align_mut()
                .keep(k, next, msg.offset(), timestamp, msg.key(), msg.payload())
                && self.kept_bytes() > self.shared.cfg.align_buffer_bytes
            {
                self.pause_kept(p, k);
            }
            return Ok(());
        }
        let (live, next) = (unit.phase() == Phase::Live, unit.next()[k]);
        if live && msg.offset() > next {
            // A gap: the position was reset past messages the broker no longer holds?
            self.count_retention_gap(k, p, next, msg.offset());
        }
        let change = self
            .process(k, p, msg.offset(), timestamp, msg.key(), msg.payload())
            .await?;
        if change != Change::default() {
            self.align(p, change).await?;
        }
        Ok(())
    }

    /// Processes one message of topic `k` of unit `p`; returns what alignment asks for.
    async fn process(
        &mut self,
        k: Topic,
        p: i32,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> Result<Change, Error> {
        let Some(unit) = self.units.get_mut(&p) else {
            return Ok(Change::default());
        };
        let ctx = Ctx {
            topics: &self.shared.topics,
            dlq_topic: &self.shared.cfg.topics.dlq,
            publisher: &self.shared.publisher,
            catalog: &self.catalog,
            catalog_version: self.catalog_version,
            meters: &self.meters,
            publish_enriched: self.shared.cfg.publish_enriched,
            max_future_ms: i64::try_from(self.shared.cfg.max_future.as_millis())
                .unwrap_or(i64::MAX),
        };
        // Messages before `next` were processed already (re-read after a seek).
        let live = unit.phase() == Phase::Live && offset >= unit.next()[k];
        let corrected = unit.corrections();
        let action = unit
            .on_message(k, offset, timestamp, key, payload, &ctx)
            .await?;
        if live {
            self.summary.consumed += 1;
            self.summary.corrections += unit.corrections() - corrected;
            let (high, assigned) = (unit.high_water(), unit.assigned());
            return Ok(unit.align_mut().on_message(k, high, assigned));
        }
        match action {
            Action::None => {}
            Action::PauseTopic(k) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&self.shared.topics[k], p);
                if let Err(e) = self.consumer.pause(&tpl) {
                    tracing::warn!(error = %e, partition = p, "cannot pause a replayed partition");
                }
            }
            Action::GoLive => {
                unit.go_live();
                self.summary.replayed += unit.replayed();
                let at = unit.committed();
                let assigned = unit.assigned();
                tracing::info!(
                    partition = p,
                    impressions = at.impressions,
                    plays = at.plays,
                    "partition rebuilt; live"
                );
                self.position(p, assigned, at).await?;
            }
        }
        Ok(Change::default())
    }

    /// Counts (off the loop) the messages between `next` and `offset` of topic `k` of unit `p`
    /// that the broker no longer retains.
    fn count_retention_gap(&self, k: Topic, p: i32, next: i64, offset: i64) {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.shared.topics[k].clone();
        tokio::task::spawn_blocking(move || {
            let Ok((low, _)) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)) else {
                return;
            };
            let lost = low.min(offset) - next;
            if lost > 0 {
                tracing::warn!(topic = %topic, partition = p, lost, from = next, earliest = low,
                    "messages after the stream's position were no longer retained by the broker; they are lost to the stream (raise the topic's retention or the stream's throughput)");
                ::metrics::counter!(m::RETENTION_LOST, "topic" => topic, "partition" => p.to_string())
                    .increment(lost as u64);
            }
        });
    }

    /// Bytes of the messages kept for alignment, all units.
    fn kept_bytes(&self) -> usize {
        self.units.values().map(|u| u.align().kept_bytes()).sum()
    }
}

impl Loop {
    async fn on_rebalance(
        &mut self,
        ev: RebalanceEvent,
        in_flight: &mut InFlight,
    ) -> Result<(), Error> {
        match ev {
            RebalanceEvent::Revoked(parts) => {
                let mut ps: Vec<i32> = parts.iter().map(|(_, p)| *p).collect();
                ps.sort_unstable();
                ps.dedup();
                tracing::info!(partitions = ?ps, "partitions revoked; flushing them");
                self.wait_in_flight(in_flight).await?;
                let mut flushes = Vec::new();
                for p in &ps {
                    if let Some(mut u) = self.units.remove(p) {
                        if u.phase() == Phase::Live {
                            flushes.push(u.take_flush(
                                &self.shared.topics,
                                &self.shared.cfg.group_id,
                                CheckpointNow::Finish,
                            ));
                        }
                    }
                }
                if !flushes.is_empty() {
                    let done = flush(Arc::clone(&self.shared), flushes).await;
                    self.on_flush_done(Ok(done))?;
                }
                // A revoked unit is rebuilt by its next owner, not here.
                self.rebuild.retain(|(p, _)| !ps.contains(p));
            }
            RebalanceEvent::Assigned(parts) => {
                self.ever_assigned = true;
                self.wait_in_flight(in_flight).await?;
                let mut by_p: BTreeMap<i32, PerTopic<bool>> = BTreeMap::new();
                for (t, p) in &parts {
                    if let Some(k) = self.topic_of(t) {
                        by_p.entry(*p).or_default()[k] = true;
                    }
                }
                tracing::info!(partitions = ?by_p.keys().collect::<Vec<_>>(), "partitions assigned");
                for (p, assigned) in by_p {
                    if !assigned.all() {
                        tracing::warn!(partition = p, "only one topic of this partition is assigned here; are both topics co-partitioned with the same partition count?");
                    }
                    let shared = Arc::clone(&self.shared);
                    let unit = shared
                        .retry
                        .run("take over a partition", |_| self.init_unit(p, assigned))
                        .await?;
                    let at = unit.next();
                    let live = unit.phase() == Phase::Live;
                    self.units.insert(p, unit);
                    // Seek each topic to where the unit starts reading.
                    self.position(p, assigned, at).await?;
                    let u = &self.units[&p];
                    tracing::info!(partition = p, epoch = u.epoch(), from = ?at, committed = ?u.committed(), live, "unit assigned");
                }
            }
        }
        Ok(())
    }

    async fn watermarks(&self, topic: &str, p: i32) -> Result<(i64, i64), Error> {
        broker::watermarks(Arc::downgrade(&self.consumer), topic, p).await
    }

    fn start_flush(&mut self, force_checkpoint: bool) -> Result<InFlight, Error> {
        let interval = self.shared.cfg.checkpoint_interval;
        let mut flushes = Vec::new();
        for u in self.units.values_mut() {
            let checkpoint = if force_checkpoint {
                CheckpointNow::Finish
            } else if u.checkpoint_due(interval) {
                CheckpointNow::Begin
            } else {
                CheckpointNow::No
            };
            let ships = u.checkpoint_ready() || checkpoint == CheckpointNow::Finish;
            if u.has_changes() || ships {
                if u.phase() != Phase::Live {
                    continue;
                }
                flushes.push(u.take_flush(
                    &self.shared.topics,
                    &self.shared.cfg.group_id,
                    checkpoint,
                ));
            } else if checkpoint == CheckpointNow::Begin && u.phase() == Phase::Live {
                // Nothing else to flush: written by the flush after its last slice.
                u.begin_checkpoint(&self.shared.cfg.group_id);
            }
        }
        if flushes.is_empty() {
            return Ok(None);
        }
        self.flush_started = Some(Instant::now());
        Ok(Some(tokio::spawn(flush(Arc::clone(&self.shared), flushes))))
    }

    /// Whether a unit is copying a checkpoint layer.
    fn checkpoint_copying(&self) -> bool {
        self.units.values().any(|u| u.checkpoint_copying())
    }

    /// One slice of the checkpoint layers being copied: [`crate::checkpoint::SLICE`] for all
    /// units together.
    fn checkpoint_slices(&mut self) {
        let until = Instant::now() + crate::checkpoint::SLICE;
        for u in self.units.values_mut() {
            if Instant::now() >= until {
                break;
            }
            u.checkpoint_step(until);
        }
    }

    async fn wait_in_flight(&mut self, in_flight: &mut InFlight) -> Result<(), Error> {
        if let Some(h) = in_flight.take() {
            self.on_flush_done(h.await)?;
        }
        Ok(())
    }

    fn on_flush_done(
        &mut self,
        done: Result<Result<FlushDone, Error>, tokio::task::JoinError>,
    ) -> Result<(), Error> {
        let done = done.map_err(|e| Error::Task(e.to_string()))??;
        self.summary.flushes += 1;
        for (p, epoch) in &done.fenced {
            // Only the unit of the fenced epoch: a newer one may have been built meanwhile.
            if self.units.get(p).is_none_or(|u| u.epoch() != *epoch) {
                continue;
            }
            self.units.remove(p);
            let mut tpl = TopicPartitionList::new();
            for t in self.shared.topics.values() {
                tpl.add_partition(t, *p);
            }
            let _ = self.consumer.pause(&tpl);
            self.summary.fenced.push(*p);
        }
        for (p, epoch, files) in done.checkpoints {
            let Some(u) = self.units.get_mut(&p).filter(|u| u.epoch() == epoch) else {
                continue;
            };
            match files {
                Some(files) => u.checkpointing_mut().committed(
                    files,
                    &self.shared.cfg.archive,
                    &self.shared.cfg.group_id,
                    p,
                    epoch,
                ),
                None => u.checkpoint_failed(),
            }
        }
        self.withhold(done.stale);
        let mut tpl = TopicPartitionList::new();
        for (p, offsets) in &done.committed {
            for o in offsets {
                let _ = tpl.add_partition_offset(&o.topic, *p, Offset::Offset(o.next_offset));
            }
        }
        if tpl.count() > 0 {
            // Informational: Postgres holds where the view stands.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(error = %e, "cannot commit group offsets to Kafka (informational only)");
            }
        }
        Ok(())
    }

    /// Flushes everything (with checkpoints) before returning.
    async fn finish(&mut self, in_flight: &mut InFlight) -> Result<(), Error> {
        self.wait_in_flight(in_flight).await?;
        *in_flight = self.start_flush(true)?;
        self.wait_in_flight(in_flight).await?;
        crate::compact::everything(&self.shared).await;
        Ok(())
    }
}
