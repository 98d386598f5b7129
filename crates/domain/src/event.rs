//! The two input events of docs/reference.md §1, their JSON decoding and their validation.
//!
//! Decoding borrows from the message bytes wherever JSON escapes allow, so the hot path does not
//! allocate per field; the shape producers send is read by a schema-specific scanner
//! (`event/scan.rs`), anything else by serde, with the same result. Every rejection names the
//! field and the rule it broke.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::ids::{MemberId, VideoId};
use crate::time::Ts;

mod scan;

/// The row type reserved for plays with no matching impression.
pub const UNATTRIBUTED: &str = "unattributed";

/// The longest `session_id` accepted, in bytes. Session ids in the wild are UUIDs (36 bytes) or
/// opaque tokens well under 100; 256 leaves room for those while keeping every string of an event
/// bounded (the longest accepted event is a few hundred bytes), so no value can grow an Arrow
/// string buffer or a Postgres index row (btree rows stop at about 2.7 kB) without bound.
pub const SESSION_ID_MAX_BYTES: usize = 256;

/// The default of `--max-future-secs`: how far an event's `ts` may run ahead of both its Kafka
/// message timestamp and the receiving clock (docs/reference.md §1).
pub const DEFAULT_MAX_FUTURE_MS: i64 = 300_000;

/// Rejects an event whose `ts` is more than `max_future_ms` ahead of both its Kafka message
/// timestamp (`None` when the message has none) and `clock` (docs/reference.md §1: a broken clock must not
/// move any watermark). Pure: the caller supplies the message timestamp and the clock.
pub fn check_not_future(
    ts: Ts,
    message_ts: Option<Ts>,
    clock: Ts,
    max_future_ms: i64,
) -> Result<(), Rejection> {
    let ahead = |of: Ts| ts.0 > of.0.saturating_add(max_future_ms);
    if ahead(clock) && message_ts.is_none_or(ahead) {
        let msg = match message_ts {
            Some(m) => format!("its message timestamp {m} and "),
            None => String::new(),
        };
        return Err(Rejection::new(
            "ts",
            format!(
                "must not be more than {} s ahead of both {msg}the stream's clock {clock}, got {ts} (a producer clock in the future?)",
                max_future_ms / 1000
            ),
        ));
    }
    Ok(())
}

/// Why a message was rejected: the field and the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {rule}")]
pub struct Rejection {
    /// The offending field, or `(message)` when the message as a whole is not a JSON object.
    pub field: &'static str,
    /// The rule, in words, with the offending value where it helps.
    pub rule: String,
}

impl Rejection {
    fn new(field: &'static str, rule: impl Into<String>) -> Rejection {
        Rejection {
            field,
            rule: rule.into(),
        }
    }
}

/// `impressions`: a title was shown to a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Impression<'a> {
    pub event_id: Cow<'a, str>,
    #[serde(serialize_with = "ser_ts")]
    pub ts: Ts,
    pub member_id: MemberId,
    pub video_id: VideoId,
    pub page: Cow<'a, str>,
    pub row_type: Cow<'a, str>,
    pub row_index: u16,
    pub rank: u16,
    pub country: Cow<'a, str>,
    pub device: Cow<'a, str>,
}

/// `plays`: a playback started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Play<'a> {
    pub event_id: Cow<'a, str>,
    #[serde(serialize_with = "ser_ts")]
    pub ts: Ts,
    pub member_id: MemberId,
    pub video_id: VideoId,
    pub country: Cow<'a, str>,
    pub device: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Cow<'a, str>>,
}

fn ser_ts<S: Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ts)
}

