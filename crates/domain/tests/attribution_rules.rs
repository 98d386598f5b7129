//! One test per rule edge of docs/reference.md §3 and the event-time handling of §4.

mod common;

use common::*;
use playsource_domain::attribution::bulk::Bulk;
use playsource_domain::attribution::{AttributionConfig, Engine, Verdict};

fn cfg() -> AttributionConfig {
    AttributionConfig::default()
}

/// (sop event id, sod event id) of one play against some impressions, through the bulk path.
fn sources(
    imps: &[playsource_domain::Impression<'static>],
    p: &playsource_domain::Play<'static>,
) -> (Option<String>, Option<String>) {
    let mut b = Bulk::new(cfg());
    for i in imps {
        b.add_impression(i);
    }
    let (_, a) = b.attribute(p).expect("not a repeat");
    (
        a.sop.map(|i| i.event_id.to_string()),
        a.sod.map(|i| i.event_id.to_string()),
    )
}

#[test]
fn ties_on_ts_break_by_event_id() {
    let imps = [
        imp("b", "2026-11-21T10:00:00Z", 1, 1, "top_picks"),
        imp("a", "2026-11-21T10:00:00Z", 1, 1, "billboard"),
    ];
    let p = play("p", "2026-11-21T10:05:00Z", 1, 1);
    assert_eq!(sources(&imps, &p), (Some("b".into()), Some("a".into())));
}

#[test]
fn sop_window_is_inclusive_to_the_millisecond() {
    let p = play("p", "2026-11-21T10:30:00Z", 1, 1);
    let at_edge = [imp("i", "2026-11-21T10:00:00Z", 1, 1, "top_picks")];
    assert_eq!(sources(&at_edge, &p).0, Some("i".into()));
    let past_edge = [imp("i", "2026-11-21T09:59:59.999Z", 1, 1, "top_picks")];
    assert_eq!(sources(&past_edge, &p), (None, Some("i".into())));
}

#[test]
fn impression_at_the_plays_exact_millisecond_counts_and_later_ones_do_not() {
    let p = play("p", "2026-11-21T10:00:00.500Z", 1, 1);
    let same = [imp("i", "2026-11-21T10:00:00.500Z", 1, 1, "top_picks")];
    assert_eq!(sources(&same, &p), (Some("i".into()), Some("i".into())));
    let after = [imp("i", "2026-11-21T10:00:00.501Z", 1, 1, "top_picks")];
    assert_eq!(sources(&after, &p), (None, None));
}

#[test]
fn sod_lookback_counts_whole_utc_days() {
    let p = play("p", "2026-11-21T00:00:01Z", 1, 1);
    let first_day = [imp("in", "2026-11-14T00:00:00Z", 1, 1, "billboard")];
    assert_eq!(sources(&first_day, &p).1, Some("in".into()));
    let day_before = [imp("out", "2026-11-13T23:59:59.999Z", 1, 1, "billboard")];
    assert_eq!(sources(&day_before, &p).1, None);
    // The earliest in the lookback wins, not the earliest ever.
    let both = [
        day_before[0].clone(),
        first_day[0].clone(),
        imp("late", "2026-11-20T10:00:00Z", 1, 1, "top_picks"),
    ];
    assert_eq!(sources(&both, &p).1, Some("in".into()));
}

#[test]
fn offsets_and_microseconds_normalise_before_comparing() {
    // 11:00:00.000999+01:00 is 10:00:00.000Z once truncated: exactly 30 minutes before the play.
    let imps = [imp(
        "i",
        "2026-11-21T11:00:00.000999+01:00",
        1,
        1,
        "top_picks",
    )];
    let p = play("p", "2026-11-21T10:30:00Z", 1, 1);
    assert_eq!(sources(&imps, &p).0, Some("i".into()));
}

#[test]
fn other_members_and_videos_never_match() {
    let imps = [
        imp("m", "2026-11-21T10:00:00Z", 2, 1, "top_picks"),
        imp("v", "2026-11-21T10:00:00Z", 1, 2, "top_picks"),
    ];
    let p = play("p", "2026-11-21T10:05:00Z", 1, 1);
    assert_eq!(sources(&imps, &p), (None, None));
}

#[test]
fn repeated_plays_count_once_in_both_paths() {
    let p = play("p", "2026-11-21T10:05:00Z", 1, 1);
    let mut b = Bulk::new(cfg());
    assert!(b.attribute(&p).is_some());
    assert!(b.attribute(&p).is_none());
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    assert_eq!(e.on_play(&p, &mut out), Verdict::Accepted);
    assert_eq!(e.on_play(&p, &mut out), Verdict::Duplicate);
    assert_eq!(out.len(), 1);
}

#[test]
fn lateness_is_per_topic_and_exclusive_at_the_bound() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    assert_eq!(
        e.on_impression(&imp("a", "2026-11-21T10:10:00Z", 1, 1, "x"), &mut out),
        Verdict::Accepted
    );
    assert_eq!(
        e.on_impression(&imp("b", "2026-11-21T10:05:00Z", 1, 1, "x"), &mut out),
        Verdict::Accepted,
        "exactly 5 min behind"
    );
    assert_eq!(
        e.on_impression(&imp("c", "2026-11-21T10:04:59.999Z", 1, 1, "x"), &mut out),
        Verdict::TooLate
    );
    // The plays topic has its own watermark: an old play is fine while plays are young.
    assert_eq!(
        e.on_play(&play("p1", "2026-11-21T09:00:00Z", 1, 1), &mut out),
        Verdict::Accepted
    );
    assert_eq!(
        e.on_play(&play("p2", "2026-11-21T09:10:00Z", 1, 1), &mut out),
        Verdict::Accepted
    );
    assert_eq!(
        e.on_play(&play("p3", "2026-11-21T09:04:59.999Z", 1, 1), &mut out),
        Verdict::TooLate
    );
    // A repeat of a too-late play is a repeat, not a second late play.
    assert_eq!(
        e.on_play(&play("p3", "2026-11-21T09:04:59.999Z", 1, 1), &mut out),
        Verdict::Duplicate
    );
}

