//! Query-string parsing and validation for the API (docs/reference.md §7).
//!
//! Every parameter is checked strictly: a duplicated, empty, unknown or malformed parameter is a
//! 400 with a sentence naming it, never a silent default.

use playsource_domain::event::{is_country, is_token};
use playsource_domain::{Ts, DAY_MS, HOUR_MS};

use crate::error::{clip, Problem};

/// Longest range at hour granularity, in days.
pub const MAX_HOUR_RANGE_DAYS: i64 = 31;
/// Longest range at day granularity (and for the per-video endpoint), in days.
pub const MAX_DAY_RANGE_DAYS: i64 = 366;
/// Longest accepted `genre` value, in characters (what the OpenAPI `maxLength` counts).
const MAX_GENRE_CHARS: usize = 256;

/// The width of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One bucket per UTC hour.
    Hour,
    /// One bucket per UTC day.
    Day,
}

impl Granularity {
    /// The bucket width in milliseconds.
    pub fn step_ms(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }

    /// The wire name (`hour` / `day`).
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    fn max_range_days(self) -> i64 {
        match self {
            Granularity::Hour => MAX_HOUR_RANGE_DAYS,
            Granularity::Day => MAX_DAY_RANGE_DAYS,
        }
    }
}

/// Which view a series request reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// Source of Play: grouped by `sop_row`.
    SourceOfPlay,
    /// Source of Discovery: grouped by `sod_row`.
    SourceOfDiscovery,
}

/// Exact-match filters of the series endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// Device token.
    pub device: Option<String>,
    /// Catalog genre (`unknown` for videos missing from the catalog).
    pub genre: Option<String>,
    /// New-launch flag.
    pub new_launch: Option<bool>,
    /// Source-of-discovery only: the Source of Play row (`unattributed` allowed).
    pub play_row: Option<String>,
}

/// A validated, normalised series request; also the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesQuery {
    /// Which view.
    pub view: View,
    /// `from` as given (UTC ms).
    pub from: Ts,
    /// `to` as given (UTC ms).
    pub to: Ts,
    /// Bucket width.
    pub granularity: Granularity,
    /// First bucket start (≥ from, aligned).
    pub lo: Ts,
    /// First aligned instant ≥ to: buckets are `[lo, hi)` in steps of the granularity.
    pub hi: Ts,
    /// Filters.
    pub filters: Filters,
}

impl SeriesQuery {
    /// Number of buckets in the range.
    pub fn bucket_count(&self) -> i64 {
        (self.hi.0 - self.lo.0) / self.granularity.step_ms()
    }
}

/// A validated per-video request: the days whose start is in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VideoQuery {
    /// The video (≥ 1).
    pub video_id: u64,
    /// First day start ≥ from.
    pub lo: Ts,
    /// First day start ≥ to (exclusive end).
    pub hi: Ts,
}

/// The decoded `key=value` pairs of a query string, checked for duplicates, empties and
/// unknown names.
struct Pairs(Vec<(String, String)>);

impl Pairs {
    fn parse(raw: Option<&str>, known: &[&str]) -> Result<Pairs, Problem> {
        let raw = raw.unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(raw)?;
        for (i, (k, v)) in pairs.iter().enumerate() {
            if !known.contains(&k.as_str()) {
                return Err(Problem::bad_request(format!(
                    "unknown parameter `{}`; this endpoint takes {}",
                    clip(k),
                    known.join(", ")
                )));
            }
            if pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(Problem::bad_request(format!(
                    "parameter `{k}` is given more than once; give it once"
                )));
            }
            if v.is_empty() {
                return Err(Problem::bad_request(format!(
                    "parameter `{k}` is empty; give a value or leave the parameter out"
                )));
            }
        }
        Ok(Pairs(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str, example: &str) -> Result<&str, Problem> {
        self.get(name).ok_or_else(|| {
            Problem::bad_request(format!(
                "parameter `{name}` is missing; give it, e.g. {name}={example}"
            ))
        })
    }
}

/// Splits and percent-decodes an `application/x-www-form-urlencoded` query string.
fn serde_urlencoded_pairs(raw: &str) -> Result<Vec<(String, String)>, Problem> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode_component(k)?, decode_component(v)?))
        })
        .collect()
}

/// Decodes one form component: `+` is a space, `%XX` a byte (`percent-encoding`); a `%` not
/// followed by two hex digits, or bytes that are not UTF-8 once decoded, are refused rather
/// than passed through or replaced.
fn decode_component(s: &str) -> Result<String, Problem> {
    let malformed = s.split('%').skip(1).any(|rest| {
        !rest
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(Problem::bad_request(format!(
            "the query string has a malformed percent-escape in `{}`; encode `%` as %25",
            clip(s)
        )));
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            Problem::bad_request(format!(
                "the query string component `{}` is not UTF-8 once decoded; send UTF-8",
                clip(s)
            ))
        })
}

