//! The incremental engine's impressions per (member, video) pair, kept compact: a hash index of
//! 4-byte slot numbers over chunks of 48-byte slots (the pair and its [`Packed`] impressions).
//!
//! The rules never see this form: every read or change goes through a [`KeyImpressions`] built
//! from the slot, so insertion, compaction and attribution are exactly those of the bulk path.
//!
//! Expiry needs no index of its own. A pair's expiry follows from its newest impression
//! ([`KeyImpressions::expires_at`]), so the store only remembers the oldest newest impression of
//! all pairs; when the plays' frontier passes that pair's expiry, one sweep over the slots drops
//! every expired pair and compacts every pair with several impressions. With the usual
//! configuration expiries fall on UTC day starts, so that is one sweep per day of event time. A
//! sweep waits until the store has seen a quarter as many events (impressions, or plays moving
//! the frontier) as it holds pairs since the last one, which bounds its cost per event whatever
//! the configuration; meanwhile expired pairs only stay longer, they are never used.

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::key_state::expiry_of_newest;
use super::packed::Packed;
use super::{Attribution, AttributionConfig, ImpressionRecord, KeyImpressions};
use crate::time::Ts;

/// A (member, video) pair.
pub(super) type Key = (u64, u64);

const CHUNK_BITS: u32 = 12;
/// Slots per chunk: chunks never move once full, so spare capacity is at most one chunk.
const CHUNK: usize = 1 << CHUNK_BITS;
/// End of the free list; also the one slot number never handed out.
const NO_SLOT: u32 = u32::MAX;

/// One pair's place. 48 bytes.
#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    held: Held,
}

#[derive(Clone, Debug)]
enum Held {
    Live(Packed),
    /// Unused; the next free slot.
    Free(u32),
}

/// Bytes held, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct StoreBytes {
    /// The hash index: its buckets and control bytes.
    pub index: usize,
    /// The slots, spare capacity included.
    pub slots: usize,
    /// Boxes of pairs with several impressions or with impressions that do not pack.
    pub overflow: usize,
}

/// The impressions of every pair, compact.
#[derive(Clone)]
pub(super) struct KeyStore {
    index: HashTable<u32>,
    chunks: Vec<Vec<Slot>>,
    free: u32,
    impressions: usize,
    overflow: usize,
    /// At or before the newest impression of every pair (None when no pair was added).
    oldest_newest: Option<Ts>,
    /// Events since the last sweep.
    credit: usize,
    /// What changed since the last checkpoint layer began ([`Self::begin_changes`]).
    changed: Changed,
    /// The layer being taken a slice at a time, if any.
    taking: Option<Taking>,
}

/// A checkpoint layer's pairs being copied a slice at a time ([`KeyStore::step_changes`]) while
/// the store keeps changing: a slot about to change or be dropped before its turn is copied first
/// ([`KeyStore::preserve`]), so the layer holds every pair as it was when the take began.
#[derive(Clone, Debug, Default)]
struct Taking {
    /// A bit per slot still to copy.
    slots: Vec<u64>,
    /// Words of `slots` before this one hold no bit.
    cursor: usize,
    pairs: Vec<(Key, Packed)>,
}

