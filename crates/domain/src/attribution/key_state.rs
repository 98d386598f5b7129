//! The impressions kept for one (member, video) pair.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{rules, Attribution, AttributionConfig, ImpressionRecord};
use crate::time::{Day, Ts};

/// A pair's impressions, sorted by (`ts`, `event_id`) without repeats. Most pairs have one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyImpressions {
    sorted: SmallVec<[ImpressionRecord; 1]>,
}

impl KeyImpressions {
    /// Adds an impression; a repeat of one already kept changes nothing.
    pub fn insert(&mut self, imp: ImpressionRecord) {
        let at = self.sorted.partition_point(|i| i.precedes(&imp));
        if self
            .sorted
            .get(at)
            .is_some_and(|i| i.ts == imp.ts && i.event_id == imp.event_id)
        {
            return;
        }
        self.sorted.insert(at, imp);
    }

    /// Both sources of a play at `t`.
    pub fn attribute(&self, t: Ts, cfg: &AttributionConfig) -> Attribution {
        Attribution {
            sop: rules::source_of_play(&self.sorted, t, cfg).cloned(),
            sod: rules::source_of_discovery(&self.sorted, t, cfg).cloned(),
        }
    }

    /// Drops what no play at or after `frontier` can use: of the impressions at or before the
    /// frontier only the greatest (while it is inside the SoP window) and the first of each UTC
    /// day inside the SoD lookback stay; later impressions all stay.
    pub fn compact(&mut self, frontier: Ts, cfg: &AttributionConfig) {
        let before = self.sorted.partition_point(|i| i.ts <= frontier);
        if before == 0 {
            return;
        }
        let first_day = frontier.day().plus(-cfg.sod_lookback_days);
        let mut keep = SmallVec::<[ImpressionRecord; 1]>::new();
        let mut last_day: Option<Day> = None;
        for (idx, imp) in self.sorted.drain(..).enumerate() {
            let day = imp.ts.day();
            let first_of_day = last_day != Some(day);
            last_day = Some(day);
            let useful = idx >= before
                || (idx + 1 == before && frontier.0 - imp.ts.0 <= cfg.sop_window_ms)
                || (first_of_day && day >= first_day);
            if useful {
                keep.push(imp);
            }
        }
        self.sorted = keep;
    }

    /// The frontier from which [`Self::compact`] leaves nothing: the start of the UTC day after
    /// the last lookback day of the newest impression (or later, if its SoP window reaches further).
    pub fn expires_at(&self, cfg: &AttributionConfig) -> Option<Ts> {
        self.sorted
            .last()
            .map(|last| expiry_of_newest(last.ts, cfg))
    }

    /// A list of impressions already sorted by (`ts`, `event_id`) without repeats.
    pub(crate) fn from_sorted(sorted: SmallVec<[ImpressionRecord; 1]>) -> KeyImpressions {
        debug_assert!(sorted.windows(2).all(|w| w[0].precedes(&w[1])));
        KeyImpressions { sorted }
    }

    /// The impressions, sorted, by value.
    pub(crate) fn into_sorted(self) -> SmallVec<[ImpressionRecord; 1]> {
        self.sorted
    }

    /// The impressions, sorted.
    pub fn as_slice(&self) -> &[ImpressionRecord] {
        &self.sorted
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Heap bytes beyond the inline slot.
    pub fn heap_bytes(&self) -> usize {
        let spilled = if self.sorted.spilled() {
            self.sorted.capacity() * std::mem::size_of::<ImpressionRecord>()
        } else {
            0
        };
        spilled
            + self
                .sorted
                .iter()
                .map(|i| i.event_id.heap_bytes())
                .sum::<usize>()
    }
}

/// [`KeyImpressions::expires_at`] of a list whose newest impression is at `newest`.
pub(crate) fn expiry_of_newest(newest: Ts, cfg: &AttributionConfig) -> Ts {
    let sod_end = newest.day().plus(cfg.sod_lookback_days + 1).start();
    sod_end.max(Ts(newest.0.saturating_add(cfg.sop_window_ms + 1)))
}
