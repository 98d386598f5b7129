//! The scanner against serde: whenever the scanner answers, the event (or the rejection) built from
//! its fields is the one built from serde's; and the messages producers send take the fast path.

use proptest::prelude::*;

use super::super::{impression_from, play_from, serde_object, RawEvent, FIELDS};
use super::special_bytes;

/// The scanner's fields of `text`, or `None` when it leaves the text to serde.
fn scan(text: &str) -> Option<RawEvent<'_>> {
    let mut raw = RawEvent::default();
    super::scan(text, &mut raw).map(|()| raw)
}

/// Both paths on one text: `Some(true)` when the scanner answered (and agreed), `Some(false)` when
/// it passed the text to serde. Disagreement fails the test.
fn agree(text: &str) -> Result<bool, TestCaseError> {
    let Some(mut fast) = scan(text) else {
        return Ok(false);
    };
    let mut slow = match serde_object(text) {
        Ok(slow) => slow,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "the scanner read {text:?}, which serde rejects: {e}"
            )))
        }
    };
    prop_assert_eq!(
        impression_from(&mut fast.clone()),
        impression_from(&mut slow.clone()),
        "{}",
        text
    );
    prop_assert_eq!(play_from(&mut fast), play_from(&mut slow), "{}", text);
    Ok(true)
}

/// The event fields, plus unknown and near-miss keys.
fn keys() -> Vec<&'static str> {
    let odd = ["extra", "", "Event_id", "event_id ", "ts\\u0000"];
    FIELDS.iter().copied().chain(odd).collect()
}

/// JSON values, well- and ill-formed, of every kind the scanner accepts or must refuse.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "\"2026-11-21T10:00:00.123Z\"", "\"2026-11-21T10:00:00+01:00\"", "\"home\"", "\"US\"",
            "\"tv\"", "\"trending_now\"", "\"\"", "\"é😀\"", "\"a\\\"b\"", "\"a\\u0041\"",
            "\"tab\there\"", "\"x\\n\"", "0", "7", "00", "01", "1.5", "1e3", "2E1", "-1", "-0",
            "65535", "65536", "18446744073709551615", "18446744073709551616",
            "99999999999999999999", "null", "nul", "nullx", "true", "false", "[]", "[1,2]",
            "{}", "{\"a\":1}", "\"unterminated", "", "1 2", "\"a\" \"b\"",
        ]).prop_map(str::to_owned),
        6 => "[a-z0-9_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        4 => any::<u64>().prop_map(|n| n.to_string()),
        2 => any::<u16>().prop_map(|n| n.to_string()),
        1 => Just("null".to_owned()),
        1 => "\\PC{0,6}".prop_map(|s| format!("\"{s}\"")),
        1 => "[0-9.eE+-]{1,6}",
        // Around the session_id cap, plain and escaped: both paths must reject past it alike.
        1 => (250usize..262).prop_map(|n| format!("\"{}\"", "s".repeat(n))),
        1 => (250usize..262).prop_map(|n| format!("\"\\u00e9{}\"", "s".repeat(n))),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => prop::sample::select(vec!["", "", "", " ", "\n", "\t", "\r\n"]),
        1 => prop::sample::select(vec!["\u{a0}", "\u{b}", "\u{c}"]),
    ]
}

/// An object (or a near-object) of the given members, with whitespace, separators and the
/// ends sometimes damaged.
fn message() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((prop::sample::select(keys()), value(), ws(), ws()), 0..14),
        ws(),
        prop_oneof![
            6 => Just(""),
            1 => prop::sample::select(vec!["x", ",", "}", " ", "\u{feff}", "\n"]),
        ],
        prop_oneof![
            20 => Just(","),
            1 => prop::sample::select(vec![";", ", ,", "", ",,"]),
        ],
    )
        .prop_map(|(members, pad, tail, sep)| {
            let mut s = String::from("{");
            s.push_str(pad);
            for (i, (k, v, w1, w2)) in members.iter().enumerate() {
                if i > 0 {
                    s.push_str(sep);
                }
                s.push_str(w1);
                s.push('"');
                s.push_str(k);
                s.push('"');
                s.push_str(w2);
                s.push(':');
                s.push_str(w1);
                s.push_str(v);
                s.push_str(w2);
            }
            s.push('}');
            s.push_str(pad);
            s.push_str(tail);
            s
        })
}

