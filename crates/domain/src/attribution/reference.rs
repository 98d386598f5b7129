//! A deliberately naive reading of docs/reference.md §3 and §4, for tests and audits: every play is
//! compared with every impression of its member and video. Quadratic per pair and kept simple
//! on purpose; the engines are checked against it.

use rustc_hash::{FxHashMap, FxHashSet};

use super::AttributionConfig;
use crate::aggregate::{Counts, PlayFacts};
use crate::catalog::Catalog;
use crate::event::{Impression, Play, UNATTRIBUTED};

/// The row types of a play's two sources (`unattributed` when none).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NaiveAttribution {
    pub play_event_id: String,
    pub sop_row: String,
    pub sop_event_id: Option<String>,
    pub sod_row: String,
    pub sod_event_id: Option<String>,
}

/// Attributes every play (repeats of a play event_id count once, the first wins) against every
/// impression (repeats of an impression event_id count once), sorted by play event_id.
pub fn attribute(
    cfg: &AttributionConfig,
    impressions: &[Impression<'_>],
    plays: &[Play<'_>],
) -> Vec<NaiveAttribution> {
    let mut by_key: FxHashMap<(u64, u64), Vec<&Impression<'_>>> = FxHashMap::default();
    let mut seen_imp = FxHashSet::default();
    for i in impressions {
        if seen_imp.insert(i.event_id.as_ref()) {
            by_key
                .entry((i.member_id.0, i.video_id.0))
                .or_default()
                .push(i);
        }
    }
    let mut seen_play = FxHashSet::default();
    let mut out = Vec::new();
    for p in plays {
        if !seen_play.insert(p.event_id.as_ref()) {
            continue;
        }
        let t = p.ts;
        let first_day = t.day().plus(-cfg.sod_lookback_days);
        let candidates: Vec<&Impression<'_>> = by_key
            .get(&(p.member_id.0, p.video_id.0))
            .map(|v| v.iter().copied().filter(|i| i.ts <= t).collect())
            .unwrap_or_default();
        let sop = candidates
            .iter()
            .filter(|i| t.0 - i.ts.0 <= cfg.sop_window_ms)
            .max_by_key(|i| (i.ts, i.event_id.to_string()));
        let sod = candidates
            .iter()
            .filter(|i| i.ts.day() >= first_day)
            .min_by_key(|i| (i.ts, i.event_id.to_string()));
        out.push(NaiveAttribution {
            play_event_id: p.event_id.to_string(),
            sop_row: sop.map_or(UNATTRIBUTED.to_owned(), |i| i.row_type.to_string()),
            sop_event_id: sop.map(|i| i.event_id.to_string()),
            sod_row: sod.map_or(UNATTRIBUTED.to_owned(), |i| i.row_type.to_string()),
            sod_event_id: sod.map(|i| i.event_id.to_string()),
        });
    }
    out.sort();
    out
}

/// The docs/reference.md §4 views of these events: every (de-duplicated) play counted once.
pub fn counts(
    cfg: &AttributionConfig,
    impressions: &[Impression<'_>],
    plays: &[Play<'_>],
    catalog: &Catalog,
) -> Counts {
    let by_id: FxHashMap<&str, &Play<'_>> = plays
        .iter()
        .rev()
        .map(|p| (p.event_id.as_ref(), p))
        .collect();
    let mut c = Counts::default();
    for a in attribute(cfg, impressions, plays) {
        let Some(p) = by_id.get(a.play_event_id.as_str()) else {
            continue;
        };
        let e = catalog.enrich(p.video_id, p.ts);
        let facts = PlayFacts {
            ts: p.ts,
            video_id: p.video_id,
            country: &p.country,
            device: &p.device,
            sop_row: &a.sop_row,
            sod_row: &a.sod_row,
            genre: e.genre,
            new_launch: e.is_new_launch,
        };
        c.add(&facts, 1);
    }
    c
}