impl Taking {
    fn has(&self, s: u32) -> bool {
        self.slots
            .get(s as usize / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }

    fn clear(&mut self, s: u32) {
        if let Some(w) = self.slots.get_mut(s as usize / 64) {
            *w &= !(1 << (s % 64));
        }
    }
}

/// The pairs changed since the changes were last taken: a bit per slot an impression was added
/// to, the pairs an insertion emptied, and the greatest frontier a sweep expired pairs at (the
/// pairs a sweep drops follow from their newest impression and that frontier, so they are not
/// listed).
#[derive(Clone, Debug, Default)]
struct Changed {
    slots: Vec<u64>,
    removed: Vec<Key>,
    swept: Option<Ts>,
}

impl Changed {
    fn mark(&mut self, s: u32) {
        let word = s as usize / 64;
        if word >= self.slots.len() {
            self.slots.resize(word + 1, 0);
        }
        self.slots[word] |= 1 << (s % 64);
    }
}

/// Pairs taken from the store for a checkpoint, still packed: taking them copies slots, and
/// [`ChangedPairs::into_sorted`] (off the consumer loop) unpacks and sorts them.
#[derive(Clone, Debug, Default)]
pub struct ChangedPairs(Vec<(Key, Packed)>);

impl ChangedPairs {
    /// Pairs held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no pair is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs with their impressions, sorted by (member, video): sorted still packed, then
    /// unpacked one at a time as the iterator goes.
    pub fn into_sorted(mut self) -> impl Iterator<Item = ((u64, u64), KeyImpressions)> {
        self.0.sort_unstable_by_key(|(k, _)| *k);
        self.0.into_iter().map(|(k, p)| (k, p.unpack()))
    }
}

/// What [`KeyStore::begin_changes`] hands over at once: the rest are the pairs, copied by
/// [`KeyStore::step_changes`].
pub(super) struct BegunChanges {
    /// Pairs the layer will hold at most.
    pub pairs: usize,
    pub removed: Vec<Key>,
    pub swept: Option<Ts>,
}

/// Pairs copied per unit of work in [`KeyStore::step_changes`]; scanning this many bitset words
/// with no bit set counts as one.
const WORDS_PER_PAIR: usize = 16;

impl Default for KeyStore {
    fn default() -> Self {
        KeyStore {
            index: HashTable::new(),
            chunks: Vec::new(),
            free: NO_SLOT,
            impressions: 0,
            overflow: 0,
            oldest_newest: None,
            credit: usize::MAX,
            changed: Changed::default(),
            taking: None,
        }
    }
}

fn hash(key: &Key) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The earlier of two times, either possibly unknown.
fn older(a: Option<Ts>, b: Option<Ts>) -> Option<Ts> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => a.or(b),
    }
}

fn slot_in(chunks: &[Vec<Slot>], s: u32) -> &Slot {
    &chunks[(s >> CHUNK_BITS) as usize][s as usize & (CHUNK - 1)]
}

impl KeyStore {
    /// Pairs held.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Impressions held over all pairs.
    pub(super) fn impressions(&self) -> usize {
        self.impressions
    }

    /// Bytes held, counting capacity.
    pub(super) fn bytes(&self) -> StoreBytes {
        StoreBytes {
            index: super::engine::table_bytes(self.index.capacity(), std::mem::size_of::<u32>()),
            slots: self.chunks.capacity() * std::mem::size_of::<Vec<Slot>>()
                + self
                    .chunks
                    .iter()
                    .map(|c| c.capacity() * std::mem::size_of::<Slot>())
                    .sum::<usize>(),
            overflow: self.overflow,
        }
    }

    /// Both sources of a play of `key` at `t`.
    pub(super) fn attribute(&self, key: &Key, t: Ts, cfg: &AttributionConfig) -> Attribution {
        match self.find(hash(key), key).map(|s| &self.slot(s).held) {
            Some(Held::Live(p)) => p.to_impressions().attribute(t, cfg),
            _ => Attribution::default(),
        }
    }

    /// Adds an impression to `key`'s list and compacts the list at the plays' `frontier`.
    pub(super) fn insert(
        &mut self,
        key: Key,
        rec: ImpressionRecord,
        frontier: Option<Ts>,
        cfg: &AttributionConfig,
    ) {
        self.credit = self.credit.saturating_add(1);
        let h = hash(&key);
        let found = self.find(h, &key);
        if let Some(s) = found {
            self.preserve(s);
        }
        let mut list = found.map(|s| self.take(s)).unwrap_or_default();
        list.insert(rec);
        if let Some(f) = frontier {
            list.compact(f, cfg);
        }
        self.oldest_newest = older(self.oldest_newest, list.as_slice().last().map(|r| r.ts));
        match (found, Packed::pack(list)) {
            (Some(s), Some(p)) => {
                self.put(s, p);
                self.changed.mark(s);
            }
            (Some(s), None) => {
                self.release(h, s);
                self.changed.removed.push(key);
            }
            (None, Some(p)) => {
                if let Some(s) = self.add(h, key, p) {
                    self.changed.mark(s);
                }
            }
            (None, None) => {}
        }
    }

