//! Hostile input for the two things that read bytes from outside: the event decoder (Kafka
//! message values, docs/reference.md §1; this file) and the catalog CSV parser (`playsource catalog
//! load`, §2; `hostile_input/catalog_csv.rs`).
//!
//! Properties (`PROPTEST_CASES` sets the count; CI runs 10 000):
//! - arbitrary bytes, arbitrary JSON and hostile-but-structured objects never panic, and every
//!   rejection names a known field (or `(message)`) and a bounded, non-empty rule;
//! - a valid event survives junk that does not change its meaning (whitespace, key order,
//!   `\u` escapes, unknown fields holding any JSON) and decodes to the same event;
//! - junk that breaks it (a wrong value in one field, a missing field, a duplicated key,
//!   trailing bytes, truncation) is rejected, naming that field;
//! - a random byte flip either still decodes to a valid event that round-trips, or is rejected.
//!
//! Decisions pinned here (serde_json's behaviour, kept on purpose):
//! - a duplicated known key is rejected naming the field, even when both values agree
//!   (serde's derive refuses duplicates; taking the first or the last would be a silent guess);
//!   duplicated unknown keys are ignored like any unknown field;
//! - nesting of any depth (tested to 1 000 000 levels) never overflows the stack: the decoder
//!   keeps only scalars, and serde_json skips what it does not keep without recursing, so an
//!   unknown field may hold anything and a known field holding an array or object is named;
//! - bare `NaN`/`Infinity`, `01`, `+1`, `.5` are not JSON: the message is rejected as
//!   `(message)` with serde's position; `1e400` is JSON but more than an f64 holds: rejected as
//!   `(message)` where the decoder reads it, skipped in an unknown field;
//! - a very long value is rejected with a rule of at most a few hundred bytes (values are quoted
//!   back cut short), so a dead-letter `error` header stays small;
//! - a leading byte-order mark is rejected (RFC 8259 §8.1: JSON text must not start with one).
#![allow(clippy::unwrap_used)]

#[path = "hostile_input/catalog_csv.rs"]
mod catalog_csv;

use std::fmt::Write as _;

use playsource_domain::event::COUNTRIES;
use playsource_domain::{decode_impression, decode_play, Rejection};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Every name a rejection may carry.
const FIELDS: [&str; 12] = [
    "(message)",
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
/// Longest rule text accepted for any input, however large.
const MAX_RULE: usize = 1024;

const IMPRESSION_FIELDS: [&str; 10] = [
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
];
const PLAY_FIELDS: [&str; 7] = [
    "event_id",
    "ts",
    "member_id",
    "video_id",
    "country",
    "device",
    "session_id",
];

fn check_rejection(r: &Rejection) {
    assert!(FIELDS.contains(&r.field), "unknown field in {r:?}");
    assert!(!r.rule.is_empty(), "empty rule in {r:?}");
    assert!(
        r.rule.len() <= MAX_RULE,
        "rule of {} bytes for field {}",
        r.rule.len(),
        r.field
    );
}

/// Decodes `bytes` both ways; checks the invariants of whatever comes back.
fn decode_both(bytes: &[u8]) {
    match decode_impression(bytes) {
        Ok(i) => {
            i.validate().unwrap();
            let again = decode_impression(i.to_json().as_bytes())
                .unwrap()
                .into_owned();
            assert_eq!(again, i.into_owned());
        }
        Err(r) => check_rejection(&r),
    }
    match decode_play(bytes) {
        Ok(p) => {
            p.validate().unwrap();
            let again = decode_play(p.to_json().as_bytes()).unwrap().into_owned();
            assert_eq!(again, p.into_owned());
        }
        Err(r) => check_rejection(&r),
    }
}

// ------------------------------------------------------------------ strategies

fn token() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,64}"
}

fn country() -> impl Strategy<Value = String> {
    prop::sample::select(&COUNTRIES[..]).prop_map(str::to_owned)
}