impl Impression<'_> {
    /// Checks every rule of docs/reference.md §1 (for events that did not come through [`decode_impression`],
    /// such as rows of an archive written by another tool).
    pub fn validate(&self) -> Result<(), Rejection> {
        check_event_id(&self.event_id)?;
        check_id("member_id", self.member_id.0)?;
        check_id("video_id", self.video_id.0)?;
        check_token("page", &self.page)?;
        check_token("row_type", &self.row_type)?;
        if self.row_type == UNATTRIBUTED {
            return Err(Rejection::new(
                "row_type",
                "must not be `unattributed`, which is reserved for plays with no impression",
            ));
        }
        check_country(&self.country)?;
        check_token("device", &self.device)
    }

    /// The same event owning its strings.
    pub fn into_owned(self) -> Impression<'static> {
        Impression {
            event_id: Cow::Owned(self.event_id.into_owned()),
            ts: self.ts,
            member_id: self.member_id,
            video_id: self.video_id,
            page: Cow::Owned(self.page.into_owned()),
            row_type: Cow::Owned(self.row_type.into_owned()),
            row_index: self.row_index,
            rank: self.rank,
            country: Cow::Owned(self.country.into_owned()),
            device: Cow::Owned(self.device.into_owned()),
        }
    }

    /// The contract's JSON encoding.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Play<'_> {
    /// Checks every rule of docs/reference.md §1.
    pub fn validate(&self) -> Result<(), Rejection> {
        check_event_id(&self.event_id)?;
        check_id("member_id", self.member_id.0)?;
        check_id("video_id", self.video_id.0)?;
        check_country(&self.country)?;
        check_token("device", &self.device)?;
        match &self.session_id {
            Some(s) if s.len() > SESSION_ID_MAX_BYTES => Err(Rejection::new(
                "session_id",
                format!(
                    "must be at most {SESSION_ID_MAX_BYTES} bytes long, got {} bytes",
                    s.len()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The same event owning its strings.
    pub fn into_owned(self) -> Play<'static> {
        Play {
            event_id: Cow::Owned(self.event_id.into_owned()),
            ts: self.ts,
            member_id: self.member_id,
            video_id: self.video_id,
            country: Cow::Owned(self.country.into_owned()),
            device: Cow::Owned(self.device.into_owned()),
            session_id: self.session_id.map(|s| Cow::Owned(s.into_owned())),
        }
    }

    /// The contract's JSON encoding.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Decodes and validates one `impressions` message value.
pub fn decode_impression(bytes: &[u8]) -> Result<Impression<'_>, Rejection> {
    // Filled in place: the fields are a few hundred bytes, which showed in the profile as copies.
    let mut raw = RawEvent::default();
    parse_object(bytes, &mut raw)?;
    impression_from(&mut raw)
}

fn impression_from<'a>(raw: &mut RawEvent<'a>) -> Result<Impression<'a>, Rejection> {
    let imp = Impression {
        event_id: req_str("event_id", raw.event_id.take())?,
        ts: req_ts(raw.ts.take())?,
        member_id: MemberId(req_u64("member_id", raw.member_id.take())?),
        video_id: VideoId(req_u64("video_id", raw.video_id.take())?),
        page: req_str("page", raw.page.take())?,
        row_type: req_str("row_type", raw.row_type.take())?,
        row_index: req_u16("row_index", raw.row_index.take())?,
        rank: req_u16("rank", raw.rank.take())?,
        country: req_str("country", raw.country.take())?,
        device: req_str("device", raw.device.take())?,
    };
    imp.validate()?;
    Ok(imp)
}

/// Decodes and validates one `plays` message value.
pub fn decode_play(bytes: &[u8]) -> Result<Play<'_>, Rejection> {
    let mut raw = RawEvent::default();
    parse_object(bytes, &mut raw)?;
    play_from(&mut raw)
}

fn play_from<'a>(raw: &mut RawEvent<'a>) -> Result<Play<'a>, Rejection> {
    let session_id = match raw.session_id.take() {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(s),
        Some(other) => {
            return Err(Rejection::new(
                "session_id",
                format!("must be a string when present, got {}", other.kind()),
            ))
        }
    };
    let play = Play {
        event_id: req_str("event_id", raw.event_id.take())?,
        ts: req_ts(raw.ts.take())?,
        member_id: MemberId(req_u64("member_id", raw.member_id.take())?),
        video_id: VideoId(req_u64("video_id", raw.video_id.take())?),
        country: req_str("country", raw.country.take())?,
        device: req_str("device", raw.device.take())?,
        session_id,
    };
    play.validate()?;
    Ok(play)
}

fn parse_object<'a>(bytes: &'a [u8], raw: &mut RawEvent<'a>) -> Result<(), Rejection> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new("(message)", format!("must be UTF-8 JSON ({e})")))?;
    if text.starts_with('\u{feff}') {
        return Err(Rejection::new(
            "(message)",
            "must be a JSON object without a byte-order mark (U+FEFF) in front",
        ));
    }
    if scan::scan(text, raw).is_none() {
        *raw = serde_object(text)?;
    }
    Ok(())
}

/// The fields of a message outside the scanner's common shape, read by serde.
fn serde_object(text: &str) -> Result<RawEvent<'_>, Rejection> {
    serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde names the field of a duplicate; say which one it is.
        let field = msg
            .strip_prefix("duplicate field `")
            .and_then(|rest| {
                FIELDS
                    .iter()
                    .find(|f| rest.strip_prefix(**f).is_some_and(|r| r.starts_with('`')))
            })
            .copied()
            .unwrap_or("(message)");
        // serde quotes a non-object message whole ("invalid type: string \"…\""): keep it short.
        let msg = match msg.char_indices().nth(160) {
            Some((i, _)) => format!("{}…", &msg[..i]),
            None => msg,
        };
        Rejection::new(
            field,
            format!("must be part of a single JSON object with each field once ({msg})"),
        )
    })
}

const FIELDS: [&str; 11] = [
    "event_id",
    "ts",
    "member_id",
    "video_id",
    "page",
    "row_type",
    "row_index",
    "rank",
    "country",
    "device",
    "session_id",
];

