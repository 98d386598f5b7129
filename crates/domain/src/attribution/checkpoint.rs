//! Incremental checkpoints of an [`Engine`]: *layers*, each the engine's small parts whole (its
//! [`LayerHead`]) and its (member, video) pairs — all of them in a full layer, the ones changed
//! since the previous layer in an incremental one.
//!
//! A chain of layers, oldest first, restores the engine: each newer layer drops from the older
//! layers' pairs those its insertions emptied and those its sweeps expired (a sweep's drops follow
//! from each pair's newest impression and the sweep's frontier, so they are not listed), and
//! replaces the pairs it changed. Pairs the live engine compacted in a sweep stay uncompacted in
//! older layers: they attribute every later play the same, and are compacted when touched.
//!
//! Everything here is pure: the stream encodes layers into files and merges them ([`overlay`],
//! [`LayerHead::merge`]) off its consumer loop; taking a layer ([`Engine::take_layer`]) only
//! copies what changed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{dedup_horizon, Engine, Key, KeyStore, Pending};
use crate::attribution::key_store::ChangedPairs;
use crate::attribution::{AttributionConfig, KeyImpressions};
use crate::ids::Interner;
use crate::time::Ts;

/// A (member, video) pair and its impressions, as layers hold them.
pub type Pair = ((u64, u64), KeyImpressions);

/// The engine's parts other than its pairs, whole in every layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EngineHead {
    cfg: AttributionConfig,
    names: Interner,
    pending: Vec<(Key, SmallVec<[Pending; 1]>)>,
    imp_max: Option<Ts>,
    play_max: Option<Ts>,
}

/// A layer's small parts: the engine's configuration, names, pending plays and high-waters
/// (whole), the play ids remembered for de-duplication (all in a full layer, the new ones in an
/// incremental one), and what of the older layers' pairs it drops.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerHead {
    full: bool,
    /// Pairs in the layer (for a merged head, at most this many): restoring reserves room.
    pairs: u64,
    engine: EngineHead,
    removed: Vec<Key>,
    swept: Option<Ts>,
    seen: Vec<(i64, u128)>,
}

impl LayerHead {
    /// Whether this layer holds every pair (it needs no older layer).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The rules' configuration of the engine it was taken from.
    pub fn config(&self) -> &AttributionConfig {
        &self.engine.cfg
    }

    /// Merges the heads of a chain of layers (oldest first, the first one full) into the head of
    /// the one full layer [`overlay`] makes of their pairs. None for an empty chain.
    pub fn merge(heads: Vec<LayerHead>) -> Option<LayerHead> {
        let last = heads.last()?;
        let engine = last.engine.clone();
        let pairs = heads.iter().map(|h| h.pairs).sum();
        let horizon = engine.play_max.map(|m| {
            let frontier = m.minus(engine.cfg.allowed_lateness_ms);
            dedup_horizon(frontier, &engine.cfg)
        });
        let mut ids = FxHashSet::default();
        let mut seen = Vec::new();
        for h in heads.into_iter().rev() {
            for (ts, id) in h.seen {
                if horizon.is_none_or(|z| ts >= z) && ids.insert(id) {
                    seen.push((ts, id));
                }
            }
        }
        Some(LayerHead {
            full: true,
            pairs,
            engine,
            removed: Vec::new(),
            swept: None,
            seen,
        })
    }
}

/// The pairs of an older layer (sorted by key) as a newer layer leaves them: without those its
/// insertions emptied or its sweeps expired, with its own changed pairs (sorted by key) instead.
/// Sorted by key. Chain it once per newer layer, oldest first.
pub fn overlay<'a>(
    older: impl Iterator<Item = Pair> + 'a,
    newer: &'a LayerHead,
    changed: impl Iterator<Item = Pair> + 'a,
) -> impl Iterator<Item = Pair> + 'a {
    let removed: FxHashSet<Key> = newer.removed.iter().copied().collect();
    let cfg = newer.engine.cfg;
    let swept = newer.swept;
    let older = older.filter(move |(key, list)| {
        !removed.contains(key) && swept.is_none_or(|s| !KeyStore::expired_at(list, s, &cfg))
    });
    MergeByKey {
        older: older.peekable(),
        newer: changed.peekable(),
    }
}

/// Two key-sorted streams as one, the newer pair winning on equal keys.
struct MergeByKey<A: Iterator<Item = Pair>, B: Iterator<Item = Pair>> {
    older: std::iter::Peekable<A>,
    newer: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = Pair>, B: Iterator<Item = Pair>> Iterator for MergeByKey<A, B> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        match (self.older.peek(), self.newer.peek()) {
            (Some((a, _)), Some((b, _))) if a < b => self.older.next(),
            (Some((a, _)), Some((b, _))) if a == b => {
                self.older.next();
                self.newer.next()
            }
            (_, Some(_)) => self.newer.next(),
            (Some(_), None) => self.older.next(),
            (None, None) => None,
        }
    }
}

