use super::*;

const IMP: &str = r#"{"event_id":"i-1","ts":"2026-11-21T10:00:00.123456+01:00","member_id":42,"video_id":7,
  "page":"home","row_type":"trending_now","row_index":2,"rank":0,"country":"US","device":"tv","extra":{"a":[1,2]}}"#;
const PLAY: &str = r#"{"event_id":"p-1","ts":"2026-11-21T09:10:00Z","member_id":42,"video_id":7,"country":"US","device":"tv","session_id":"s"}"#;

fn with(base: &str, field: &str, value: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
    if value == "<absent>" {
        v.as_object_mut().unwrap().remove(field);
    } else {
        v[field] = serde_json::from_str(value).unwrap();
    }
    v.to_string()
}

#[test]
fn decodes_a_valid_impression_normalising_ts() {
    let i = decode_impression(IMP.as_bytes()).unwrap();
    assert_eq!(i.ts.to_string(), "2026-11-21T09:00:00.123Z");
    assert_eq!(
        (i.member_id, i.video_id, i.row_index, i.rank),
        (MemberId(42), VideoId(7), 2, 0)
    );
    assert!(
        matches!(i.row_type, Cow::Borrowed(_)),
        "plain strings are borrowed, not copied"
    );
    let back = decode_impression(i.to_json().as_bytes())
        .unwrap()
        .into_owned();
    assert_eq!(back, i);
}

#[test]
fn decodes_a_valid_play_with_and_without_session() {
    let p = decode_play(PLAY.as_bytes()).unwrap();
    assert_eq!(p.session_id.as_deref(), Some("s"));
    let p2 = decode_play(with(PLAY, "session_id", "<absent>").as_bytes())
        .unwrap()
        .into_owned();
    assert_eq!(p2.session_id, None);
    let p3 = decode_play(with(PLAY, "session_id", "null").as_bytes())
        .unwrap()
        .into_owned();
    assert_eq!(p3.session_id, None);
    assert_eq!(decode_play(p.to_json().as_bytes()).unwrap().into_owned(), p);
}