/// Parses an RFC 3339 timestamp parameter. A `+hh:mm` offset sent unencoded arrives as a space;
/// that one case is repaired (`…:00 01:00` → `…:00+01:00`) since it cannot mean anything else.
fn parse_ts(name: &str, v: &str) -> Result<Ts, Problem> {
    let repaired;
    let s = if v.len() > 6 && v.as_bytes()[v.len() - 6] == b' ' && v.as_bytes()[v.len() - 3] == b':'
    {
        repaired = format!("{}+{}", &v[..v.len() - 6], &v[v.len() - 5..]);
        repaired.as_str()
    } else {
        v
    };
    let bad = || {
        Problem::bad_request(format!(
            "parameter `{name}` = `{}` is not an RFC 3339 timestamp with an offset; use e.g. {name}=2026-11-21T00:00:00Z (encode `+` as %2B)",
            clip(v)
        ))
    };
    let ts = Ts::parse_rfc3339(s).map_err(|_| bad())?;
    // Keep to years 0001..=9999 so every bucket can be formatted and stored.
    if ts.0 < -62_135_596_800_000 || ts.0 > 253_402_300_799_999 {
        return Err(bad());
    }
    Ok(ts)
}

fn ceil_to(ts: Ts, step: i64) -> Ts {
    let r = ts.0.rem_euclid(step);
    if r == 0 {
        ts
    } else {
        Ts(ts.0 - r + step)
    }
}

/// Parses `from` and `to`, checks `from < to` and the range limit.
fn parse_range(p: &Pairs, max_days: i64, granularity: &str) -> Result<(Ts, Ts), Problem> {
    let from = parse_ts("from", p.required("from", "2026-11-21T00:00:00Z")?)?;
    let to = parse_ts("to", p.required("to", "2026-11-22T00:00:00Z")?)?;
    if from >= to {
        return Err(Problem::bad_request(format!(
            "`from` ({}) must be before `to` ({}); the range is [from, to)",
            fmt_second(from),
            fmt_second(to)
        )));
    }
    if to.0 - from.0 > max_days * DAY_MS {
        return Err(Problem::bad_request(format!(
            "the range from {} to {} is longer than {max_days} days, the limit at {granularity} granularity; ask for a shorter range{}",
            fmt_second(from),
            fmt_second(to),
            if granularity == "hour" { " or granularity=day" } else { "" }
        )));
    }
    Ok((from, to))
}

/// Validates a series request (`/v1/source-of-play`, `/v1/source-of-discovery`).
pub fn series_query(view: View, raw: Option<&str>) -> Result<SeriesQuery, Problem> {
    const SOP: &[&str] = &[
        "from",
        "to",
        "granularity",
        "country",
        "device",
        "genre",
        "new_launch",
    ];
    const SOD: &[&str] = &[
        "from",
        "to",
        "granularity",
        "country",
        "device",
        "genre",
        "new_launch",
        "play_row",
    ];
    let p = Pairs::parse(
        raw,
        match view {
            View::SourceOfPlay => SOP,
            View::SourceOfDiscovery => SOD,
        },
    )?;
    let granularity = match p.get("granularity") {
        None | Some("hour") => Granularity::Hour,
        Some("day") => Granularity::Day,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "parameter `granularity` = `{}` is not known; use `hour` or `day`",
                clip(other)
            )))
        }
    };
    let (from, to) = parse_range(&p, granularity.max_range_days(), granularity.as_str())?;
    let step = granularity.step_ms();
    let filters = Filters {
        country: match p.get("country") {
            None => None,
            Some(c) if is_country(c) => Some(c.to_owned()),
            Some(c) => {
                return Err(Problem::bad_request(format!(
                    "parameter `country` = `{}` is not an ISO 3166-1 alpha-2 code in upper case, e.g. US",
                    clip(c)
                )))
            }
        },
        device: token_param(&p, "device", "tv")?,
        genre: match p.get("genre") {
            Some(g) if g.chars().count() > MAX_GENRE_CHARS || g.chars().any(char::is_control) => {
                return Err(Problem::bad_request(format!(
                    "parameter `genre` must be at most {MAX_GENRE_CHARS} characters without control characters"
                )))
            }
            g => g.map(str::to_owned),
        },
        new_launch: match p.get("new_launch") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(Problem::bad_request(format!(
                    "parameter `new_launch` = `{}` is not a boolean; use `true` or `false`",
                    clip(other)
                )))
            }
        },
        play_row: token_param(&p, "play_row", "continue_watching")?,
    };
    Ok(SeriesQuery {
        view,
        from,
        to,
        granularity,
        lo: ceil_to(from, step),
        hi: ceil_to(to, step),
        filters,
    })
}

