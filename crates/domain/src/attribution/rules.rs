//! The rules of docs/reference.md §3 over a pair's impressions, sorted by (`ts`, `event_id`).

use super::{AttributionConfig, ImpressionRecord};
use crate::time::Ts;

/// Source of Play: the greatest impression with `ts <= t` and `t - ts <= sop_window`.
pub fn source_of_play<'a>(
    sorted: &'a [ImpressionRecord],
    t: Ts,
    cfg: &AttributionConfig,
) -> Option<&'a ImpressionRecord> {
    let n = sorted.partition_point(|i| i.ts <= t);
    let last = sorted[..n].last()?;
    (t.0 - last.ts.0 <= cfg.sop_window_ms).then_some(last)
}

/// Source of Discovery: the least impression with `ts <= t` on or after the UTC day
/// `date(t) - sod_lookback_days`.
pub fn source_of_discovery<'a>(
    sorted: &'a [ImpressionRecord],
    t: Ts,
    cfg: &AttributionConfig,
) -> Option<&'a ImpressionRecord> {
    let first_day = t.day().plus(-cfg.sod_lookback_days);
    let k = sorted.partition_point(|i| i.ts.day() < first_day);
    sorted.get(k).filter(|i| i.ts <= t)
}

/// Whether `imp` would replace `current` as Source of Play of a play at `t`.
pub fn improves_sop(
    current: Option<&ImpressionRecord>,
    imp: &ImpressionRecord,
    t: Ts,
    cfg: &AttributionConfig,
) -> bool {
    imp.ts <= t && t.0 - imp.ts.0 <= cfg.sop_window_ms && current.is_none_or(|c| c.precedes(imp))
}

/// Whether `imp` would replace `current` as Source of Discovery of a play at `t`.
pub fn improves_sod(
    current: Option<&ImpressionRecord>,
    imp: &ImpressionRecord,
    t: Ts,
    cfg: &AttributionConfig,
) -> bool {
    imp.ts <= t
        && imp.ts.day() >= t.day().plus(-cfg.sod_lookback_days)
        && current.is_none_or(|c| imp.precedes(c))
}
