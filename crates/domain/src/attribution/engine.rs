//! The incremental engine: one partition unit (partition p of `impressions` and of `plays`),
//! event by event, in event time.
//!
//! A play is attributed from the impressions seen so far and published at once (revision 0).
//! It stays *pending* until the impressions' watermark (greatest impression `ts` minus the allowed
//! lateness) passes its `ts`; an impression that arrives meanwhile and changes a source produces
//! a correction (revision + 1, with the attribution to retract). An impression arriving after
//! that would be too late, so the final attribution never depends on how the two topics'
//! deliveries interleave. Impressions are kept per (member, video) only while some future play
//! could use them; the plays' own watermark decides that.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::key_store::{Key, KeyStore};
use super::{rules, Attribution, AttributionConfig, ImpressionRecord, Output, PlayRecord};
use crate::event::{Impression, Play};
use crate::ids::{EventKey, Interner};
use crate::time::Ts;

/// What became of an input event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Used.
    Accepted,
    /// More than the allowed lateness behind its topic-partition's greatest `ts`: left out.
    TooLate,
    /// A play whose event_id was already seen within the de-duplication horizon: left out.
    Duplicate,
}

/// Size of the engine's state. Bytes count what is allocated, spare capacity included: hash
/// tables by buckets and control bytes, vectors by capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// (member, video) pairs with impressions kept.
    pub keys: usize,
    /// Impressions kept over all pairs.
    pub impressions: usize,
    /// Plays whose attribution may still be corrected.
    pub pending_plays: usize,
    /// Play event ids remembered for de-duplication.
    pub dedup_ids: usize,
    /// Bytes of all of the above: the sum of the parts below.
    pub bytes: usize,
    /// Of `bytes`: the hash index over the pairs (4-byte slot numbers and control bytes).
    pub index_bytes: usize,
    /// Of `bytes`: the pairs' 48-byte slots, each with its first impression inline.
    pub slot_bytes: usize,
    /// Of `bytes`: pairs with several impressions, or with impressions that do not pack (event
    /// ids other than canonical UUIDs).
    pub overflow_bytes: usize,
    /// Of `bytes`: the pending plays and their order.
    pub pending_bytes: usize,
    /// Of `bytes`: the de-duplication set and its order.
    pub dedup_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    play: PlayRecord,
    attribution: Attribution,
    revision: u32,
}

/// The attribution state of one partition unit. Serialisable, so a snapshot restores it exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Engine {
    cfg: AttributionConfig,
    names: Interner,
    /// Impressions per (member, video) pair, expired as the plays' frontier advances.
    keys: KeyStore,
    #[serde(with = "pairs")]
    pending: FxHashMap<Key, SmallVec<[Pending; 1]>>,
    pending_order: BinaryHeap<Reverse<(i64, Key)>>,
    seen_plays: FxHashSet<u128>,
    seen_order: BinaryHeap<Reverse<(i64, u128)>>,
    imp_max: Option<Ts>,
    play_max: Option<Ts>,
    /// Plays remembered for de-duplication since the last checkpoint was taken (None until the
    /// first one: the first checkpoint takes them all).
    #[serde(skip)]
    seen_log: Option<Vec<(i64, u128)>>,
}

#[path = "checkpoint.rs"]
mod checkpoint;
pub use checkpoint::{overlay, LayerHead, Pair};

impl Engine {
    /// An empty engine.
    pub fn new(cfg: AttributionConfig) -> Engine {
        Engine {
            cfg,
            names: Interner::default(),
            keys: KeyStore::default(),
            pending: FxHashMap::default(),
            pending_order: BinaryHeap::new(),
            seen_plays: FxHashSet::default(),
            seen_order: BinaryHeap::new(),
            imp_max: None,
            play_max: None,
            seen_log: None,
        }
    }

    /// The rules' configuration.
    pub fn config(&self) -> &AttributionConfig {
        &self.cfg
    }

    /// The names behind the symbols in this engine's outputs.
    pub fn names(&self) -> &Interner {
        &self.names
    }

    /// Greatest impression `ts` so far.
    pub fn impressions_high_water(&self) -> Option<Ts> {
        self.imp_max
    }

