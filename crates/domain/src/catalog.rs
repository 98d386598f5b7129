//! The catalog side input of docs/reference.md §2: video metadata, `is_new_launch`, and the temporal
//! catalog (every version loaded, looked up by a play's ts). The CSV format is in
//! [`crate::catalog_csv`].

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::ids::VideoId;
use crate::time::{Day, Ts};

pub use crate::catalog_csv::{parse_csv, CsvError, CSV_COLUMNS, MAX_GENRE_BYTES, MAX_TITLE_BYTES};

/// Genre of a video missing from the catalog.
pub const UNKNOWN_GENRE: &str = "unknown";
/// A title is a new launch for this many days from its launch date.
pub const NEW_LAUNCH_DAYS: i32 = 28;

/// What a video is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Movie,
    Episode,
    Show,
}

impl Kind {
    /// Parses `movie`, `episode` or `show`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "movie" => Some(Kind::Movie),
            "episode" => Some(Kind::Episode),
            "show" => Some(Kind::Show),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Movie => "movie",
            Kind::Episode => "episode",
            Kind::Show => "show",
        }
    }
}

/// One catalog entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoMeta {
    pub video_id: VideoId,
    pub title: String,
    pub genre: String,
    pub kind: Kind,
    pub launch_date: Day,
}

impl VideoMeta {
    /// Whether a play on `play_day` is within the title's launch window.
    pub fn is_new_launch(&self, play_day: Day) -> bool {
        is_new_launch(self.launch_date, play_day)
    }
}

/// `launch_date <= play_day < launch_date + 28 days`.
pub fn is_new_launch(launch_date: Day, play_day: Day) -> bool {
    launch_date <= play_day && play_day < launch_date.plus(NEW_LAUNCH_DAYS)
}

/// What a play gets from the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enrichment<'a> {
    /// The video's metadata, if the catalog has it.
    pub meta: Option<&'a VideoMeta>,
    /// The genre, `unknown` when the video is missing.
    pub genre: &'a str,
    /// `false` when the video is missing.
    pub is_new_launch: bool,
}

/// Where a catalog version starts to apply: an instant, or (`None`) the beginning of time.
pub type EffectiveFrom = Option<Ts>;

/// One recorded `catalog load`: the videos it changed apply from `effective_from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogVersion {
    /// Increasing with each load (breaks ties between versions effective at the same instant:
    /// the later load wins).
    pub version: i64,
    /// `None` for the first version ever loaded: it applies from the beginning of time.
    pub effective_from: EffectiveFrom,
    /// When it was loaded (wall clock); later than `effective_from` for a retroactive load.
    pub loaded_at: Ts,
    /// Videos whose values this version changed (or added).
    pub videos: u64,
}

impl CatalogVersion {
    /// The start as a sortable instant (`i64::MIN` for the beginning of time).
    pub fn from_ms(&self) -> i64 {
        self.effective_from.map_or(i64::MIN, |t| t.0)
    }
}

/// One video's values as one version set them.
#[derive(Clone, Debug)]
struct Dated {
    from: i64,
    version: i64,
    meta: VideoMeta,
}

/// The temporal catalog: every version ever loaded, each video's values by the instant they
/// apply from. A load upserts: videos it does not name keep their values.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Per video, its values in effect order (`from`, then `version`).
    videos: FxHashMap<VideoId, Vec<Dated>>,
    /// Every version, in effect order.
    versions: Vec<CatalogVersion>,
}

impl Catalog {
    /// A catalog of one version, in effect from the beginning of time (a later entry for the same
    /// id wins).
    pub fn new(entries: impl IntoIterator<Item = VideoMeta>) -> Catalog {
        let mut c = Catalog::default();
        c.push_version(None, Ts(0), entries);
        c
    }

    /// A catalog from stored history: the versions, and each version's changed videos as
    /// `(version, values)`. Entries of a version not listed are ignored.
    pub fn from_history(
        versions: impl IntoIterator<Item = CatalogVersion>,
        entries: impl IntoIterator<Item = (i64, VideoMeta)>,
    ) -> Catalog {
        let mut versions: Vec<CatalogVersion> = versions.into_iter().collect();
        versions.sort_by_key(|v| (v.from_ms(), v.version));
        let from: FxHashMap<i64, i64> = versions.iter().map(|v| (v.version, v.from_ms())).collect();
        let mut videos: FxHashMap<VideoId, Vec<Dated>> = FxHashMap::default();
        for (version, meta) in entries {
            if let Some(&from) = from.get(&version) {
                videos.entry(meta.video_id).or_default().push(Dated {
                    from,
                    version,
                    meta,
                });
            }
        }
        for list in videos.values_mut() {
            list.sort_by_key(|d| (d.from, d.version));
        }
        Catalog { videos, versions }
    }

