//! Attribution (docs/reference.md §3): for each play, its Source of Play and Source of Discovery.
//!
//! One set of rules, [`rules`], decides both sources from a member-video pair's impressions. The
//! streaming layer drives it through [`Engine`], event by event in event time; the batch layer
//! through [`bulk::Bulk`], a day at a time. Both keep impressions in the same
//! [`KeyImpressions`] list; the engine stores it packed between events (`key_store`, `packed`).

pub mod bulk;
mod engine;
mod key_state;
mod key_store;
mod packed;
pub mod reference;
pub mod rules;

use serde::{Deserialize, Serialize};

pub use engine::{overlay, Engine, LayerHead, Pair, StateStats, Verdict};
pub use key_state::KeyImpressions;
pub use key_store::ChangedPairs;

use crate::event::{Impression, Play};
use crate::ids::{EventKey, Interner, MemberId, Sym, VideoId};
use crate::time::Ts;

/// The knobs of the rules and of the stream's event-time handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionConfig {
    /// Source of Play looks back this far from the play (default 30 min).
    pub sop_window_ms: i64,
    /// Source of Discovery looks back this many whole UTC days (default 7).
    pub sod_lookback_days: i32,
    /// An event more than this behind the greatest `ts` before it in its topic-partition is too
    /// late (default 5 min).
    pub allowed_lateness_ms: i64,
    /// Plays with the same event_id are de-duplicated for this long in event time (default 24 h).
    pub dedup_horizon_ms: i64,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            sop_window_ms: 30 * 60 * 1000,
            sod_lookback_days: 7,
            allowed_lateness_ms: 5 * 60 * 1000,
            dedup_horizon_ms: 24 * 3600 * 1000,
        }
    }
}

impl AttributionConfig {
    /// The instants whose impressions a play of `day` can use: from the earlier of the SoD
    /// lookback's first day and the SoP window before the day's start, to the day's end
    /// (batch reads these impressions; audit counts too-late impressions over them).
    pub fn impression_range(&self, day: crate::Day) -> std::ops::Range<crate::Ts> {
        let sod_first = day.plus(-self.sod_lookback_days).start();
        let sop_first = day.start().minus(self.sop_window_ms);
        sod_first.min(sop_first)..day.plus(1).start()
    }
}

/// What attribution keeps of an impression: enough to order candidates and to describe the
/// source in enriched output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpressionRecord {
    pub ts: Ts,
    pub event_id: EventKey,
    /// Interned in the owning engine's [`crate::Interner`].
    pub row_type: Sym,
    pub row_index: u16,
    pub rank: u16,
}

impl ImpressionRecord {
    /// What attribution keeps of `imp`, its row type interned in `names`.
    pub fn of(imp: &Impression<'_>, names: &mut Interner) -> ImpressionRecord {
        ImpressionRecord {
            ts: imp.ts,
            event_id: EventKey::new(&imp.event_id),
            row_type: names.intern(&imp.row_type),
            row_index: imp.row_index,
            rank: imp.rank,
        }
    }

    /// The (`ts`, `event_id`) order of docs/reference.md §3.
    pub fn precedes(&self, other: &ImpressionRecord) -> bool {
        (self.ts, &self.event_id) < (other.ts, &other.event_id)
    }
}

/// What attribution keeps of a play.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayRecord {
    pub event_id: EventKey,
    pub ts: Ts,
    pub member_id: MemberId,
    pub video_id: VideoId,
    /// Interned in the owning engine's [`crate::Interner`].
    pub country: Sym,
    pub device: Sym,
    pub session_id: Option<Box<str>>,
    /// The genre (interned) and new-launch flag the play was first counted under, when the caller
    /// gave them ([`Engine::on_play_counted_as`]); corrections reuse them so that a retraction
    /// always takes back exactly what was added, even if the catalog changed in between.
    #[serde(default)]
    pub counted_as: Option<(Sym, bool)>,
}

impl PlayRecord {
    /// What attribution keeps of `play`, its country and device interned in `names`.
    pub fn of(play: &Play<'_>, names: &mut Interner) -> PlayRecord {
        PlayRecord {
            event_id: EventKey::new(&play.event_id),
            ts: play.ts,
            member_id: play.member_id,
            video_id: play.video_id,
            country: names.intern(&play.country),
            device: names.intern(&play.device),
            session_id: play.session_id.as_deref().map(Into::into),
            counted_as: None,
        }
    }
}

/// A play's two sources; `None` is `unattributed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub sop: Option<ImpressionRecord>,
    pub sod: Option<ImpressionRecord>,
}

/// One result of the incremental engine: a play's attribution, first (`revision` 0,
/// `previous` None) or corrected by an impression that arrived after the play (`previous` is
/// what to retract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub play: PlayRecord,
    pub revision: u32,
    pub previous: Option<Attribution>,
    pub current: Attribution,
}