    /// Greatest play `ts` so far.
    pub fn plays_high_water(&self) -> Option<Ts> {
        self.play_max
    }

    /// Impressions' watermark: no impression at or before it can still change a play.
    pub fn impressions_watermark(&self) -> Option<Ts> {
        self.imp_max.map(|m| m.minus(self.cfg.allowed_lateness_ms))
    }

    /// Plays' watermark: every play still to come is at or after it.
    pub fn plays_watermark(&self) -> Option<Ts> {
        self.play_max.map(|m| m.minus(self.cfg.allowed_lateness_ms))
    }

    /// Feeds one impression; corrections of pending plays go to `out`.
    pub fn on_impression(&mut self, imp: &Impression<'_>, out: &mut Vec<Output>) -> Verdict {
        if self.impressions_watermark().is_some_and(|w| imp.ts < w) {
            return Verdict::TooLate;
        }
        self.imp_max = Some(self.imp_max.map_or(imp.ts, |m| m.max(imp.ts)));
        let rec = ImpressionRecord::of(imp, &mut self.names);
        let key = (imp.member_id.0, imp.video_id.0);
        if let Some(plays) = self.pending.get_mut(&key) {
            for p in plays.iter_mut() {
                correct(p, &rec, &self.cfg, out);
            }
        }
        self.store(key, rec);
        if let Some(w) = self.impressions_watermark() {
            self.finalize_before(w);
        }
        Verdict::Accepted
    }

    /// Feeds one play; its first attribution goes to `out`.
    pub fn on_play(&mut self, play: &Play<'_>, out: &mut Vec<Output>) -> Verdict {
        self.on_play_inner(play, None, out)
    }

    /// Like [`Self::on_play`], recording the genre and new-launch flag the caller counts the play
    /// under (in [`PlayRecord::counted_as`] of this play's outputs, corrections included).
    pub fn on_play_counted_as(
        &mut self,
        play: &Play<'_>,
        genre: &str,
        new_launch: bool,
        out: &mut Vec<Output>,
    ) -> Verdict {
        self.on_play_inner(play, Some((genre, new_launch)), out)
    }

    fn on_play_inner(
        &mut self,
        play: &Play<'_>,
        counted_as: Option<(&str, bool)>,
        out: &mut Vec<Output>,
    ) -> Verdict {
        let id_hash = EventKey::hash128(&play.event_id);
        if self.seen_plays.contains(&id_hash) {
            return Verdict::Duplicate;
        }
        let too_late = self.plays_watermark().is_some_and(|w| play.ts < w);
        if self
            .play_max
            .is_none_or(|m| play.ts.0 >= m.0.saturating_sub(self.cfg.dedup_horizon_ms))
        {
            self.seen_plays.insert(id_hash);
            self.seen_order.push(Reverse((play.ts.0, id_hash)));
            if let Some(log) = &mut self.seen_log {
                log.push((play.ts.0, id_hash));
            }
        }
        if too_late {
            return Verdict::TooLate;
        }
        let advanced = self.play_max.is_none_or(|m| play.ts > m);
        if advanced {
            self.play_max = Some(play.ts);
        }
        let key = (play.member_id.0, play.video_id.0);
        let mut record = PlayRecord::of(play, &mut self.names);
        record.counted_as =
            counted_as.map(|(genre, new_launch)| (self.names.intern(genre), new_launch));
        let attribution = self.keys.attribute(&key, play.ts, &self.cfg);
        out.push(Output {
            play: record.clone(),
            revision: 0,
            previous: None,
            current: attribution.clone(),
        });
        if self.impressions_watermark().is_none_or(|w| play.ts >= w) {
            self.pending.entry(key).or_default().push(Pending {
                play: record,
                attribution,
                revision: 0,
            });
            self.pending_order.push(Reverse((play.ts.0, key)));
        }
        if advanced {
            self.on_plays_advanced();
        }
        Verdict::Accepted
    }

    /// Ends every pending play's chance of correction (end of input).
    pub fn finalize_all(&mut self) {
        self.pending.clear();
        self.pending_order.clear();
    }