    /// Begins taking a checkpoint layer: the pairs changed since the last one began, or every
    /// pair with `all`. Hands over what the layer drops of older layers; the pairs are copied by
    /// [`Self::step_changes`], as they stand now whatever changes meanwhile. A take still under
    /// way is abandoned (its caller makes this one full).
    pub(super) fn begin_changes(&mut self, all: bool) -> BegunChanges {
        self.taking = None;
        let changed = std::mem::take(&mut self.changed);
        let (slots, pairs) = if all {
            let n = self.chunks.iter().map(Vec::len).sum::<usize>();
            let mut slots = vec![u64::MAX; n / 64];
            if n % 64 != 0 {
                slots.push((1u64 << (n % 64)) - 1);
            }
            (slots, self.len())
        } else {
            let marked = changed.slots.iter().map(|w| w.count_ones() as usize).sum();
            (changed.slots, marked)
        };
        self.taking = Some(Taking {
            slots,
            cursor: 0,
            // Sized up front: growing a vector of millions of slots by doubling costs more than
            // the copy itself.
            pairs: Vec::with_capacity(pairs),
        });
        BegunChanges {
            pairs,
            removed: if all { Vec::new() } else { changed.removed },
            swept: if all { None } else { changed.swept },
        }
    }

    /// Whether a layer's pairs are being copied.
    pub(super) fn taking(&self) -> bool {
        self.taking.is_some()
    }

    /// Copies about `work` more of the layer's pairs (at least one when any is left); true when
    /// every pair is copied (or no layer is being taken).
    pub(super) fn step_changes(&mut self, work: usize) -> bool {
        let Some(t) = self.taking.as_mut() else {
            return true;
        };
        let chunks = &self.chunks;
        let mut done = 0usize;
        let mut empty = 0usize;
        while t.cursor < t.slots.len() {
            let w = t.cursor;
            let mut bits = t.slots[w];
            if bits == 0 {
                empty += 1;
                if empty == WORDS_PER_PAIR {
                    empty = 0;
                    done += 1;
                }
            }
            while bits != 0 {
                let s = (w * 64) as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                let slot = slot_in(chunks, s);
                if let Held::Live(p) = &slot.held {
                    t.pairs.push((slot.key, p.clone()));
                }
                done += 1;
            }
            t.slots[w] = 0;
            t.cursor += 1;
            if done >= work.max(1) {
                break;
            }
        }
        t.cursor >= t.slots.len()
    }

    /// The layer's pairs, copying what is left first (None when no layer is being taken).
    pub(super) fn finish_changes(&mut self) -> Option<ChangedPairs> {
        self.step_changes(usize::MAX);
        self.taking.take().map(|t| ChangedPairs(t.pairs))
    }

    /// Drops the layer being taken, if any.
    pub(super) fn abandon_changes(&mut self) {
        self.taking = None;
    }

    /// Before slot `s` changes or is dropped: copies it into the layer being taken if its turn
    /// has not come.
    fn preserve(&mut self, s: u32) {
        let Some(t) = self.taking.as_mut() else {
            return;
        };
        if t.has(s) {
            t.clear(s);
            let slot = slot_in(&self.chunks, s);
            if let Held::Live(p) = &slot.held {
                t.pairs.push((slot.key, p.clone()));
            }
        }
    }

    /// Whether the pair's impressions are all expired at `swept` (a sweep there dropped it).
    pub(super) fn expired_at(list: &KeyImpressions, swept: Ts, cfg: &AttributionConfig) -> bool {
        list.as_slice()
            .last()
            .is_none_or(|newest| expiry_of_newest(newest.ts, cfg) <= swept)
    }

    /// Drops the pairs that no play at or after `frontier` can use, if a sweep is due.
    pub(super) fn expire(&mut self, frontier: Ts, cfg: &AttributionConfig) {
        self.credit = self.credit.saturating_add(1);
        let due = self
            .oldest_newest
            .is_some_and(|o| expiry_of_newest(o, cfg) <= frontier)
            && self.credit >= self.len() / 4;
        if due {
            self.sweep(frontier, cfg);
        }
    }

