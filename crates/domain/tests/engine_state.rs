//! The engine's compact state on random workloads with UUID event ids (the packed form) mixed
//! with text ids, over enough days for pairs to expire: it attributes exactly as the naive
//! reference, also when restored from a snapshot midway.

mod common;

use common::*;
use playsource_domain::attribution::{reference, AttributionConfig, Engine, Output};
use playsource_domain::{Impression, Play, DAY_MS};
use proptest::prelude::*;

const ROWS: [&str; 3] = ["billboard", "top_picks", "trending_now"];

#[derive(Clone, Debug)]
struct Ev {
    play: bool,
    at: i64,
    member: u64,
    video: u64,
    row: usize,
    text_id: bool,
}

fn id(n: usize, e: &Ev) -> String {
    let kind = if e.play { 9 } else { 8 };
    if e.text_id {
        format!("{}{n:03}", if e.play { "p" } else { "i" })
    } else {
        format!("0f3c1a2b-0000-4000-{kind}000-{n:012x}")
    }
}

fn workload() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            prop::bool::weighted(0.3),
            0i64..(12 * DAY_MS),
            1u64..=3,
            1u64..=3,
            0usize..ROWS.len(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(play, at, member, video, row, text_id)| Ev {
                play,
                at: ts("2026-11-01T00:00:00Z").0 + at,
                member,
                video,
                row,
                text_id,
            }),
        0..80,
    )
    .prop_map(|mut v| {
        v.sort_by_key(|e| e.at);
        v
    })
}

fn split(evs: &[Ev]) -> (Vec<Impression<'static>>, Vec<Play<'static>>) {
    let mut imps = Vec::new();
    let mut plays = Vec::new();
    for (n, e) in evs.iter().enumerate() {
        if e.play {
            plays.push(play_ms(&id(n, e), e.at, e.member, e.video));
        } else {
            imps.push(imp_ms(&id(n, e), e.at, e.member, e.video, ROWS[e.row]));
        }
    }
    (imps, plays)
}

fn feed(engine: &mut Engine, e: &Ev, n: usize, out: &mut Vec<Output>) {
    if e.play {
        engine.on_play(&play_ms(&id(n, e), e.at, e.member, e.video), out);
    } else {
        engine.on_impression(
            &imp_ms(&id(n, e), e.at, e.member, e.video, ROWS[e.row]),
            out,
        );
    }
}

/// (play id, SoP id, SoD id, SoP row, SoD row) of each play's last output, in play id order.
fn finals(runs: &[(Engine, Vec<Output>)]) -> Vec<Final> {
    let last: std::collections::BTreeMap<String, Final> = runs
        .iter()
        .flat_map(|(engine, outs)| {
            let row = |a: &Option<playsource_domain::ImpressionRecord>| {
                a.as_ref().map_or("unattributed".to_string(), |i| {
                    engine.names().resolve(i.row_type).to_string()
                })
            };
            outs.iter()
                .map(|o| {
                    (
                        o.play.event_id.to_string(),
                        o.current.sop.as_ref().map(|i| i.event_id.to_string()),
                        o.current.sod.as_ref().map(|i| i.event_id.to_string()),
                        row(&o.current.sop),
                        row(&o.current.sod),
                    )
                })
                .collect::<Vec<_>>()
        })
        .map(|f| (f.0.clone(), f))
        .collect();
    last.into_values().collect()
}

proptest! {
    #[test]
    fn compact_state_attributes_like_the_reference(evs in workload(), cut in 0usize..80) {
        let cfg = AttributionConfig::default();
        let (imps, plays) = split(&evs);
        let expected: Vec<Final> = reference::attribute(&cfg, &imps, &plays)
            .into_iter()
            .map(|a| (a.play_event_id, a.sop_event_id, a.sod_event_id, a.sop_row, a.sod_row))
            .collect();

        // In ts order nothing is late or corrected: each play's one output is final.
        let mut whole = Engine::new(cfg);
        let mut out = Vec::new();
        for (n, e) in evs.iter().enumerate() {
            feed(&mut whole, e, n, &mut out);
        }
        prop_assert_eq!(finals(&[(whole.clone(), out)]), expected.clone());
        let s = whole.stats();
        prop_assert_eq!(
            s.bytes,
            s.index_bytes + s.slot_bytes + s.overflow_bytes + s.pending_bytes + s.dedup_bytes
        );

        // Snapshot midway, restore, go on.
        let cut = cut.min(evs.len());
        let mut first = Engine::new(cfg);
        let mut before = Vec::new();
        for (n, e) in evs.iter().enumerate().take(cut) {
            feed(&mut first, e, n, &mut before);
        }
        let json = serde_json::to_string(&first).expect("serialise");
        let mut restored: Engine = serde_json::from_str(&json).expect("deserialise");
        prop_assert_eq!(
            (restored.stats().keys, restored.stats().impressions),
            (first.stats().keys, first.stats().impressions)
        );
        let mut after = Vec::new();
        for (n, e) in evs.iter().enumerate().skip(cut) {
            feed(&mut restored, e, n, &mut after);
        }
        prop_assert_eq!(finals(&[(first, before), (restored, after)]), expected);
    }
}