    /// Counts and the bytes held.
    pub fn stats(&self) -> StateStats {
        use std::mem::size_of;
        let store = self.keys.bytes();
        let pending_plays: usize = self.pending.values().map(|v| v.len()).sum();
        let pending_bytes = table_bytes(
            self.pending.capacity(),
            size_of::<(Key, SmallVec<[Pending; 1]>)>(),
        ) + self
            .pending
            .values()
            .filter(|v| v.spilled())
            .map(|v| v.capacity() * size_of::<Pending>())
            .sum::<usize>()
            + self.pending_order.capacity() * size_of::<Reverse<(i64, Key)>>();
        let dedup_bytes = table_bytes(self.seen_plays.capacity(), size_of::<u128>())
            + self.seen_order.capacity() * size_of::<Reverse<(i64, u128)>>();
        StateStats {
            keys: self.keys.len(),
            impressions: self.keys.impressions(),
            pending_plays,
            dedup_ids: self.seen_plays.len(),
            bytes: store.index + store.slots + store.overflow + pending_bytes + dedup_bytes,
            index_bytes: store.index,
            slot_bytes: store.slots,
            overflow_bytes: store.overflow,
            pending_bytes,
            dedup_bytes,
        }
    }

    fn store(&mut self, key: Key, rec: ImpressionRecord) {
        let frontier = self.plays_watermark();
        self.keys.insert(key, rec, frontier, &self.cfg);
    }

    fn on_plays_advanced(&mut self) {
        let Some(frontier) = self.plays_watermark() else {
            return;
        };
        self.keys.expire(frontier, &self.cfg);
        self.forget_seen_before(frontier);
    }

    /// Forgets the play ids de-duplication no longer needs at the plays' `frontier`.
    fn forget_seen_before(&mut self, frontier: Ts) {
        let horizon = dedup_horizon(frontier, &self.cfg);
        while let Some(Reverse((ts, id))) = self.seen_order.peek().copied() {
            if ts >= horizon {
                break;
            }
            self.seen_order.pop();
            self.seen_plays.remove(&id);
        }
    }

    fn finalize_before(&mut self, watermark: Ts) {
        while let Some(Reverse((ts, key))) = self.pending_order.peek().copied() {
            if ts >= watermark.0 {
                break;
            }
            self.pending_order.pop();
            if let Some(plays) = self.pending.get_mut(&key) {
                plays.retain(|p| p.play.ts >= watermark);
                if plays.is_empty() {
                    self.pending.remove(&key);
                }
            }
        }
    }
}

/// The event time before which no play id needs remembering at the plays' `frontier`.
fn dedup_horizon(frontier: Ts, cfg: &AttributionConfig) -> i64 {
    frontier
        .0
        .saturating_add(cfg.allowed_lateness_ms)
        .saturating_sub(cfg.dedup_horizon_ms)
}

fn correct(
    p: &mut Pending,
    imp: &ImpressionRecord,
    cfg: &AttributionConfig,
    out: &mut Vec<Output>,
) {
    let t = p.play.ts;
    let sop = rules::improves_sop(p.attribution.sop.as_ref(), imp, t, cfg);
    let sod = rules::improves_sod(p.attribution.sod.as_ref(), imp, t, cfg);
    if !sop && !sod {
        return;
    }
    let previous = p.attribution.clone();
    if sop {
        p.attribution.sop = Some(imp.clone());
    }
    if sod {
        p.attribution.sod = Some(imp.clone());
    }
    p.revision += 1;
    out.push(Output {
        play: p.play.clone(),
        revision: p.revision,
        previous: Some(previous),
        current: p.attribution.clone(),
    });
}

/// Bytes of a hashbrown table that can hold `capacity` entries of `entry` bytes: a power-of-two
/// number of buckets at most 7/8 full, each with its entry and one control byte.
pub(super) fn table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (entry + 1) + 16
}

/// Maps with tuple keys as sequences of pairs, so any serde format (JSON included) can hold them.
mod pairs {
    use std::hash::Hash;

    use rustc_hash::FxHashMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &FxHashMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<FxHashMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