    fn sweep(&mut self, frontier: Ts, cfg: &AttributionConfig) {
        // A sweep touches every slot: the layer being taken copies what is left first.
        self.step_changes(usize::MAX);
        self.credit = 0;
        self.changed.swept = Some(self.changed.swept.map_or(frontier, |s| s.max(frontier)));
        let slots = u32::try_from(self.chunks.iter().map(Vec::len).sum::<usize>()).unwrap_or(0);
        let expired = |p: &Packed| {
            p.last_ts()
                .is_none_or(|newest| expiry_of_newest(newest, cfg) <= frontier)
        };
        let dropping = self
            .chunks
            .iter()
            .flatten()
            .filter(|slot| matches!(&slot.held, Held::Live(p) if expired(p)))
            .count();
        // When most pairs go, refilling the index with the rest beats removing them one by one.
        let rebuild = dropping > self.len() / 2;
        if rebuild {
            self.index.clear();
        }
        let mut oldest: Option<Ts> = None;
        for s in 0..slots {
            let slot = self.slot(s);
            let Held::Live(p) = &slot.held else {
                continue;
            };
            let (key, newest) = (slot.key, p.last_ts());
            let remaining = if expired(p) {
                // Nothing in the list can serve a play at or after the frontier.
                self.discard(s);
                None
            } else if matches!(p, Packed::Many(_)) {
                let mut list = self.take(s);
                list.compact(frontier, cfg);
                Packed::pack(list)
            } else {
                // One impression, not expired: nothing to compact.
                oldest = older(oldest, newest);
                if rebuild {
                    self.reindex(s);
                }
                continue;
            };
            match remaining {
                Some(p) => {
                    oldest = older(oldest, p.last_ts());
                    self.put(s, p);
                    if rebuild {
                        self.reindex(s);
                    }
                }
                None if rebuild => self.free_slot(s),
                None => self.release(hash(&key), s),
            }
        }
        self.oldest_newest = oldest;
    }

    /// Puts a live slot back in the (cleared) index.
    fn reindex(&mut self, s: u32) {
        let chunks = &self.chunks;
        let h = hash(&slot_in(chunks, s).key);
        self.index
            .insert_unique(h, s, |&x| hash(&slot_in(chunks, x).key));
    }

    fn slot(&self, s: u32) -> &Slot {
        slot_in(&self.chunks, s)
    }

    fn slot_mut(&mut self, s: u32) -> &mut Slot {
        &mut self.chunks[(s >> CHUNK_BITS) as usize][s as usize & (CHUNK - 1)]
    }

    fn find(&self, h: u64, key: &Key) -> Option<u32> {
        let chunks = &self.chunks;
        self.index
            .find(h, |&s| slot_in(chunks, s).key == *key)
            .copied()
    }

    /// Moves a live slot's impressions out, leaving the slot to [`Self::put`] or
    /// [`Self::release`].
    fn take(&mut self, s: u32) -> KeyImpressions {
        match std::mem::replace(&mut self.slot_mut(s).held, Held::Free(NO_SLOT)) {
            Held::Live(p) => {
                self.impressions -= p.len();
                self.overflow -= p.heap_bytes();
                p.unpack()
            }
            Held::Free(_) => KeyImpressions::default(),
        }
    }

    /// Drops a live slot's impressions, leaving the slot to [`Self::release`].
    fn discard(&mut self, s: u32) {
        if let Held::Live(p) = std::mem::replace(&mut self.slot_mut(s).held, Held::Free(NO_SLOT)) {
            self.impressions -= p.len();
            self.overflow -= p.heap_bytes();
        }
    }

    fn put(&mut self, s: u32, p: Packed) {
        self.impressions += p.len();
        self.overflow += p.heap_bytes();
        self.slot_mut(s).held = Held::Live(p);
    }

    /// Forgets a taken slot's pair and frees the slot.
    fn release(&mut self, h: u64, s: u32) {
        if let Ok(entry) = self.index.find_entry(h, |&x| x == s) {
            entry.remove();
        }
        self.free_slot(s);
    }

