//! The catalog side input of contract §2: video metadata, `is_new_launch`, and the CSV format
//! `playsource catalog load` reads.

use std::io::Read;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::ids::VideoId;
use crate::time::Day;

/// Genre of a video missing from the catalog.
pub const UNKNOWN_GENRE: &str = "unknown";
/// A title is a new launch for this many days from its launch date.
pub const NEW_LAUNCH_DAYS: i32 = 28;
/// The CSV header, in order.
pub const CSV_COLUMNS: [&str; 5] = ["video_id", "title", "genre", "kind", "launch_date"];

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

/// An in-memory catalog.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    videos: FxHashMap<VideoId, VideoMeta>,
}

impl Catalog {
    /// A catalog of these entries (a later entry for the same id wins).
    pub fn new(entries: impl IntoIterator<Item = VideoMeta>) -> Catalog {
        Catalog {
            videos: entries.into_iter().map(|v| (v.video_id, v)).collect(),
        }
    }

    /// The entry of a video.
    pub fn get(&self, id: VideoId) -> Option<&VideoMeta> {
        self.videos.get(&id)
    }

    /// Genre and new-launch flag for a play of `id` on `play_day`.
    pub fn enrich(&self, id: VideoId, play_day: Day) -> Enrichment<'_> {
        enrich(self.get(id), play_day)
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &VideoMeta> {
        self.videos.values()
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

/// A catalog CSV that cannot be loaded: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column `{column}`: {message}")]
pub struct CsvError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// The column's name (or `(row)` for a row-level problem).
    pub column: &'static str,
    pub message: String,
}

/// Parses a whole catalog CSV (header `video_id,title,genre,kind,launch_date`, then one row per
/// video). Any bad row fails the whole file, so nothing is half-loaded.
pub fn parse_csv(input: impl Read) -> Result<Vec<VideoMeta>, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = rdr
        .headers()
        .map_err(|e| CsvError {
            line: 1,
            column: "(header)",
            message: format!("cannot read the header ({e})"),
        })?
        .clone();
    let got: Vec<&str> = headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    if got != CSV_COLUMNS {
        return Err(CsvError {
            line: 1,
            column: "(header)",
            message: format!(
                "the header must be `{}`, got `{}`",
                CSV_COLUMNS.join(","),
                got.join(",")
            ),
        });
    }
    let mut out = Vec::new();
    let mut seen: FxHashMap<VideoId, u64> = FxHashMap::default();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            CsvError {
                line,
                column: "(row)",
                message: format!("is not valid CSV ({e})"),
            }
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != CSV_COLUMNS.len() {
            return Err(CsvError {
                line,
                column: "(row)",
                message: format!("has {} fields, expected {}", rec.len(), CSV_COLUMNS.len()),
            });
        }
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        let err = |column: &'static str, message: String| CsvError {
            line,
            column,
            message,
        };
        let id: u64 = field(0).parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            err(
                "video_id",
                format!(
                    "`{}` is not an integer from 1 to 18446744073709551615",
                    field(0)
                ),
            )
        })?;
        let title = field(1);
        if title.is_empty() {
            return Err(err("title", "is empty".into()));
        }
        let genre = field(2);
        if genre.is_empty() {
            return Err(err("genre", "is empty".into()));
        }
        let kind = Kind::parse(field(3)).ok_or_else(|| {
            err(
                "kind",
                format!("`{}` is not one of movie, episode, show", field(3)),
            )
        })?;
        let launch_date = Day::parse(field(4)).map_err(|e| err("launch_date", e))?;
        if let Some(first) = seen.insert(VideoId(id), line) {
            return Err(err(
                "video_id",
                format!("video {id} appears twice (first on line {first})"),
            ));
        }
        out.push(VideoMeta {
            video_id: VideoId(id),
            title: title.into(),
            genre: genre.into(),
            kind,
            launch_date,
        });
    }
    Ok(out)
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
        let e = c.enrich(VideoId(9), day("2026-11-01"));
        assert_eq!((e.genre, e.is_new_launch), ("unknown", false));
    }

    #[test]
    fn parses_a_good_csv_with_quotes() {
        let csv = "video_id,title,genre,kind,launch_date\n1,\"Stranger, Things\",drama,show,2016-07-15\n2,Glass Onion,comedy,movie,2022-12-23\n";
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].title, "Stranger, Things");
        let c = Catalog::new(rows);
        assert!(c.enrich(VideoId(2), day("2022-12-23")).is_new_launch);
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
        ];
        for (row, column) in cases {
            let err = parse_csv(format!("{head}{row}").as_bytes()).unwrap_err();
            assert_eq!((err.line, err.column), (3, column), "{row}: {err}");
        }
        let err = parse_csv("id,title\n1,A\n".as_bytes()).unwrap_err();
        assert_eq!((err.line, err.column), (1, "(header)"));
    }
}