/// Instants of years 0001 ..= 9999 (what RFC 3339 can write).
fn millis() -> impl Strategy<Value = i64> {
    -62_135_596_800_000i64..=253_402_300_799_999
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn ts_json(ms: i64) -> String {
    json_str(&playsource_domain::Ts(ms).to_string())
}

/// A valid impression as (field, raw JSON value) pairs.
fn impression_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        "\\PC{1,32}",
        millis(),
        1..=u64::MAX,
        1..=u64::MAX,
        token(),
        token().prop_filter("reserved", |t| t != "unattributed"),
        any::<u16>(),
        any::<u16>(),
        country(),
        token(),
    )
        .prop_map(|(id, ts, m, v, page, row, ri, rank, c, d)| {
            vec![
                ("event_id".into(), json_str(&id)),
                ("ts".into(), ts_json(ts)),
                ("member_id".into(), m.to_string()),
                ("video_id".into(), v.to_string()),
                ("page".into(), json_str(&page)),
                ("row_type".into(), json_str(&row)),
                ("row_index".into(), ri.to_string()),
                ("rank".into(), rank.to_string()),
                ("country".into(), json_str(&c)),
                ("device".into(), json_str(&d)),
            ]
        })
}

/// A valid play as (field, raw JSON value) pairs; `session_id` absent, null or a string.
fn play_fields() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        "\\PC{1,32}",
        millis(),
        1..=u64::MAX,
        1..=u64::MAX,
        country(),
        token(),
        prop::option::of(prop::option::of("\\PC{0,40}")),
    )
        .prop_map(|(id, ts, m, v, c, d, session)| {
            let mut f: Vec<(String, String)> = vec![
                ("event_id".into(), json_str(&id)),
                ("ts".into(), ts_json(ts)),
                ("member_id".into(), m.to_string()),
                ("video_id".into(), v.to_string()),
                ("country".into(), json_str(&c)),
                ("device".into(), json_str(&d)),
            ];
            match session {
                None => {}
                Some(None) => f.push(("session_id".into(), "null".into())),
                Some(Some(s)) => f.push(("session_id".into(), json_str(&s))),
            }
            f
        })
}

fn object(fields: &[(String, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Scalars that stress parsers: huge and tiny numbers, NaN-ish and number-ish strings, control
/// characters, lone escapes, very long strings.
fn hostile_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "NaN",
            "nan",
            "Infinity",
            "-Infinity",
            "1e400",
            "-0",
            "0x10",
            "1_000",
            "",
            " ",
            "\u{0}",
            "\u{feff}",
            "\u{202e}tv",
            "null",
            "true",
            "18446744073709551616",
            "९",
            "１",
            "2026-11-21T10:00:00Z",
            "unattributed",
            "US",
        ])
        .prop_map(|s| Value::String(s.into())),
        "\\PC{0,80}".prop_map(Value::String),
        (0usize..5000).prop_map(|n| Value::String("x".repeat(n))),
    ]
    .boxed()
}

/// Arbitrary JSON: hostile scalars in arrays and objects, keys often the event's own.
fn any_json() -> BoxedStrategy<Value> {
    let key = prop_oneof![
        prop::sample::select(&FIELDS[1..]).prop_map(str::to_owned),
        "\\PC{0,12}"
    ];
    hostile_scalar()
        .prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..12)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// Raw values that break the rule of `field` (some are not JSON at all: those make the whole
/// message invalid, and the rejection is `(message)`).
fn bad_values(field: &str) -> Vec<&'static str> {
    const NOT_JSON: [&str; 5] = ["NaN", "Infinity", "1e400", "-", "'x'"];
    let mut v: Vec<&'static str> = match field {
        "member_id" | "video_id" => vec![
            "0",
            "-1",
            "-0",
            "1.0",
            "1e3",
            "1e-400",
            "18446744073709551616",
            "\"1\"",
            "\"NaN\"",
            "null",
            "true",
            "[]",
            "{}",
            "[1]",
            "{\"n\":1}",
        ],
        "row_index" | "rank" => {
            vec![
                "65536",
                "-1",
                "1.5",
                "\"0\"",
                "null",
                "false",
                "[0]",
                "4294967296",
            ]
        }
        "event_id" => vec!["\"\"", "1", "null", "[]", "{}", "true"],
        "ts" => vec![
            "\"\"",
            "\"NaN\"",
            "\"2026-11-21T10:00:00\"",
            "\"2026-02-30T00:00:00Z\"",
            "\"+10000-01-01T00:00:00Z\"",
            "\"2026-11-21T10:00:00+25:00\"",
            "\"2026-11-21T25:00:00Z\"",
            "1795219200000",
            "null",
            "[\"2026-11-21T10:00:00Z\"]",
        ],
        "country" => vec![
            "\"us\"",
            "\"USA\"",
            "\"ZZ\"",
            "\"U\"",
            "\"\"",
            "\"ÜS\"",
            "\"U\\u0000\"",
            "1",
            "null",
        ],
        "session_id" => vec!["1", "true", "[]", "{}", "1.5"],
        // page, row_type, device: tokens.
        _ => vec![
            "\"\"",
            "\"Home\"",
            "\"a-b\"",
            "\"é\"",
            "\" tv\"",
            "\"tv\\n\"",
            "\"\\u0000\"",
            "\"ｔｖ\"",
            "7",
            "null",
            "{}",
        ],
    };
    if field == "row_type" {
        v.push("\"unattributed\"");
    }
    v.extend(NOT_JSON);
    v
}