    /// Frees a taken slot that the index no longer holds.
    fn free_slot(&mut self, s: u32) {
        let next = self.free;
        self.slot_mut(s).held = Held::Free(next);
        self.free = s;
    }

    /// Gives a new pair a slot (None only past 4 billion slots).
    fn add(&mut self, h: u64, key: Key, p: Packed) -> Option<u32> {
        let s = if self.free != NO_SLOT {
            let s = self.free;
            if let Held::Free(next) = self.slot(s).held {
                self.free = next;
            }
            // Free when the layer being taken began, or copied since: the new pair is not its.
            if let Some(t) = self.taking.as_mut() {
                t.clear(s);
            }
            self.slot_mut(s).key = key;
            s
        } else {
            let used = (self.chunks.len().saturating_sub(1) << CHUNK_BITS)
                + self.chunks.last().map_or(0, Vec::len);
            // 4 billion pairs would need 200 GB: unreachable, but never hand out NO_SLOT.
            let s = u32::try_from(used).ok().filter(|&s| s != NO_SLOT)?;
            if self.chunks.last().is_none_or(|c| c.len() >= CHUNK) {
                self.chunks.push(Vec::new());
            }
            if let Some(c) = self.chunks.last_mut() {
                if c.len() == c.capacity() {
                    // Doubling, but never past one chunk.
                    c.reserve_exact(c.capacity().clamp(4, CHUNK - c.len()));
                }
                c.push(Slot {
                    key,
                    held: Held::Free(NO_SLOT),
                });
            }
            s
        };
        self.put(s, p);
        let chunks = &self.chunks;
        self.index
            .insert_unique(h, s, |&x| hash(&slot_in(chunks, x).key));
        Some(s)
    }

    /// Makes room for `pairs` more pairs (restoring a checkpoint of known size).
    pub(super) fn reserve(&mut self, pairs: usize) {
        let chunks = &self.chunks;
        self.index
            .reserve(pairs, |&x| hash(&slot_in(chunks, x).key));
        self.chunks.reserve(pairs.div_ceil(CHUNK));
    }

    /// Adds a pair known not to be held yet (a checkpoint's pairs come sorted without repeats):
    /// no lookup first. Not a change to checkpoint.
    pub(super) fn restore_new(&mut self, key: Key, list: KeyImpressions) {
        self.oldest_newest = older(self.oldest_newest, list.as_slice().last().map(|r| r.ts));
        if let Some(p) = Packed::pack(list) {
            self.add(hash(&key), key, p);
        }
    }

    /// Adds a pair read back from a snapshot or checkpoint (not a change to checkpoint).
    pub(super) fn restore(&mut self, key: Key, list: KeyImpressions) {
        let h = hash(&key);
        let list = match self.find(h, &key) {
            // A snapshot holds each pair once; merge a repeat rather than lose it.
            Some(s) => {
                self.preserve(s);
                let mut old = self.take(s);
                for r in list.into_sorted() {
                    old.insert(r);
                }
                self.release(h, s);
                old
            }
            None => list,
        };
        self.oldest_newest = older(self.oldest_newest, list.as_slice().last().map(|r| r.ts));
        if let Some(p) = Packed::pack(list) {
            self.add(h, key, p);
        }
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("keys", &self.len())
            .field("impressions", &self.impressions)
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// A sequence of (pair, [`KeyImpressions`]): the layout of the map it replaced.
impl Serialize for KeyStore {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for slot in self.chunks.iter().flatten() {
            if let Held::Live(p) = &slot.held {
                seq.serialize_element(&(slot.key, p.to_impressions()))?;
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for KeyStore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = KeyStore;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of ((member, video), impressions)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyStore, A::Error> {
                let mut store = KeyStore::default();
                while let Some((key, list)) = seq.next_element::<(Key, KeyImpressions)>()? {
                    store.restore(key, list);
                }
                Ok(store)
            }
        }
        d.deserialize_seq(Pairs)
    }
}

#[cfg(test)]
#[path = "key_store_tests.rs"]
mod tests;