#[test]
fn accepts_new_row_types_and_escaped_strings() {
    let i = decode_impression(with(IMP, "row_type", r#""brand_new_row_2027""#).as_bytes())
        .unwrap()
        .into_owned();
    assert_eq!(i.row_type, "brand_new_row_2027");
    let i = decode_impression(with(IMP, "event_id", r#""a\"b""#).as_bytes())
        .unwrap()
        .into_owned();
    assert_eq!(i.event_id, "a\"b");
}

#[test]
fn each_rule_is_named_in_the_rejection() {
    let cases: &[(&str, &str, &str)] = &[
        ("event_id", "<absent>", "missing"),
        ("event_id", r#""""#, "1 to 128 bytes"),
        (
            "event_id",
            &format!("{:?}", "x".repeat(129)),
            "1 to 128 bytes",
        ),
        ("ts", r#""2026-11-21T10:00:00""#, "RFC 3339"),
        ("ts", "1700000000", "must be a string"),
        ("member_id", "0", "from 1"),
        ("member_id", "-5", "from 1"),
        ("member_id", r#""42""#, "from 1"),
        ("member_id", "1.5", "from 1"),
        ("member_id", "18446744073709551616", "from 1"),
        ("video_id", "null", "missing"),
        ("page", r#""Home""#, "[a-z0-9_]"),
        ("row_type", r#""unattributed""#, "reserved"),
        ("row_type", &format!("{:?}", "a".repeat(65)), "[a-z0-9_]"),
        ("row_index", "65536", "0 to 65535"),
        ("rank", "-1", "0 to 65535"),
        ("country", r#""us""#, "ISO 3166-1"),
        ("country", r#""ZZ""#, "ISO 3166-1"),
        ("device", r#""smart-tv""#, "[a-z0-9_]"),
    ];
    for (field, value, rule) in cases {
        let msg = with(IMP, field, value);
        let err = decode_impression(msg.as_bytes()).unwrap_err();
        assert_eq!(err.field, *field, "{msg} -> {err}");
        assert!(err.to_string().contains(rule), "{field}={value}: {err}");
    }
    let err = decode_play(with(PLAY, "session_id", "5").as_bytes()).unwrap_err();
    assert_eq!(err.field, "session_id");
}

#[test]
fn boundary_values_are_accepted() {
    let msg = with(
        with(IMP, "member_id", "18446744073709551615").as_str(),
        "rank",
        "65535",
    );
    let i = decode_impression(msg.as_bytes()).unwrap();
    assert_eq!((i.member_id.0, i.rank), (u64::MAX, 65535));
    decode_impression(with(IMP, "event_id", &format!("{:?}", "é".repeat(64))).as_bytes()).unwrap();
    decode_impression(with(IMP, "page", &format!("{:?}", "a".repeat(64))).as_bytes()).unwrap();
}

#[test]
fn non_objects_and_bad_bytes_are_rejected_not_panicking() {
    for bad in [
        &b"not json"[..],
        b"",
        b"[]",
        b"42",
        b"null",
        b"{\"ts\":",
        b"\xff\xfe",
        b"{\"ts\":\"x\",\"ts\":\"y\"}",
    ] {
        let err = decode_impression(bad).unwrap_err();
        assert!(!err.rule.is_empty());
    }
    let dup = decode_play(br#"{"ts":"a","ts":"b"}"#).unwrap_err();
    assert_eq!(dup.field, "ts", "{dup}");
}

#[test]
fn country_list_is_sorted_and_complete() {
    assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
    for c in ["US", "GB", "BR", "IN", "JP", "DE", "KR", "MX", "SS", "BQ"] {
        assert!(is_country(c), "{c}");
    }
    for c in [
        "UK", "EU", "XX", "ZZ", "U", "USA", "us", "Us", "", "@A", "A[", "É",
    ] {
        assert!(!is_country(c), "{c}");
    }
}

#[test]
fn the_country_bitmap_agrees_with_the_list_on_every_pair_of_bytes() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let bytes = [a, b];
            let Ok(s) = std::str::from_utf8(&bytes) else {
                continue;
            };
            assert_eq!(is_country(s), COUNTRIES.binary_search(&s).is_ok(), "{s:?}");
        }
    }
}

#[test]
fn session_id_is_capped_at_256_bytes_in_both_decoding_paths() {
    let ok = with(PLAY, "session_id", &format!("\"{}\"", "s".repeat(256)));
    assert_eq!(
        decode_play(ok.as_bytes())
            .unwrap()
            .session_id
            .as_deref()
            .map(str::len),
        Some(256)
    );
    let long = "s".repeat(257);
    // Plain (the scanner's path) and with an escape (serde's path).
    for value in [format!("\"{long}\""), format!("\"\\u0073{}\"", &long[1..])] {
        let text = with(PLAY, "session_id", &value);
        let e = decode_play(text.as_bytes()).unwrap_err();
        assert_eq!(e.field, "session_id", "{text}");
        assert_eq!(e.rule, "must be at most 256 bytes long, got 257 bytes");
    }
    let huge = with(PLAY, "session_id", &format!("\"{}\"", "x".repeat(1 << 20)));
    assert_eq!(
        decode_play(huge.as_bytes()).unwrap_err().field,
        "session_id"
    );
}

fn ts(s: &str) -> Ts {
    Ts::parse_rfc3339(s).unwrap()
}

#[test]
fn an_event_far_ahead_of_both_its_message_timestamp_and_the_clock_is_rejected() {
    let clock = ts("2026-11-21T10:00:00Z");
    let m = DEFAULT_MAX_FUTURE_MS;
    let e = check_not_future(ts("2099-01-01T00:00:00Z"), Some(clock), clock, m).unwrap_err();
    assert_eq!(e.field, "ts");
    assert!(e.rule.contains("2099-01-01T00:00:00.000Z"), "{}", e.rule);
    assert!(e.rule.contains("300 s ahead"), "{}", e.rule);
    // Without a message timestamp the clock alone decides.
    assert!(check_not_future(ts("2099-01-01T00:00:00Z"), None, clock, m).is_err());
    // Exactly max_future ahead is fine; a millisecond more is not.
    assert!(check_not_future(ts("2026-11-21T10:05:00Z"), Some(clock), clock, m).is_ok());
    assert!(check_not_future(ts("2026-11-21T10:05:00.001Z"), Some(clock), clock, m).is_err());
    // Ahead of one but not the other: accepted (a slow producer clock, or a lagging stream).
    let later = ts("2026-11-21T11:00:00Z");
    assert!(check_not_future(ts("2026-11-21T10:30:00Z"), Some(later), clock, m).is_ok());
    assert!(check_not_future(ts("2026-11-21T10:30:00Z"), Some(clock), later, m).is_ok());
    // Past events and extreme values never overflow.
    assert!(check_not_future(ts("2000-01-01T00:00:00Z"), None, clock, m).is_ok());
    assert!(check_not_future(Ts(i64::MAX), Some(Ts(i64::MAX)), Ts(i64::MAX), i64::MAX).is_ok());
}

proptest::proptest! {
    #[test]
    fn the_future_rule_rejects_exactly_past_both_bounds(
        t in -10_000_000i64..10_000_000,
        msg in proptest::option::of(-10_000_000i64..10_000_000),
        clock in -10_000_000i64..10_000_000,
        max in 0i64..1_000_000,
    ) {
        let rejected = check_not_future(Ts(t), msg.map(Ts), Ts(clock), max).is_err();
        let bound = msg.map_or(clock, |m| m.max(clock));
        proptest::prop_assert_eq!(rejected, t > bound + max);
    }
}