// ------------------------------------------------------------------ event properties

use playsource_domain::Topic;

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_both(&bytes);
        // The same bytes inside an object, where the parser gets further.
        let mut wrapped = br#"{"event_id":"#.to_vec();
        wrapped.extend_from_slice(&bytes);
        wrapped.push(b'}');
        decode_both(&wrapped);
    }

    #[test]
    fn arbitrary_json_never_panics(v in any_json()) {
        decode_both(v.to_string().as_bytes());
    }

    #[test]
    fn hostile_fields_of_a_valid_event_are_rejected_naming_the_field(
        imp in impression_fields(),
        play in play_fields(),
        pick in any::<prop::sample::Index>(),
        which in any::<prop::sample::Index>(),
    ) {
        for (mut fields, decode) in [(imp, Topic::Impressions), (play, Topic::Plays)] {
            let i = pick.index(fields.len());
            let field: &'static str = FIELDS[1..].iter().find(|f| **f == fields[i].0).unwrap();
            let bad = bad_values(field);
            let value = bad[which.index(bad.len())];
            fields[i].1 = value.to_owned();
            let msg = object(&fields);
            let err = match decode {
                Topic::Impressions => decode_impression(msg.as_bytes()).map(drop),
                Topic::Plays => decode_play(msg.as_bytes()).map(drop),
            }
            .expect_err(&msg);
            check_rejection(&err);
            let expected = if serde_json::from_str::<Value>(value).is_err() { "(message)" } else { field };
            prop_assert_eq!(err.field, expected, "{} -> {}", msg, err);
        }
    }

    #[test]
    fn a_missing_required_field_is_named(imp in impression_fields(), pick in any::<prop::sample::Index>()) {
        let mut fields = imp;
        let (name, _) = fields.remove(pick.index(fields.len()));
        let err = decode_impression(object(&fields).as_bytes()).unwrap_err();
        prop_assert_eq!(err.field, name.as_str());
        prop_assert!(err.rule.contains("missing"), "{}", err);
    }

    #[test]
    fn meaning_preserving_junk_decodes_to_the_same_event(
        imp in impression_fields(),
        play in play_fields(),
        order in any::<u64>(),
        ws in prop::collection::vec(prop::sample::select(vec!["", " ", "\t", "\n", "\r\n", "  "]), 64),
        unknown in prop::collection::vec(("[a-z_]{1,10}", any_json()), 0..4),
        escape in any::<bool>(),
    ) {
        let clean_imp = decode_impression(object(&imp).as_bytes()).unwrap().into_owned();
        let clean_play = decode_play(object(&play).as_bytes()).unwrap().into_owned();
        let noisy_imp = noisy(&imp, order, &ws, &unknown, escape, &IMPRESSION_FIELDS);
        let noisy_play = noisy(&play, order, &ws, &unknown, escape, &PLAY_FIELDS);
        prop_assert_eq!(decode_impression(noisy_imp.as_bytes()).unwrap().into_owned(), clean_imp);
        prop_assert_eq!(decode_play(noisy_play.as_bytes()).unwrap().into_owned(), clean_play);
    }

    #[test]
    fn breaking_junk_is_rejected(
        imp in impression_fields(),
        cut in any::<prop::sample::Index>(),
        tail in "[^ \t\r\n]\\PC{0,8}",
        dup in any::<prop::sample::Index>(),
    ) {
        let msg = object(&imp);
        // Truncated anywhere: never a complete object.
        let err = decode_impression(&msg.as_bytes()[..cut.index(msg.len())]).unwrap_err();
        check_rejection(&err);
        prop_assert_eq!(err.field, "(message)");
        // Trailing bytes after the object.
        let err = decode_impression(format!("{msg}{tail}").as_bytes()).unwrap_err();
        prop_assert_eq!(err.field, "(message)", "{}", err);
        // A known key twice, even with the same value.
        let mut twice = imp.clone();
        twice.push(imp[dup.index(imp.len())].clone());
        let err = decode_impression(object(&twice).as_bytes()).unwrap_err();
        prop_assert_eq!(err.field, imp[dup.index(imp.len())].0.as_str(), "{}", err);
        prop_assert!(err.rule.contains("each field once"), "{}", err);
    }

    #[test]
    fn a_flipped_byte_decodes_validly_or_is_rejected(
        play in play_fields(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut msg = object(&play).into_bytes();
        let i = at.index(msg.len());
        msg[i] = byte;
        decode_both(&msg);
    }
}

