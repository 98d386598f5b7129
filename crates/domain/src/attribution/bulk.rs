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
        let rec = ImpressionRecord {
            ts: imp.ts,
            event_id: EventKey::new(&imp.event_id),
            row_type: self.names.intern(&imp.row_type),
            row_index: imp.row_index,
            rank: imp.rank,
        };
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
        let record = PlayRecord {
            event_id: EventKey::new(&play.event_id),
            ts: play.ts,
            member_id: play.member_id,
            video_id: play.video_id,
            country: self.names.intern(&play.country),
            device: self.names.intern(&play.device),
            session_id: play.session_id.as_deref().map(Into::into),
        };
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