impl Engine {
    /// Takes a checkpoint layer at once: [`Self::begin_layer`] then [`Self::finish_layer`].
    pub fn take_layer(&mut self, full: bool) -> (LayerHead, ChangedPairs) {
        let head = self.begin_layer(full);
        let pairs = self.finish_layer().unwrap_or_default();
        (head, pairs)
    }

    /// Begins a checkpoint layer of the engine as it stands now: every pair when `full`, on the
    /// first call or when a layer was still being taken (it is abandoned), else the pairs changed
    /// since the previous layer began. Returns the layer's head; its pairs are copied a slice at a
    /// time by [`Self::continue_layer`] (or at once by [`Self::finish_layer`]) while events keep
    /// coming: a pair about to change before its turn is copied first, so the layer is exactly
    /// the state at this call. The caller unpacks and sorts the pairs
    /// ([`ChangedPairs::into_sorted`]) off its loop.
    pub fn begin_layer(&mut self, full: bool) -> LayerHead {
        let first = self.seen_log.is_none();
        let full = full || first || self.keys.taking();
        let changes = self.keys.begin_changes(full);
        let seen = match self.seen_log.replace(Vec::new()) {
            Some(log) if !full => log,
            _ => self.seen_order.iter().map(|Reverse(x)| *x).collect(),
        };
        LayerHead {
            full,
            pairs: changes.pairs as u64,
            engine: EngineHead {
                cfg: self.cfg,
                names: self.names.clone(),
                pending: self.pending.iter().map(|(k, v)| (*k, v.clone())).collect(),
                imp_max: self.imp_max,
                play_max: self.play_max,
            },
            removed: changes.removed,
            swept: changes.swept,
            seen,
        }
    }

    /// Copies about `work` more pairs of the layer begun by [`Self::begin_layer`] (one unit of
    /// work is one pair copied, or a stretch of unchanged pairs skipped); true when all are copied
    /// or no layer is being taken.
    pub fn continue_layer(&mut self, work: usize) -> bool {
        self.keys.step_changes(work)
    }

    /// The pairs of the layer begun by [`Self::begin_layer`], copying what is left (None when no
    /// layer is being taken).
    pub fn finish_layer(&mut self) -> Option<ChangedPairs> {
        self.keys.finish_changes()
    }

    /// Whether a layer begun by [`Self::begin_layer`] is still being taken.
    pub fn layer_in_progress(&self) -> bool {
        self.keys.taking()
    }

    /// Drops the layer being taken (its changes are then missing from the chain of layers: the
    /// next layer must be full).
    pub fn abandon_layer(&mut self) {
        self.keys.abandon_changes();
    }

    /// The engine a full layer describes: its head (from [`LayerHead::merge`], or a full layer's
    /// own) and its pairs. Checkpoints taken from it are relative to this state.
    pub fn from_layer(head: LayerHead, pairs: impl Iterator<Item = Pair>) -> Engine {
        let EngineHead {
            cfg,
            names,
            pending,
            imp_max,
            play_max,
        } = head.engine;
        let mut keys = KeyStore::default();
        // A hint, so cap it: a damaged head must not ask for terabytes.
        keys.reserve(usize::try_from(head.pairs).unwrap_or(0).min(1 << 28));
        let mut last: Option<Key> = None;
        for (key, list) in pairs {
            // Sorted without repeats, as layers are: no lookup needed; otherwise merge.
            if last.is_none_or(|l| l < key) {
                keys.restore_new(key, list);
                last = Some(key);
            } else {
                keys.restore(key, list);
            }
        }
        let mut pending_order = BinaryHeap::new();
        for (key, plays) in &pending {
            for p in plays {
                pending_order.push(Reverse((p.play.ts.0, *key)));
            }
        }
        let pending: FxHashMap<Key, SmallVec<[Pending; 1]>> = pending.into_iter().collect();
        let mut seen_plays = FxHashSet::default();
        let mut seen_order = BinaryHeap::new();
        for (ts, id) in head.seen {
            if seen_plays.insert(id) {
                seen_order.push(Reverse((ts, id)));
            }
        }
        let mut engine = Engine {
            cfg,
            names,
            keys,
            pending,
            pending_order,
            seen_plays,
            seen_order,
            imp_max,
            play_max,
            seen_log: Some(Vec::new()),
        };
        if let Some(frontier) = engine.plays_watermark() {
            engine.forget_seen_before(frontier);
        }
        engine
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
