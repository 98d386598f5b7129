//! The enriched play: a counted play with its two sources and the video's metadata. The stream
//! publishes it to `enriched-plays` (JSON, re-published with a higher `revision` when corrected);
//! the batch layer writes the day's final ones as the Parquet training set.

use serde::{Deserialize, Serialize};

use crate::attribution::{Attribution, ImpressionRecord, PlayRecord};
use crate::catalog::{enrich, VideoMeta};
use crate::event::UNATTRIBUTED;
use crate::ids::Interner;

/// The impression a source points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceImpression {
    pub event_id: String,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub row_type: String,
    pub row_index: u16,
    pub rank: u16,
}

/// A play with both sources and the catalog's view of its video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichedPlay {
    pub event_id: String,
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    pub member_id: u64,
    pub video_id: u64,
    pub country: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// 0 when first published; each correction adds one.
    pub revision: u32,
    /// `unattributed` when no impression qualifies.
    pub sop_row: String,
    pub sod_row: String,
    pub sop: Option<SourceImpression>,
    pub sod: Option<SourceImpression>,
    pub title: Option<String>,
    /// `unknown` when the video is not in the catalog.
    pub genre: String,
    pub kind: Option<String>,
    /// `YYYY-MM-DD`.
    pub launch_date: Option<String>,
    pub is_new_launch: bool,
}

impl EnrichedPlay {
    /// Builds the enriched play; `names` is the interner of the engine (or bulk run) that
    /// produced `play` and `att`.
    pub fn new(
        names: &Interner,
        play: &PlayRecord,
        att: &Attribution,
        revision: u32,
        meta: Option<&VideoMeta>,
    ) -> EnrichedPlay {
        let src = |i: &ImpressionRecord| SourceImpression {
            event_id: i.event_id.to_string(),
            ts: i.ts.to_string(),
            row_type: names.resolve(i.row_type).to_owned(),
            row_index: i.row_index,
            rank: i.rank,
        };
        let e = enrich(meta, play.ts.day());
        EnrichedPlay {
            event_id: play.event_id.to_string(),
            ts: play.ts.to_string(),
            member_id: play.member_id.0,
            video_id: play.video_id.0,
            country: names.resolve(play.country).to_owned(),
            device: names.resolve(play.device).to_owned(),
            session_id: play.session_id.as_deref().map(str::to_owned),
            revision,
            sop_row: att.sop.as_ref().map_or(UNATTRIBUTED.to_owned(), |i| {
                names.resolve(i.row_type).to_owned()
            }),
            sod_row: att.sod.as_ref().map_or(UNATTRIBUTED.to_owned(), |i| {
                names.resolve(i.row_type).to_owned()
            }),
            sop: att.sop.as_ref().map(src),
            sod: att.sod.as_ref().map(src),
            title: meta.map(|m| m.title.clone()),
            genre: e.genre.to_owned(),
            kind: meta.map(|m| m.kind.as_str().to_owned()),
            launch_date: meta.map(|m| m.launch_date.to_string()),
            is_new_launch: e.is_new_launch,
        }
    }
}
