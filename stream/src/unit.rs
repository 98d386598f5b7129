//! One partition unit: partition p of `impressions` and of `plays`, with its own engine, view
//! deltas, archive buffers and offsets.
//!
//! A unit starts in [`Phase::Replaying`] when it must rebuild its engine: it reads each
//! topic-partition from the snapshot's offsets (or the earliest retained ones) up to the committed
//! offsets with every output suppressed, since those were committed before. Once both topics
//! reached their committed offsets it goes [`Phase::Live`]. The engine's state depends only on each
//! topic-partition's order, so the rebuilt engine is the one that was lost.

use std::sync::Arc;

use playsource_domain::aggregate::{Counts, PlayFacts};
use playsource_domain::catalog::enrich;
use playsource_domain::{
    check_not_future, decode_impression, decode_play, Catalog, Engine, EnrichedPlay, Output,
    PerTopic, Rejection, Topic, Ts, Verdict,
};
use rdkafka::producer::DeliveryFuture;

use crate::align::Alignment;
use crate::archive_sink::{ArchiveBuffer, PendingFile};
use crate::checkpoint::{CheckpointNow, Checkpointing, Manifest, PendingCheckpoint};
use crate::dlq;
use crate::error::Error;
use crate::metrics as m;
use crate::seek::Seeks;
use crate::sink_postgres::{OffsetRow, TooLate, UnitCommit};

/// Where a unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Rebuilding the engine from already-committed events; outputs are suppressed.
    Replaying,
    /// Processing new events.
    Live,
}

/// What the consumer loop must do after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// This topic finished replaying before the other: pause it.
    PauseTopic(Topic),
    /// Both topics replayed: seek both to the committed offsets and resume.
    GoLive,
}

/// Shared, read-only things a unit needs per message.
pub struct Ctx<'a> {
    pub topics: &'a PerTopic<String>,
    pub dlq_topic: &'a str,
    pub publisher: &'a dlq::Publisher,
    pub catalog: &'a Catalog,
    /// The highest version id `catalog` holds ([`crate::catalog_cache::held_version`]).
    pub catalog_version: i64,
    pub meters: &'a m::EventMeters,
    pub publish_enriched: bool,
    /// `--max-future-secs` in ms.
    pub max_future_ms: i64,
}

/// Everything a unit hands to a flush.
pub struct UnitFlush {
    pub commit: UnitCommit,
    pub archive: Vec<PendingFile>,
    pub dlq: Vec<DeliveryFuture>,
    pub enriched: Vec<(String, Vec<u8>)>,
    /// How the unit's outputs since its last flush were enriched, if it emitted any.
    pub catalog_use: Option<CatalogUse>,
    /// A checkpoint layer to write and commit.
    pub checkpoint: Option<PendingCheckpoint>,
}

/// The catalog a unit enriched with since its last flush: the oldest cache it used (the highest
/// version id that cache held) and the greatest play ts it enriched. A version loaded later
/// (higher id) effective at or before `max_play_ts` would have enriched some of those plays
/// differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogUse {
    pub version: i64,
    pub max_play_ts: Ts,
}

/// The state of one partition unit.
pub struct Unit {
    partition: i32,
    epoch: i64,
    engine: Engine,
    phase: Phase,
    /// Which of the two topic-partitions this consumer is assigned.
    assigned: PerTopic<bool>,
    /// Next offset to process per topic.
    next: PerTopic<i64>,
    /// Next offset committed to Postgres per topic (replay target while replaying).
    committed: PerTopic<i64>,
    /// Per topic, a seek whose first message is still to be checked.
    seeks: Seeks,
    /// Earliest retained offset per topic when the unit was taken.
    low: PerTopic<i64>,
    /// Event-time alignment of the two topics (live only).
    align: Alignment,
    /// Provisional attributions corrected live.
    corrections: u64,
    replay_done: PerTopic<bool>,
    high_water: PerTopic<Option<Ts>>,
    counts: Counts,
    too_late: TooLate,
    archive: ArchiveBuffer,
    dlq: Vec<DeliveryFuture>,
    enriched: Vec<(String, Vec<u8>)>,
    outs: Vec<Output>,
    catalog_use: Option<CatalogUse>,
    checkpointing: Checkpointing,
    /// Events processed live since the last flush.
    since_flush: u64,
    /// Events re-read to rebuild the engine.
    replayed: u64,
}