#[test]
fn a_play_before_its_impression_is_corrected() {
    let inputs = vec![
        Input::Play(play("p", "2026-11-21T10:05:00Z", 1, 1)),
        Input::Imp(imp("i", "2026-11-21T10:01:00Z", 1, 1, "top_picks")),
    ];
    let (_, finals) = run_engine(cfg(), &inputs);
    assert_eq!(finals[0].3, "top_picks");
    assert_eq!(finals[0].4, "top_picks");
}

#[test]
fn finalised_plays_are_not_corrected_and_late_impressions_are_dropped() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    e.on_play(&play("p", "2026-11-21T10:00:00Z", 1, 1), &mut out);
    assert_eq!(e.stats().pending_plays, 1);
    e.on_impression(&imp("far", "2026-11-21T10:06:00Z", 9, 9, "x"), &mut out);
    assert_eq!(
        e.stats().pending_plays,
        0,
        "impressions watermark passed the play"
    );
    assert_eq!(
        e.on_impression(&imp("i", "2026-11-21T09:59:00Z", 1, 1, "x"), &mut out),
        Verdict::TooLate
    );
    assert_eq!(out.len(), 1);
}

#[test]
fn state_expires_after_the_lookback() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    for v in 1..=100 {
        e.on_impression(
            &imp(&format!("i{v}"), "2026-11-01T10:00:00Z", 1, v, "x"),
            &mut out,
        );
    }
    e.on_play(&play("p0", "2026-11-01T10:10:00Z", 1, 1), &mut out);
    assert_eq!(e.stats().keys, 100);
    e.on_play(&play("p1", "2026-11-08T23:59:00Z", 1, 1), &mut out);
    assert_eq!(
        e.stats().keys,
        100,
        "still inside the lookback of a play on 11-08"
    );
    e.on_play(&play("p2", "2026-11-09T00:06:00Z", 1, 1), &mut out);
    assert_eq!(
        e.stats().keys,
        0,
        "no play from 11-09 on can look back to 11-01"
    );
    // p1 found the impression for SoD; the SoD of a play 8 days later does not.
    assert!(out[1].current.sod.is_some());
    assert!(out[2].current.sod.is_none());
}

