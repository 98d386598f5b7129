//! The catalog CSV format `playsource catalog load` reads (docs/reference.md §2), with its field limits.

use std::io::Read;

use rustc_hash::FxHashMap;

use crate::catalog::{Kind, VideoMeta};
use crate::ids::VideoId;
use crate::time::Day;

/// Longest `title` accepted, in bytes (UTF-8).
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest `genre` accepted, in bytes: genre is a dimension of the views' primary keys and a
/// query parameter of the HTTP API (at most 256 characters there).
pub const MAX_GENRE_BYTES: usize = 256;
/// The CSV header, in order.
pub const CSV_COLUMNS: [&str; 5] = ["video_id", "title", "genre", "kind", "launch_date"];

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
        if title.len() > MAX_TITLE_BYTES {
            return Err(err("title", too_long(title.len(), MAX_TITLE_BYTES)));
        }
        let genre = field(2);
        if genre.is_empty() {
            return Err(err("genre", "is empty".into()));
        }
        if genre.len() > MAX_GENRE_BYTES {
            return Err(err("genre", too_long(genre.len(), MAX_GENRE_BYTES)));
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

/// The message for a field longer than its limit.
fn too_long(len: usize, limit: usize) -> String {
    format!("is {len} bytes long, over the limit of {limit} bytes; shorten it")
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
