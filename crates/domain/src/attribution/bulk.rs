//! Attribution of a whole batch at once (the batch layer's path): every impression first, then
//! every play, through the same [`KeyImpressions`] and rules as the incremental engine.

use rustc_hash::{FxHashMap, FxHashSet};

use super::{Attribution, AttributionConfig, ImpressionRecord, KeyImpressions, PlayRecord};
use crate::event::{Impression, Play};
use crate::ids::{EventKey, Interner};

/// Accumulates impressions, then attributes plays against all of them.
#[derive(Debug, Default)]
pub struct Bulk {
    cfg: AttributionConfig,
    names: Interner,
    keys: FxHashMap<(u64, u64), KeyImpressions>,
    seen_plays: FxHashSet<u128>,
}

impl Bulk {
    /// An empty batch.
    pub fn new(cfg: AttributionConfig) -> Bulk {
        Bulk {
            cfg,
            ..Bulk::default()
        }
    }

    /// Adds an impression (repeats of an event count once).
    pub fn add_impression(&mut self, imp: &Impression<'_>) {
        let rec = ImpressionRecord::of(imp, &mut self.names);
        self.keys
            .entry((imp.member_id.0, imp.video_id.0))
            .or_default()
            .insert(rec);
    }

    /// Attributes a play against every impression added; `None` for a repeat of a play.
    pub fn attribute(&mut self, play: &Play<'_>) -> Option<(PlayRecord, Attribution)> {
        if !self.seen_plays.insert(EventKey::hash128(&play.event_id)) {
            return None;
        }
        let attribution = self
            .keys
            .get(&(play.member_id.0, play.video_id.0))
            .map(|k| k.attribute(play.ts, &self.cfg))
            .unwrap_or_default();
        let record = PlayRecord::of(play, &mut self.names);
        Some((record, attribution))
    }

    /// The names behind the symbols in results.
    pub fn names(&self) -> &Interner {
        &self.names
    }

    /// (member, video) pairs held.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }
}