#[test]
fn only_first_of_day_and_recent_impressions_are_kept() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    e.on_play(&play("p0", "2026-11-05T00:00:00Z", 7, 7), &mut out);
    for h in 0..24 {
        e.on_impression(
            &imp_ms(
                &format!("i{h}"),
                ts("2026-11-01T00:00:00Z").0 + h * 3_600_000,
                1,
                1,
                "x",
            ),
            &mut out,
        );
    }
    // Everything is before the plays' frontier: only 11-01's first impression is worth keeping.
    assert_eq!((e.stats().keys, e.stats().impressions), (1, 1));
}

#[test]
fn a_snapshot_restores_the_engine_exactly() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    e.on_impression(
        &imp("i", "2026-11-21T10:00:00Z", 1, 1, "top_picks"),
        &mut out,
    );
    e.on_play(&play("p", "2026-11-21T10:02:00Z", 1, 1), &mut out);
    let json = serde_json::to_string(&e).expect("serialise");
    let mut back: Engine = serde_json::from_str(&json).expect("deserialise");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let later = imp("j", "2026-11-21T10:01:00Z", 1, 1, "billboard");
    e.on_impression(&later, &mut a);
    back.on_impression(&later, &mut b);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1, "the pending play was corrected in both");
    assert_eq!(
        back.on_play(&play("p", "2026-11-21T10:02:00Z", 1, 1), &mut b),
        Verdict::Duplicate
    );
}

#[test]
fn compaction_keeps_the_last_impression_a_late_play_can_still_use() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    // Plays' frontier: 10:00 - 5 min = 09:55. An impression exactly one SoP window before it...
    e.on_play(&play("p0", "2026-11-21T10:00:00Z", 9, 9), &mut out);
    e.on_impression(
        &imp("old", "2026-11-21T09:20:00Z", 1, 1, "billboard"),
        &mut out,
    );
    e.on_impression(
        &imp("i", "2026-11-21T09:25:00Z", 1, 1, "top_picks"),
        &mut out,
    );
    // ...is still the SoP of a play arriving exactly at the allowed lateness.
    assert_eq!(
        e.on_play(&play("p1", "2026-11-21T09:55:00Z", 1, 1), &mut out),
        Verdict::Accepted
    );
    let last = out.last().expect("an output");
    assert_eq!(
        last.current.sop.as_ref().map(|i| i.event_id.to_string()),
        Some("i".into())
    );
    assert_eq!(
        last.current.sod.as_ref().map(|i| i.event_id.to_string()),
        Some("old".into())
    );
}

#[test]
fn corrections_carry_what_the_play_was_counted_under() {
    let mut e = Engine::new(cfg());
    let mut out = Vec::new();
    e.on_play_counted_as(
        &play("p", "2026-11-21T10:05:00Z", 1, 1),
        "drama",
        true,
        &mut out,
    );
    e.on_impression(
        &imp("i", "2026-11-21T10:01:00Z", 1, 1, "top_picks"),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    for o in &out {
        let (genre, new_launch) = o.play.counted_as.expect("recorded");
        assert_eq!((e.names().resolve(genre), new_launch), ("drama", true));
    }
    assert_eq!(out[1].revision, 1);
    // Without a label, nothing is recorded.
    e.on_play(&play("q", "2026-11-21T10:06:00Z", 2, 2), &mut out);
    assert_eq!(out[2].play.counted_as, None);
}