fn token_param(p: &Pairs, name: &str, example: &str) -> Result<Option<String>, Problem> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if is_token(v) => Ok(Some(v.to_owned())),
        Some(v) => Err(Problem::bad_request(format!(
            "parameter `{name}` = `{}` is not a token (1 to 64 of [a-z0-9_]), e.g. {name}={example}",
            clip(v)
        ))),
    }
}

/// Validates a per-video request (`/v1/videos/{video_id}/discovery`).
pub fn video_query(video_id: &str, raw: Option<&str>) -> Result<VideoQuery, Problem> {
    let id = parse_video_id(video_id)?;
    let p = Pairs::parse(raw, &["from", "to"])?;
    let (from, to) = parse_range(&p, MAX_DAY_RANGE_DAYS, "day")?;
    Ok(VideoQuery {
        video_id: id,
        lo: ceil_to(from, DAY_MS),
        hi: ceil_to(to, DAY_MS),
    })
}

/// Parses a video id path segment: decimal digits only, 1 ..= u64::MAX.
pub fn parse_video_id(s: &str) -> Result<u64, Problem> {
    let bad = |why: &str| {
        Problem::bad_request(format!(
            "video id `{}` {why}; give a decimal integer from 1 to 18446744073709551615",
            clip(s)
        ))
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a decimal integer"));
    }
    match s.parse::<u64>() {
        Ok(0) => Err(bad("is 0")),
        Ok(id) => Ok(id),
        Err(_) => Err(bad("is too large")),
    }
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SSZ` (UTC, no fraction).
pub fn fmt_second(ts: Ts) -> String {
    match ts.to_datetime() {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => ts.0.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_inside_the_range() {
        let q = series_query(
            View::SourceOfPlay,
            Some("from=2026-11-21T10:30:00Z&to=2026-11-21T13:00:00Z"),
        )
        .unwrap();
        assert_eq!(fmt_second(q.lo), "2026-11-21T11:00:00Z");
        assert_eq!(fmt_second(q.hi), "2026-11-21T13:00:00Z");
        assert_eq!(q.bucket_count(), 2);
        let q = series_query(
            View::SourceOfPlay,
            Some("from=2026-11-21T00:00:00%2B01:00&to=2026-11-23T00:00:01Z&granularity=day"),
        )
        .unwrap();
        assert_eq!(fmt_second(q.lo), "2026-11-21T00:00:00Z");
        assert_eq!(fmt_second(q.hi), "2026-11-24T00:00:00Z");
        assert_eq!(q.bucket_count(), 3);
    }

    #[test]
    fn an_unencoded_plus_offset_is_repaired() {
        let q = series_query(
            View::SourceOfPlay,
            Some("from=2026-11-21T01:00:00+01:00&to=2026-11-21T02:00:00Z"),
        )
        .unwrap();
        assert_eq!(fmt_second(q.from), "2026-11-21T00:00:00Z");
    }

    #[test]
    fn video_ids() {
        assert_eq!(parse_video_id("18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            "0",
            "",
            "-1",
            "+1",
            "1.0",
            "18446744073709551616",
            "abc",
            " 1",
        ] {
            assert_eq!(parse_video_id(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn components_decode_as_forms_do() {
        for (raw, want) in [
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("%C3%A9t%c3%a9", "été"),
            ("100%25", "100%"),
            ("", ""),
            ("plain_token", "plain_token"),
        ] {
            assert_eq!(decode_component(raw).unwrap(), want, "{raw}");
        }
        for bad in ["%", "%4", "%zz", "a%g1", "%E9", "%C3"] {
            assert_eq!(decode_component(bad).unwrap_err().status, 400, "{bad}");
        }
        assert_eq!(
            serde_urlencoded_pairs("a=1&&b&c=%20").unwrap(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), " ".to_owned())
            ]
        );
    }

    #[test]
    fn malformed_escapes_are_rejected() {
        for raw in ["from=%zz", "from=%E9", "from=%"] {
            assert_eq!(
                series_query(View::SourceOfPlay, Some(raw))
                    .unwrap_err()
                    .status,
                400
            );
        }
    }
}