/// The fields of either event, each kept as whatever JSON scalar it was, so that validation can
/// name the field that is wrong. Unknown fields are skipped.
#[derive(Clone, Default, Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    event_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    ts: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    member_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    video_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    page: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    row_type: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    row_index: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    rank: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    country: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    device: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    session_id: Option<Scalar<'a>>,
}

/// One JSON value, kept only as far as validation needs.
#[derive(Clone)]
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool,
    Null,
    Array,
    Object,
}

impl Scalar<'_> {
    fn kind(&self) -> String {
        match self {
            Scalar::Str(s) => format!("the string {:?}", truncate(s)),
            Scalar::Unsigned(n) => format!("the number {n}"),
            Scalar::Signed(n) => format!("the number {n}"),
            Scalar::Float(n) => format!("the number {n}"),
            Scalar::Bool => "a boolean".into(),
            Scalar::Null => "null".into(),
            Scalar::Array => "an array".into(),
            Scalar::Object => "an object".into(),
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::Unsigned(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Signed(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
        }
        d.deserialize_any(V)
    }
}

fn missing(field: &'static str) -> Rejection {
    Rejection::new(field, "is required but missing")
}

fn req_str<'a>(field: &'static str, v: Option<Scalar<'a>>) -> Result<Cow<'a, str>, Rejection> {
    match v {
        None | Some(Scalar::Null) => Err(missing(field)),
        Some(Scalar::Str(s)) => Ok(s),
        Some(other) => Err(Rejection::new(
            field,
            format!("must be a string, got {}", other.kind()),
        )),
    }
}

fn req_u64(field: &'static str, v: Option<Scalar<'_>>) -> Result<u64, Rejection> {
    match v {
        None | Some(Scalar::Null) => Err(missing(field)),
        Some(Scalar::Unsigned(n)) => Ok(n),
        Some(other) => Err(Rejection::new(
            field,
            format!(
                "must be an integer from 1 to 18446744073709551615, got {}",
                other.kind()
            ),
        )),
    }
}

fn req_u16(field: &'static str, v: Option<Scalar<'_>>) -> Result<u16, Rejection> {
    match v {
        None | Some(Scalar::Null) => Err(missing(field)),
        Some(Scalar::Unsigned(n)) if n <= u16::MAX as u64 => Ok(n as u16),
        Some(other) => Err(Rejection::new(
            field,
            format!("must be an integer from 0 to 65535, got {}", other.kind()),
        )),
    }
}

fn req_ts(v: Option<Scalar<'_>>) -> Result<Ts, Rejection> {
    let s = req_str("ts", v)?;
    Ts::parse_rfc3339(&s).map_err(|e| Rejection::new("ts", format!("{e}, got {:?}", truncate(&s))))
}

fn check_event_id(id: &str) -> Result<(), Rejection> {
    if id.is_empty() || id.len() > 128 {
        return Err(Rejection::new(
            "event_id",
            format!("must be 1 to 128 bytes long, got {} bytes", id.len()),
        ));
    }
    Ok(())
}

fn check_id(field: &'static str, id: u64) -> Result<(), Rejection> {
    if id == 0 {
        return Err(Rejection::new(
            field,
            "must be an integer from 1 to 18446744073709551615, got 0",
        ));
    }
    Ok(())
}

/// Whether `s` is a token: 1 to 64 of `[a-z0-9_]`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_token(field: &'static str, s: &str) -> Result<(), Rejection> {
    if !is_token(s) {
        return Err(Rejection::new(
            field,
            format!("must be 1 to 64 of [a-z0-9_], got {:?}", truncate(s)),
        ));
    }
    Ok(())
}

fn check_country(s: &str) -> Result<(), Rejection> {
    if !is_country(s) {
        return Err(Rejection::new(
            "country",
            format!(
                "must be an ISO 3166-1 alpha-2 code in upper case such as US, got {:?}",
                truncate(s)
            ),
        ));
    }
    Ok(())
}

/// Whether `s` is an assigned ISO 3166-1 alpha-2 code in upper case.
pub fn is_country(s: &str) -> bool {
    match *s.as_bytes() {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            COUNTRY_BITS[usize::from(a - b'A')] & (1 << (b - b'A')) != 0
        }
        _ => false,
    }
}

/// [`COUNTRIES`] as a bitmap: bit `second letter` of entry `first letter` (a lookup per event
/// instead of a binary search; it showed in the batch layer's profile).
const COUNTRY_BITS: [u32; 26] = {
    let mut bits = [0u32; 26];
    let mut i = 0;
    while i < COUNTRIES.len() {
        let c = COUNTRIES[i].as_bytes();
        bits[(c[0] - b'A') as usize] |= 1 << (c[1] - b'A');
        i += 1;
    }
    bits
};

/// The assigned ISO 3166-1 alpha-2 codes, sorted.
pub const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests;
