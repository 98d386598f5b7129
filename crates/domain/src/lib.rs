//! The pure domain of playsource: the events of docs/reference.md §1, the catalog side input of §2, the
//! attribution rules of §3 (one engine, used incrementally by the stream and in bulk by the
//! batch layer) and the aggregation keys of §4. No I/O lives here.

pub mod aggregate;
pub mod attribution;
pub mod catalog;
pub mod catalog_csv;
pub mod enriched;
pub mod event;
pub mod ids;
pub mod time;
pub mod topic;

pub use attribution::{
    overlay, Attribution, AttributionConfig, ChangedPairs, Engine, ImpressionRecord, LayerHead,
    Output, Pair, PlayRecord, Verdict,
};
pub use catalog::{Catalog, CatalogVersion, Kind, VideoMeta};
pub use enriched::{EnrichedPlay, SourceImpression};
pub use event::{
    check_not_future, decode_impression, decode_play, Impression, Play, Rejection,
    DEFAULT_MAX_FUTURE_MS, SESSION_ID_MAX_BYTES, UNATTRIBUTED,
};
pub use ids::{EventKey, Interner, MemberId, Sym, VideoId};
pub use time::{Day, TimeError, Ts, DAY_MS, HOUR_MS};
pub use topic::{PerTopic, Topic};