/// The object of `fields` with keys shuffled by `order`, whitespace from `ws` around every
/// token, string values \u-escaped when `escape`, and unknown fields mixed in.
fn noisy(
    fields: &[(String, String)],
    order: u64,
    ws: &[&str],
    unknown: &[(String, Value)],
    escape: bool,
    known: &[&str],
) -> String {
    let mut all: Vec<(String, String)> = fields.to_vec();
    for (k, v) in unknown {
        if !known.contains(&k.as_str()) && !all.iter().any(|(k2, _)| k2 == k) {
            all.push((k.clone(), v.to_string()));
        }
    }
    // A deterministic shuffle from `order`.
    let mut state = order | 1;
    for i in (1..all.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        all.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let mut w = ws.iter().cycle();
    let mut out = String::new();
    out.push_str(w.next().unwrap());
    out.push('{');
    for (n, (k, v)) in all.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let v = if escape && v.starts_with('"') {
            let s: String = serde_json::from_str(v).unwrap();
            escape_all(&s)
        } else {
            v.clone()
        };
        let (a, b, c, d) = (w.next(), w.next(), w.next(), w.next());
        fn ws<'a>(x: Option<&&'a str>) -> &'a str {
            x.copied().unwrap_or("")
        }
        write!(
            out,
            "{}{}{}:{}{v}{}",
            ws(a),
            json_str(k),
            ws(b),
            ws(c),
            ws(d)
        )
        .unwrap();
    }
    out.push('}');
    out.push_str(w.next().unwrap());
    out
}

/// `s` as a JSON string with every character \u-escaped (surrogate pairs above the BMP).
fn escape_all(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            write!(out, "\\u{u:04x}").unwrap();
        }
    }
    out.push('"');
    out
}

// ------------------------------------------------------------------ event cases

const PLAY: &str = r#"{"event_id":"p-1","ts":"2026-11-21T09:10:00Z","member_id":42,"video_id":7,"country":"US","device":"tv"}"#;

/// PLAY with `"x": <value>` added in front.
fn play_with_extra(value: &str) -> String {
    format!("{{\"x\":{value},{}", &PLAY[1..])
}

#[test]
fn deep_nesting_is_named_or_skipped_never_a_stack_overflow() {
    for depth in [127, 128, 129, 10_000, 1_000_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        for nested in [&arrays, &objects] {
            // In a field of the event: the field is named (serde_json skips the inside of a
            // value it does not keep without recursing, so its depth limit of 128 is not hit).
            let r = decode_play(PLAY.replace("\"p-1\"", nested).as_bytes()).unwrap_err();
            check_rejection(&r);
            assert_eq!(r.field, "event_id", "{r}");
            // The whole message: not an object.
            check_rejection(&decode_play(nested.as_bytes()).unwrap_err());
            // In an unknown field, serde_json skips it without recursing, at any depth.
            assert!(decode_play(play_with_extra(nested).as_bytes()).is_ok());
        }
    }
}

#[test]
fn numbers_json_cannot_hold_and_nan_make_the_message_invalid() {
    // Not JSON anywhere in the message.
    for v in [
        "NaN",
        "Infinity",
        "-Infinity",
        "0x1",
        "01",
        "+1",
        ".5",
        "1.",
        "1e",
    ] {
        let r = decode_play(PLAY.replace("42", v).as_bytes()).unwrap_err();
        assert_eq!(r.field, "(message)", "{v}: {r}");
        let r = decode_play(play_with_extra(v).as_bytes()).unwrap_err();
        assert_eq!(r.field, "(message)", "{v}: {r}");
    }
    // JSON, but more than an f64 holds: invalid where it is read, skipped in an unknown field.
    for v in ["1e400", "-1e400"] {
        let r = decode_play(PLAY.replace("42", v).as_bytes()).unwrap_err();
        assert_eq!(r.field, "(message)", "{v}: {r}");
        assert!(r.rule.contains("out of range"), "{r}");
        assert!(decode_play(play_with_extra(v).as_bytes()).is_ok());
    }
    // Valid JSON numbers that are not ids name the field.
    for v in [
        "1e-400",
        "1E2",
        "-0",
        "18446744073709551616",
        "99999999999999999999999999",
    ] {
        let r = decode_play(PLAY.replace("42", v).as_bytes()).unwrap_err();
        assert_eq!(r.field, "member_id", "{v}: {r}");
    }
    let big = format!("1{}", "0".repeat(300));
    assert!(decode_play(play_with_extra(&big).as_bytes()).is_ok());
}

