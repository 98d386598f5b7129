//! Builders shared by the domain's integration tests.
#![allow(dead_code)]

use std::borrow::Cow;

use playsource_domain::attribution::{Attribution, AttributionConfig, Engine, Output};
use playsource_domain::{Impression, MemberId, Play, Ts, VideoId};

pub fn ts(s: &str) -> Ts {
    Ts::parse_rfc3339(s).expect("test timestamp")
}

pub fn imp(id: &str, at: &str, member: u64, video: u64, row: &str) -> Impression<'static> {
    imp_ms(id, ts(at).0, member, video, row)
}

pub fn imp_ms(id: &str, at: i64, member: u64, video: u64, row: &str) -> Impression<'static> {
    Impression {
        event_id: Cow::Owned(id.into()),
        ts: Ts(at),
        member_id: MemberId(member),
        video_id: VideoId(video),
        page: Cow::Borrowed("home"),
        row_type: Cow::Owned(row.into()),
        row_index: 1,
        rank: 2,
        country: Cow::Borrowed("US"),
        device: Cow::Borrowed("tv"),
    }
}

pub fn play(id: &str, at: &str, member: u64, video: u64) -> Play<'static> {
    play_ms(id, ts(at).0, member, video)
}

pub fn play_ms(id: &str, at: i64, member: u64, video: u64) -> Play<'static> {
    Play {
        event_id: Cow::Owned(id.into()),
        ts: Ts(at),
        member_id: MemberId(member),
        video_id: VideoId(video),
        country: Cow::Borrowed("US"),
        device: Cow::Borrowed("tv"),
        session_id: None,
    }
}

/// (play id, SoP impression id, SoD impression id, SoP row, SoD row).
pub type Final = (String, Option<String>, Option<String>, String, String);

/// An input event in delivery order.
#[derive(Clone, Debug)]
pub enum Input {
    Imp(Impression<'static>),
    Play(Play<'static>),
}

/// Final (sop row, sop id, sod row, sod id) per play event id, after every correction, checking
/// that each correction retracts exactly what was last published for that play.
pub fn run_engine(cfg: AttributionConfig, inputs: &[Input]) -> (Engine, Vec<Final>) {
    let mut engine = Engine::new(cfg);
    let mut outputs: Vec<Output> = Vec::new();
    for i in inputs {
        match i {
            Input::Imp(x) => engine.on_impression(x, &mut outputs),
            Input::Play(x) => engine.on_play(x, &mut outputs),
        };
    }
    let mut last: std::collections::BTreeMap<String, (u32, Attribution)> = Default::default();
    for o in &outputs {
        let id = o.play.event_id.to_string();
        match (&o.previous, last.get(&id)) {
            (None, None) => assert_eq!(o.revision, 0),
            (Some(prev), Some((rev, cur))) => {
                assert_eq!(prev, cur, "a correction retracts what was published");
                assert_eq!(o.revision, rev + 1);
            }
            (p, l) => panic!("output sequence broken for {id}: previous {p:?}, last {l:?}"),
        }
        last.insert(id, (o.revision, o.current.clone()));
    }
    let names = engine.names().clone();
    let row = |a: &Option<playsource_domain::ImpressionRecord>| {
        a.as_ref().map_or("unattributed".to_string(), |i| {
            names.resolve(i.row_type).to_string()
        })
    };
    let finals = last
        .into_iter()
        .map(|(id, (_, a))| {
            (
                id,
                a.sop.as_ref().map(|i| i.event_id.to_string()),
                a.sod.as_ref().map(|i| i.event_id.to_string()),
                row(&a.sop),
                row(&a.sod),
            )
        })
        .collect();
    (engine, finals)
}