/// The whole valid events producers send (as `gen` and `to_json` write them), which must take
/// the fast path.
fn valid_event() -> impl Strategy<Value = String> {
    (
        "[a-z0-9-]{1,40}",
        0i64..4_102_444_800_000,
        1u64..,
        1u64..,
        "[a-z0-9_]{1,12}",
        any::<u16>(),
        any::<u16>(),
        prop::option::of("[a-z0-9-]{1,36}"),
        any::<bool>(),
    )
        .prop_map(|(id, ms, member, video, token, ri, rank, session, imp)| {
            let ts = crate::time::Ts(ms);
            if imp {
                super::super::Impression {
                    event_id: id.into(),
                    ts,
                    member_id: crate::MemberId(member),
                    video_id: crate::VideoId(video),
                    page: "home".into(),
                    row_type: token.clone().into(),
                    row_index: ri,
                    rank,
                    country: "BR".into(),
                    device: token.into(),
                }
                .to_json()
            } else {
                super::super::Play {
                    event_id: id.into(),
                    ts,
                    member_id: crate::MemberId(member),
                    video_id: crate::VideoId(video),
                    country: "US".into(),
                    device: token.into(),
                    session_id: session.map(Into::into),
                }
                .to_json()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_scanner_agrees_with_serde_whenever_it_answers(text in message()) {
        agree(&text)?;
    }

    #[test]
    fn the_scanner_agrees_with_serde_on_damaged_bytes(
        text in message(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len() + 1);
        if cut {
            bytes.truncate(i);
        } else {
            bytes.insert(i, byte);
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            agree(text)?;
        }
    }

    #[test]
    fn valid_events_take_the_fast_path(text in valid_event()) {
        prop_assert!(agree(&text)?, "not scanned: {}", text);
    }
}

/// The first special byte of a word, the slow way.
fn first_special(word: [u8; 8]) -> Option<usize> {
    word.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
}

fn first_by_bits(word: [u8; 8]) -> Option<usize> {
    let hits = special_bytes(u64::from_le_bytes(word));
    (hits != 0).then(|| (hits.trailing_zeros() / 8) as usize)
}

#[test]
fn the_word_scan_finds_the_first_special_byte_for_every_byte_at_every_place() {
    for filler in [b'a', 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
        for at in 0..8 {
            for byte in 0..=255u8 {
                let mut word = [filler; 8];
                word[at] = byte;
                assert_eq!(first_by_bits(word), first_special(word), "{word:?}");
                // A special byte after it must not hide it.
                if at < 7 {
                    word[7] = 0;
                    assert_eq!(first_by_bits(word), first_special(word), "{word:?}");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn the_word_scan_agrees_with_a_byte_scan(word in any::<[u8; 8]>()) {
        prop_assert_eq!(first_by_bits(word), first_special(word));
    }
}

#[test]
fn plain_cases_take_the_path_they_should() {
    for (text, fast) in [
        (
            r#"{"event_id":"a","ts":"2026-11-21T10:00:00Z","member_id":1}"#,
            true,
        ),
        (
            " {\n\"page\" : \"home\" , \"x\":null,\"rank\":0 } \r\n",
            true,
        ),
        ("{}", true),
        (r#"{"event_id":null,"event_id":"a"}"#, false),
        (r#"{"event_id":"a\"b"}"#, false),
        (r#"{"member_id":1.0}"#, false),
        (r#"{"member_id":-1}"#, false),
        (r#"{"member_id":18446744073709551616}"#, false),
        (r#"{"member_id":01}"#, false),
        (r#"{"extra":{"a":1}}"#, false),
        (r#"{"extra":true}"#, false),
        (r#"{"a":1}x"#, false),
        (r#"{"a":1,}"#, false),
        (r#"{"a" 1}"#, false),
        ("{\"a\":\"\u{1}\"}", false),
        ("", false),
    ] {
        let got = scan(text).is_some();
        assert_eq!(got, fast, "{text:?}");
        if got {
            assert!(serde_object(text).is_ok(), "{text:?}");
        }
    }
}

#[test]
fn the_generated_messages_exercise_both_paths() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut fast, n) = (0, 2000);
    for _ in 0..n {
        let text = message().new_tree(&mut runner).unwrap().current();
        fast += usize::from(scan(&text).is_some());
    }
    assert!(fast > n / 10 && fast < n * 9 / 10, "{fast} of {n} scanned");
}