#[test]
fn bad_utf8_surrogates_and_bom_are_rejected_as_the_message() {
    let cases: Vec<Vec<u8>> = vec![
        PLAY.replace("p-1", "p-\u{1}").into_bytes(), // raw control character in a string
        PLAY.replace("p-1", "p\\ud800").into_bytes(), // lone surrogate escape
        PLAY.replace("p-1", "p\\udc00x").into_bytes(),
        PLAY.replace("p-1", "p\\x41").into_bytes(), // not a JSON escape
        [b"\xef\xbb\xbf".as_slice(), PLAY.as_bytes()].concat(), // UTF-8 BOM
        [b"\xff\xfe".as_slice(), PLAY.as_bytes()].concat(), // UTF-16 BOM
        PLAY.replace("p-1", "p-\u{fffd}")
            .into_bytes()
            .into_iter()
            .map(|b| if b == 0xbd { 0xff } else { b })
            .collect(),
        PLAY.encode_utf16().flat_map(u16::to_le_bytes).collect(), // UTF-16 text
    ];
    for bytes in &cases {
        let r = decode_play(bytes).unwrap_err();
        check_rejection(&r);
        assert_eq!(
            r.field,
            "(message)",
            "{:?}: {r}",
            String::from_utf8_lossy(bytes)
        );
    }
    let r = decode_play(&cases[4]).unwrap_err();
    assert!(r.rule.contains("byte-order mark"), "{r}");
    // Escaped control characters and non-BMP characters are fine where any string is.
    let msg = PLAY.replace("p-1", "p\\u0000\\ud83d\\ude00\\n");
    let p = decode_play(msg.as_bytes()).unwrap();
    assert_eq!(p.event_id, "p\u{0}\u{1f600}\n");
}

#[test]
fn very_long_strings_are_rejected_with_a_short_rule_or_ignored() {
    let long = "é".repeat(1 << 20); // 2 MiB
    for field in ["\"p-1\"", "\"US\"", "\"tv\"", "\"2026-11-21T09:10:00Z\""] {
        let r = decode_play(PLAY.replace(field, &json_str(&long)).as_bytes()).unwrap_err();
        check_rejection(&r);
        assert!(r.rule.len() < 300, "{} bytes", r.rule.len());
    }
    // 129 bytes is one too many for an event_id; 128 two-byte characters is 256.
    let r = decode_play(PLAY.replace("p-1", &"x".repeat(129)).as_bytes()).unwrap_err();
    assert_eq!(r.field, "event_id");
    // A 16 MiB unknown field is skipped.
    assert!(decode_play(play_with_extra(&json_str(&"x".repeat(16 << 20))).as_bytes()).is_ok());
}

#[test]
fn duplicate_keys_known_rejected_unknown_ignored() {
    for (field, value) in [
        ("member_id", "42"),
        ("event_id", "\"p-1\""),
        ("session_id", "null"),
    ] {
        let msg = format!("{},\"{field}\":{value}}}", &PLAY[..PLAY.len() - 1]);
        let msg = if field == "session_id" {
            msg.replacen('}', ",\"session_id\":\"s\"}", 1)
        } else {
            msg
        };
        let r = decode_play(msg.as_bytes()).unwrap_err();
        assert_eq!(r.field, field, "{msg}: {r}");
        assert!(r.rule.contains("duplicate field"), "{r}");
    }
    let msg = format!("{{\"x\":1,\"x\":[],\"x\":{{}},{}", &PLAY[1..]);
    assert!(decode_play(msg.as_bytes()).is_ok());
    // Keys are compared after unescaping: "\u0074s" is "ts".
    let msg = format!(
        "{},\"\\u0074s\":\"2026-11-21T09:10:00Z\"}}",
        &PLAY[..PLAY.len() - 1]
    );
    assert_eq!(decode_play(msg.as_bytes()).unwrap_err().field, "ts");
}