    /// Records a new version (numbered after the greatest so far) that sets these videos from
    /// `effective_from` on; returns its number.
    pub fn push_version(
        &mut self,
        effective_from: EffectiveFrom,
        loaded_at: Ts,
        entries: impl IntoIterator<Item = VideoMeta>,
    ) -> i64 {
        let version = self.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let from = effective_from.map_or(i64::MIN, |t| t.0);
        let mut n = 0;
        for meta in entries {
            n += 1;
            let list = self.videos.entry(meta.video_id).or_default();
            list.retain(|d| d.version != version);
            list.push(Dated {
                from,
                version,
                meta,
            });
            list.sort_by_key(|d| (d.from, d.version));
        }
        self.versions.push(CatalogVersion {
            version,
            effective_from,
            loaded_at,
            videos: n,
        });
        self.versions.sort_by_key(|v| (v.from_ms(), v.version));
        version
    }

    /// The values of video `id` in effect at `ts`: those of the latest version (in effect order)
    /// that set the video and is effective at or before `ts`. This is the one temporal lookup the
    /// stream, the batch, enriched plays and corrections all use (`FOR SYSTEM_TIME AS OF ts`).
    pub fn at(&self, id: VideoId, ts: Ts) -> Option<&VideoMeta> {
        let list = self.videos.get(&id)?;
        let n = list.partition_point(|d| d.from <= ts.0);
        n.checked_sub(1).map(|i| &list[i].meta)
    }

    /// Genre and new-launch flag for a play of `id` at `ts`, from the version in effect at `ts`.
    pub fn enrich(&self, id: VideoId, ts: Ts) -> Enrichment<'_> {
        enrich(self.at(id, ts), ts.day())
    }

    /// The version that set the values of `id` in effect at `ts`, if any.
    pub fn version_of(&self, id: VideoId, ts: Ts) -> Option<i64> {
        let list = self.videos.get(&id)?;
        let n = list.partition_point(|d| d.from <= ts.0);
        n.checked_sub(1).map(|i| list[i].version)
    }

    /// The rows of `entries` that differ from the values in effect at `effective_from` (new
    /// videos included): what a load effective then changes. Empty when the file is identical
    /// to the catalog in effect.
    pub fn changes<'e>(
        &self,
        effective_from: EffectiveFrom,
        entries: &'e [VideoMeta],
    ) -> Vec<&'e VideoMeta> {
        let at = Ts(effective_from.map_or(i64::MIN, |t| t.0));
        entries
            .iter()
            .filter(|v| self.at(v.video_id, at) != Some(*v))
            .collect()
    }

    /// Every version, in effect order (by `effective_from`, then by number).
    pub fn versions(&self) -> &[CatalogVersion] {
        &self.versions
    }

    /// Versions that start strictly inside `range` (the instants where enrichment changes).
    pub fn changes_within(
        &self,
        range: std::ops::Range<Ts>,
    ) -> impl Iterator<Item = &CatalogVersion> {
        self.versions
            .iter()
            .filter(move |v| v.effective_from.is_some_and(|t| range.contains(&t)))
    }

    /// Number of videos any version names.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether no version names any video.
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// Each video's values in effect at `ts` (videos not yet loaded then are left out), in no
    /// particular order.
    pub fn snapshot_at(&self, ts: Ts) -> impl Iterator<Item = &VideoMeta> {
        self.videos.keys().filter_map(move |&id| self.at(id, ts))
    }

    /// Every value any version set for `id`, in effect order, with its version.
    pub fn history(&self, id: VideoId) -> impl Iterator<Item = (i64, &VideoMeta)> {
        self.videos
            .get(&id)
            .into_iter()
            .flatten()
            .map(|d| (d.version, &d.meta))
    }
}