impl Unit {
    /// A unit resuming at `start` (where `engine` stands, and `manifest`, the checkpoint it was
    /// restored from, if any) with `committed` offsets already in the view; `low` are the
    /// earliest retained offsets, `align` its event-time alignment.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        partition: i32,
        epoch: i64,
        engine: Engine,
        manifest: Manifest,
        assigned: PerTopic<bool>,
        start: PerTopic<i64>,
        committed: PerTopic<i64>,
        low: PerTopic<i64>,
        align: Alignment,
    ) -> Unit {
        let replay_done = PerTopic::from_fn(|k| !assigned[k] || start[k] >= committed[k]);
        let phase = if replay_done.all() {
            Phase::Live
        } else {
            Phase::Replaying
        };
        Unit {
            partition,
            epoch,
            high_water: high_waters(&engine),
            engine,
            phase,
            assigned,
            next: if phase == Phase::Live {
                committed
            } else {
                start
            },
            committed,
            seeks: Seeks::default(),
            low,
            align,
            corrections: 0,
            replay_done,
            counts: Counts::default(),
            too_late: TooLate::default(),
            archive: ArchiveBuffer::default(),
            dlq: Vec::new(),
            enriched: Vec::new(),
            outs: Vec::new(),
            catalog_use: None,
            checkpointing: Checkpointing::new(manifest, start),
            since_flush: 0,
            replayed: 0,
        }
    }

    /// The unit's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether topic `k` finished replaying (always true when live).
    pub fn replay_done(&self, k: Topic) -> bool {
        self.replay_done[k]
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The lease epoch the unit holds the partition with.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Which of the two topic-partitions this consumer is assigned.
    pub fn assigned(&self) -> PerTopic<bool> {
        self.assigned
    }

    /// Next offset to process per topic.
    pub fn next(&self) -> PerTopic<i64> {
        self.next
    }

    /// Next offset committed to Postgres per topic (the replay target while replaying).
    pub fn committed(&self) -> PerTopic<i64> {
        self.committed
    }

    /// Earliest retained offset per topic when the unit was taken.
    pub fn low(&self) -> PerTopic<i64> {
        self.low
    }

    /// The seeks whose first message is still to be checked ([`crate::seek`]).
    pub fn seeks_mut(&mut self) -> &mut Seeks {
        &mut self.seeks
    }

    /// Whether a seek at the end of a topic-partition is waiting for its message.
    pub fn seek_probing(&self) -> bool {
        self.seeks.probing()
    }

    /// Event-time alignment of the two topics (live only).
    pub fn align(&self) -> &Alignment {
        &self.align
    }

    /// Event-time alignment of the two topics, to hold, keep, release or pause.
    pub fn align_mut(&mut self) -> &mut Alignment {
        &mut self.align
    }

    /// Provisional attributions corrected live so far.
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// Events re-read to rebuild the engine.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// The engine (for snapshots and stats).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Switches to live processing at the committed offsets.
    pub fn go_live(&mut self) {
        self.phase = Phase::Live;
        self.align.reset();
        self.replay_done = PerTopic::both(true);
        self.next = self.committed;
        self.high_water = high_waters(&self.engine);
    }

    /// Handles one message of topic `k` at `offset`.
    pub async fn on_message(
        &mut self,
        k: Topic,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        ctx: &Ctx<'_>,
    ) -> Result<Action, Error> {
        if offset < self.next[k] {
            // Already processed (a message fetched before a seek).
            return Ok(Action::None);
        }
        match self.phase {
            Phase::Replaying => Ok(self.replay(k, offset, timestamp.map(Ts), payload, ctx)),
            Phase::Live => {
                self.live(k, offset, timestamp.map(Ts), key, payload, ctx)
                    .await?;
                Ok(Action::None)
            }
        }
    }

    fn replay(
        &mut self,
        k: Topic,
        offset: i64,
        msg_ts: Option<Ts>,
        payload: Option<&[u8]>,
        ctx: &Ctx<'_>,
    ) -> Action {
        if self.replay_done[k] || offset >= self.committed[k] {
            // Past the replay target: dropped here, read again after the seek at go-live.
            return self.mark_replayed(k);
        }
        ctx.meters.replayed[k].increment(1);
        self.replayed += 1;
        let payload = payload.unwrap_or_default();
        // The future rule judged against the message timestamp as the clock: no later than the
        // clock that judged the message live, so whatever was rejected live is rejected again
        // (docs/stream.md, "Events from the future").
        let clock = msg_ts.unwrap_or_else(clock_now);
        let mf = ctx.max_future_ms;
        if k == Topic::Impressions {
            if let Ok(imp) = decode_impression(payload) {
                if check_not_future(imp.ts, msg_ts, clock, mf).is_ok() {
                    self.engine.on_impression(&imp, &mut self.outs);
                }
            }
        } else if let Some(play) = decode_play(payload)
            .ok()
            .filter(|p| check_not_future(p.ts, msg_ts, clock, mf).is_ok())
        {
            let e = ctx.catalog.enrich(play.video_id, play.ts);
            self.engine
                .on_play_counted_as(&play, e.genre, e.is_new_launch, &mut self.outs);
        }
        self.outs.clear();
        self.next[k] = offset + 1;
        if self.next[k] >= self.committed[k] {
            return self.mark_replayed(k);
        }
        Action::None
    }

    fn mark_replayed(&mut self, k: Topic) -> Action {
        self.replay_done[k] = true;
        if self.replay_done.all() {
            Action::GoLive
        } else {
            Action::PauseTopic(k)
        }
    }

    async fn live(
        &mut self,
        k: Topic,
        offset: i64,
        msg_ts: Option<Ts>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        ctx: &Ctx<'_>,
    ) -> Result<(), Error> {
        let topic = &ctx.topics[k];
        let clock = clock_now();
        let not_future = |ts: Ts| {
            check_not_future(ts, msg_ts, clock, ctx.max_future_ms)
                .inspect_err(|_| ctx.meters.future_rejected[k].increment(1))
        };
        ctx.meters.consumed[k].increment(1);
        self.next[k] = offset + 1;
        self.since_flush += 1;
        let bytes = payload.unwrap_or_default();
        let result = if payload.is_none() {
            Err(Rejection {
                field: "(message)",
                rule: "must be a JSON object, got an empty (null) message value".into(),
            })
        } else if k == Topic::Impressions {
            decode_impression(bytes)
                .and_then(|imp| not_future(imp.ts).map(|()| imp))
                .map(|imp| {
                    let verdict = self.engine.on_impression(&imp, &mut self.outs);
                    self.archive.push_impression(&imp, self.partition, offset);
                    self.observe(k, imp.ts, verdict, &imp.country, &imp.device, ctx);
                })
        } else {
            decode_play(bytes)
                .and_then(|play| not_future(play.ts).map(|()| play))
                .map(|play| {
                    // Counted under the catalog version in effect at the play's ts; corrections
                    // retract under the same genre.
                    let e = ctx.catalog.enrich(play.video_id, play.ts);
                    let verdict = self.engine.on_play_counted_as(
                        &play,
                        e.genre,
                        e.is_new_launch,
                        &mut self.outs,
                    );
                    self.archive.push_play(&play, self.partition, offset);
                    self.observe(k, play.ts, verdict, &play.country, &play.device, ctx);
                })
        };
        if let Err(rejection) = result {
            ctx.meters.rejected[k].increment(1);
            let src = dlq::Source {
                topic,
                partition: self.partition,
                offset,
            };
            tracing::debug!(topic = %topic, partition = self.partition, offset, error = %rejection, "rejected");
            let d = ctx
                .publisher
                .dead_letter(ctx.dlq_topic, src, key, payload, &rejection.to_string())
                .await?;
            self.dlq.push(d);
        }
        self.emit(ctx);
        Ok(())
    }

    fn observe(
        &mut self,
        k: Topic,
        ts: Ts,
        verdict: Verdict,
        country: &str,
        device: &str,
        ctx: &Ctx<'_>,
    ) {
        let topic = &ctx.topics[k];
        if self.high_water[k].is_none_or(|h| ts > h) {
            self.high_water[k] = Some(ts);
        }
        match verdict {
            Verdict::Accepted => {}
            Verdict::TooLate => {
                ctx.meters.too_late[k].increment(1);
                *self
                    .too_late
                    .entry((
                        ts.hour_start(),
                        topic.to_owned(),
                        country.to_owned(),
                        device.to_owned(),
                    ))
                    .or_default() += 1;
            }
            Verdict::Duplicate => {
                ctx.meters.duplicates[k].increment(1);
            }
        }
    }

    /// Turns the engine's outputs into view deltas and enriched plays.
    fn emit(&mut self, ctx: &Ctx<'_>) {
        let names = self.engine.names();
        for o in self.outs.drain(..) {
            self.catalog_use = Some(match self.catalog_use {
                None => CatalogUse {
                    version: ctx.catalog_version,
                    max_play_ts: o.play.ts,
                },
                Some(u) => CatalogUse {
                    version: u.version.min(ctx.catalog_version),
                    max_play_ts: u.max_play_ts.max(o.play.ts),
                },
            });
            let meta = ctx.catalog.at(o.play.video_id, o.play.ts);
            ctx.meters.lookup(meta.is_some());
            let e = enrich(meta, o.play.ts.day());
            let (genre, new_launch) = match o.play.counted_as {
                Some((g, n)) => (names.resolve(g), n),
                None => (e.genre, e.is_new_launch),
            };
            match &o.previous {
                Some(prev) => {
                    let old = PlayFacts::of(names, &o.play, prev, genre, new_launch);
                    self.counts.add(&old, -1);
                    ctx.meters.corrections.increment(1);
                    self.corrections += 1;
                }
                None => {
                    let a = &ctx.meters.attributions;
                    a[0][usize::from(o.current.sop.is_none())].increment(1);
                    a[1][usize::from(o.current.sod.is_none())].increment(1);
                }
            }
            let new = PlayFacts::of(names, &o.play, &o.current, genre, new_launch);
            self.counts.add(&new, 1);
            if ctx.publish_enriched {
                let ep = EnrichedPlay::new(names, &o.play, &o.current, o.revision, meta);
                if let Ok(json) = serde_json::to_vec(&ep) {
                    self.enriched.push((o.play.member_id.0.to_string(), json));
                }
            }
        }
    }

    /// Whether a flush has something to commit for this unit.
    pub fn has_changes(&self) -> bool {
        self.phase == Phase::Live
            && (self.since_flush > 0
                || self
                    .assigned
                    .topics()
                    .any(|k| self.next[k] != self.committed[k]))
    }

    /// Whether a checkpoint is due (`interval` elapsed and the offsets moved since the last one).
    pub fn checkpoint_due(&self, interval: std::time::Duration) -> bool {
        self.phase == Phase::Live && self.checkpointing.due(self.next, interval)
    }

    /// Whether a checkpoint layer's pairs are being copied ([`Self::checkpoint_step`] wanted).
    pub fn checkpoint_copying(&self) -> bool {
        self.checkpointing.copying()
    }

    /// Whether a checkpoint layer is fully copied and waits for the next flush.
    pub fn checkpoint_ready(&self) -> bool {
        self.checkpointing.ready()
    }

    /// Copies pairs of the checkpoint layer being taken until `until`; true when the last was.
    pub fn checkpoint_step(&mut self, until: std::time::Instant) -> bool {
        self.checkpointing.step(&mut self.engine, until)
    }

    /// The unit's checkpoints (to record a flush's outcome).
    pub fn checkpointing_mut(&mut self) -> &mut Checkpointing {
        &mut self.checkpointing
    }

    /// Begins a checkpoint layer at the unit's offsets with no flush (nothing else to commit);
    /// the flush after its last slice writes it.
    pub fn begin_checkpoint(&mut self, group: &str) {
        let pending = self.checkpointing.take(
            &mut self.engine,
            CheckpointNow::Begin,
            (group, self.partition, self.epoch),
            self.next,
        );
        debug_assert!(pending.is_none(), "a ready layer always goes with a flush");
    }

    /// The flush could not write the unit's checkpoint layer: the next one is full.
    pub fn checkpoint_failed(&mut self) {
        self.checkpointing.failed(&mut self.engine);
    }

    /// Takes what the next flush commits; `checkpoint` says whether a checkpoint layer of the
    /// engine at these offsets (in `group`'s folder) is begun or finished now; a layer whose
    /// pairs are all copied goes with it in any case.
    pub fn take_flush(
        &mut self,
        topics: &PerTopic<String>,
        group: &str,
        checkpoint: CheckpointNow,
    ) -> UnitFlush {
        let offsets = self
            .assigned
            .topics()
            .map(|k| OffsetRow {
                topic: topics[k].clone(),
                next_offset: self.next[k],
                high_water: self.high_water[k],
            })
            .collect();
        let checkpoint = self.checkpointing.take(
            &mut self.engine,
            checkpoint,
            (group, self.partition, self.epoch),
            self.next,
        );
        self.committed = self.next;
        self.since_flush = 0;
        self.record_gauges(topics);
        UnitFlush {
            commit: UnitCommit {
                partition: self.partition,
                epoch: self.epoch,
                counts: std::mem::take(&mut self.counts),
                too_late: std::mem::take(&mut self.too_late),
                offsets,
                checkpoint: None,
                staged: Vec::new(),
            },
            checkpoint,
            archive: self.archive.take(),
            dlq: std::mem::take(&mut self.dlq),
            enriched: std::mem::take(&mut self.enriched),
            catalog_use: self.catalog_use.take(),
        }
    }

    fn record_gauges(&self, topics: &PerTopic<String>) {
        let p = self.partition.to_string();
        let s = self.engine.stats();
        ::metrics::gauge!(m::STATE_KEYS, "partition" => p.clone()).set(s.keys as f64);
        ::metrics::gauge!(m::STATE_BYTES, "partition" => p.clone()).set(s.bytes as f64);
        ::metrics::gauge!(m::PENDING_PLAYS, "partition" => p.clone()).set(s.pending_plays as f64);
        for (topic, hw) in topics.values().zip(self.high_water.values()) {
            if let Some(h) = hw {
                ::metrics::gauge!(m::WATERMARK_MS, "topic" => topic.clone(), "partition" => p.clone())
                    .set(h.0 as f64);
            }
        }
    }

    /// Greatest event time seen per topic.
    pub fn high_water(&self) -> PerTopic<Option<Ts>> {
        self.high_water
    }
}

/// The engine's greatest event time per topic.
fn high_waters(engine: &Engine) -> PerTopic<Option<Ts>> {
    PerTopic::new(engine.impressions_high_water(), engine.plays_high_water())
}

/// The receiving clock, for the future rule.
fn clock_now() -> Ts {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ts(ms)
}

/// An engine for a fresh unit.
pub fn fresh_engine(cfg: playsource_domain::AttributionConfig) -> Engine {
    Engine::new(cfg)
}

/// Shared handle to the catalog used by units.
pub type SharedCatalog = Arc<Catalog>;
