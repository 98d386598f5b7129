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
/// video). Any bad row fails the whole file, so nothing is half-loaded. Line endings may be LF or
/// CRLF, fields may be quoted (with line breaks inside), and a UTF-8 byte-order mark is skipped.
pub fn parse_csv(input: impl Read) -> Result<Vec<VideoMeta>, CsvError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(LineCounter::new(input));
    let headers = rdr
        .headers()
        .map_err(|e| CsvError {
            line: 1,
            column: "(header)",
            message: format!("cannot read the header ({})", clip(&e.to_string())),
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
                clip(&got.join(","))
            ),
        });
    }
    let mut out = Vec::new();
    let mut seen: FxHashMap<VideoId, u64> = FxHashMap::default();
    let mut rec = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut rec).map_err(|e| {
            let line = e.position().map_or(0, |p| rdr.get_mut().line_at(p.byte()));
            CsvError {
                line,
                column: "(row)",
                message: format!("is not valid CSV ({})", clip(&e.to_string())),
            }
        })?;
        if !more {
            break;
        }
        let line = rec
            .position()
            .map_or(0, |p| rdr.get_mut().line_at(p.byte()));
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
                    clip(field(0))
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
                format!("`{}` is not one of movie, episode, show", clip(field(3))),
            )
        })?;
        let launch_date = Day::parse(field(4)).map_err(|_| {
            err(
                "launch_date",
                format!("`{}` is not a date of the form YYYY-MM-DD", clip(field(4))),
            )
        })?;
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

/// Input quoted back in an error, cut to 64 characters.
fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
    }
}

/// A reader that remembers where its line breaks are, so an error can name the line a record
/// starts on. (The csv crate's own line count is one short after a CRLF: a record ends at the
/// `\r`, and the `\n` is only read with the next record.)
struct LineCounter<R> {
    inner: R,
    /// Bytes read so far.
    pos: u64,
    /// Offsets of the `\r` and `\n` bytes not yet passed (`true` for `\n`).
    breaks: std::collections::VecDeque<(u64, bool)>,
    /// `\n` bytes already passed.
    lines_before: u64,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            pos: 0,
            breaks: Default::default(),
            lines_before: 0,
        }
    }

    /// The 1-based line of the record that the reader positioned at `byte`: the line breaks
    /// before it, and the blank lines the reader skips there.
    fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&(at, lf)) = self.breaks.front() {
            if at >= byte {
                break;
            }
            self.lines_before += u64::from(lf);
            self.breaks.pop_front();
        }
        let skipped = self
            .breaks
            .iter()
            .zip(byte..)
            .take_while(|((at, _), want)| at == want)
            .filter(|((_, lf), _)| *lf)
            .count() as u64;
        1 + self.lines_before + skipped
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.breaks.push_back((self.pos + i as u64, b == b'\n'));
            }
        }
        self.pos += n as u64;
        Ok(n)
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