/// Genre and new-launch flag for a play of a video with this metadata (or none) on `play_day`.
pub fn enrich(meta: Option<&VideoMeta>, play_day: Day) -> Enrichment<'_> {
    match meta {
        Some(m) => Enrichment {
            meta: Some(m),
            genre: &m.genre,
            is_new_launch: m.is_new_launch(play_day),
        },
        None => Enrichment {
            meta: None,
            genre: UNKNOWN_GENRE,
            is_new_launch: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    #[test]
    fn new_launch_window_edges() {
        let l = day("2026-11-01");
        assert!(!is_new_launch(l, day("2026-10-31")));
        assert!(is_new_launch(l, day("2026-11-01")));
        assert!(is_new_launch(l, day("2026-11-28")));
        assert!(!is_new_launch(l, day("2026-11-29")));
    }

    #[test]
    fn missing_video_is_unknown_and_not_new() {
        let c = Catalog::default();
        let e = c.enrich(VideoId(9), day("2026-11-01").start());
        assert_eq!((e.genre, e.is_new_launch), ("unknown", false));
    }

    #[test]
    fn parses_a_good_csv_with_quotes() {
        let csv = "video_id,title,genre,kind,launch_date\n1,\"Stranger, Things\",drama,show,2016-07-15\n2,Glass Onion,comedy,movie,2022-12-23\n";
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].title, "Stranger, Things");
        let c = Catalog::new(rows);
        assert!(
            c.enrich(VideoId(2), day("2022-12-23").start())
                .is_new_launch
        );
    }

    #[test]
    fn bad_rows_name_line_and_column() {
        let head = "video_id,title,genre,kind,launch_date\n1,A,drama,show,2016-07-15\n";
        let cases = [
            ("0,B,drama,show,2016-07-15\n", "video_id"),
            ("x,B,drama,show,2016-07-15\n", "video_id"),
            ("1,B,drama,show,2016-07-15\n", "video_id"),
            ("2,,drama,show,2016-07-15\n", "title"),
            ("2,B,,show,2016-07-15\n", "genre"),
            ("2,B,drama,film,2016-07-15\n", "kind"),
            ("2,B,drama,show,2016-02-30\n", "launch_date"),
            ("2,B,drama,show\n", "(row)"),
            (
                &format!("2,{},drama,show,2016-07-15\n", "t".repeat(1025)),
                "title",
            ),
            (
                &format!("2,B,{},show,2016-07-15\n", "g".repeat(257)),
                "genre",
            ),
        ];
        for (row, column) in cases {
            let err = parse_csv(format!("{head}{row}").as_bytes()).unwrap_err();
            assert_eq!((err.line, err.column), (3, column), "{row}: {err}");
        }
        let err = parse_csv("id,title\n1,A\n".as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), (1, "(header)"));
    }

    fn meta(id: u64, genre: &str, launch: &str) -> VideoMeta {
        VideoMeta {
            video_id: VideoId(id),
            title: format!("t{id}"),
            genre: genre.into(),
            kind: Kind::Movie,
            launch_date: day(launch),
        }
    }

    #[test]
    fn a_play_takes_the_version_in_effect_at_its_ts() {
        let mut c = Catalog::new([
            meta(1, "drama", "2026-01-01"),
            meta(2, "comedy", "2026-01-01"),
        ]);
        let t = day("2026-11-01").start();
        // Version 2 from t: video 1 changes genre, video 3 is new; video 2 keeps version 1.
        c.push_version(
            Some(t),
            t,
            [
                meta(1, "horror", "2026-10-30"),
                meta(3, "kids", "2026-01-01"),
            ],
        );
        let before = t.minus(1);
        assert_eq!(c.enrich(VideoId(1), before).genre, "drama");
        assert!(!c.enrich(VideoId(1), before).is_new_launch);
        assert_eq!(c.enrich(VideoId(1), t).genre, "horror");
        assert!(c.enrich(VideoId(1), t).is_new_launch);
        assert_eq!(c.enrich(VideoId(2), t).genre, "comedy");
        assert_eq!(c.enrich(VideoId(3), before).genre, UNKNOWN_GENRE);
        assert_eq!(c.enrich(VideoId(3), t).genre, "kids");
        // The first version applies from the beginning of time.
        assert_eq!(c.enrich(VideoId(1), Ts(i64::MIN)).genre, "drama");
        // A later load effective at the same instant wins; an earlier-effective one loaded later
        // applies only until the next version of that video.
        c.push_version(Some(t), t, [meta(1, "thriller", "2026-10-30")]);
        c.push_version(Some(before), t, [meta(1, "western", "2026-10-30")]);
        assert_eq!(c.enrich(VideoId(1), t).genre, "thriller");
        assert_eq!(c.enrich(VideoId(1), before).genre, "western");
        assert_eq!(
            c.versions().iter().map(|v| v.version).collect::<Vec<_>>(),
            [1, 4, 2, 3]
        );
    }

    #[test]
    fn changes_leave_out_rows_equal_to_the_version_in_effect() {
        let mut c = Catalog::new([meta(1, "drama", "2026-01-01")]);
        let t = day("2026-11-01").start();
        c.push_version(Some(t), t, [meta(1, "horror", "2026-01-01")]);
        let same_as_v1 = [meta(1, "drama", "2026-01-01")];
        assert!(c.changes(Some(t.minus(1)), &same_as_v1).is_empty());
        assert_eq!(c.changes(Some(t), &same_as_v1).len(), 1);
        assert!(c
            .changes(Some(t), &[meta(1, "horror", "2026-01-01")])
            .is_empty());
        assert_eq!(c.changes(Some(t), &[meta(2, "new", "2026-01-01")]).len(), 1);
    }

    #[test]
    fn history_rebuilds_the_same_lookup() {
        let t = day("2026-11-01").start();
        let versions = [
            CatalogVersion {
                version: 2,
                effective_from: Some(t),
                loaded_at: t,
                videos: 1,
            },
            CatalogVersion {
                version: 1,
                effective_from: None,
                loaded_at: t,
                videos: 1,
            },
        ];
        let c = Catalog::from_history(
            versions,
            [
                (2, meta(1, "horror", "2026-01-01")),
                (1, meta(1, "drama", "2026-01-01")),
            ],
        );
        assert_eq!(c.enrich(VideoId(1), t.minus(1)).genre, "drama");
        assert_eq!(c.enrich(VideoId(1), t).genre, "horror");
        assert_eq!(c.version_of(VideoId(1), t), Some(2));
    }
}
