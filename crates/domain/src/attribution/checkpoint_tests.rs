//! Law: an engine restored from its checkpoint layers (a full one, then incremental ones, merged
//! in any grouping) behaves exactly as the live engine on whatever follows.

use std::borrow::Cow;

use proptest::prelude::*;

use super::*;
use crate::attribution::Output;
use crate::event::{Impression, Play};
use crate::ids::{MemberId, VideoId};
use crate::time::{DAY_MS, HOUR_MS};

/// One input event: a play or an impression, at an offset from the start, of a small key space.
#[derive(Clone, Debug)]
struct Ev {
    play: bool,
    at: i64,
    member: u64,
    video: u64,
    id: u32,
}

fn feed(e: &mut Engine, ev: &Ev, out: &mut Vec<Output>) {
    let ts = Ts(1_790_000_000_000 + ev.at);
    let id = Cow::Owned(format!("0f3c1a2b-0000-4000-8000-{:012x}", ev.id));
    if ev.play {
        e.on_play(
            &Play {
                event_id: id,
                ts,
                member_id: MemberId(ev.member),
                video_id: VideoId(ev.video),
                country: "US".into(),
                device: "tv".into(),
                session_id: None,
            },
            out,
        );
    } else {
        e.on_impression(
            &Impression {
                event_id: id,
                ts,
                member_id: MemberId(ev.member),
                video_id: VideoId(ev.video),
                page: "home".into(),
                row_type: if ev.id % 2 == 0 {
                    "top_picks"
                } else {
                    "trending_now"
                }
                .into(),
                row_index: (ev.id % 5) as u16,
                rank: 1,
                country: "US".into(),
                device: "tv".into(),
            },
            out,
        );
    }
}

/// Events in roughly ascending time over 12 days (so sweeps expire pairs), with disorder around
/// the allowed lateness, repeats of play ids (de-duplication) and a few keys.
fn workload() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            any::<bool>(),
            0i64..(10 * 60_000),
            1u64..=4,
            1u64..=3,
            0u32..400,
            0u8..10,
        ),
        1..300,
    )
    .prop_map(|raw| {
        let step = 12 * DAY_MS / raw.len() as i64;
        raw.into_iter()
            .enumerate()
            .map(|(i, (play, jitter, member, video, id, jump))| Ev {
                play,
                // Now and then a jump back by up to 10 minutes: some too late, some not.
                at: i as i64 * step - if jump == 0 { jitter } else { 0 }
                    + (id as i64 % 7) * HOUR_MS / 60,
                member,
                video,
                id,
            })
            .collect()
    })
}

/// Where to take layers (event indexes) and which of them are full.
fn cuts() -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((0usize..300, prop::bool::weighted(0.15)), 0..8)
}

type Layer = (LayerHead, Vec<Pair>);

fn take(e: &mut Engine, full: bool) -> Layer {
    let (head, pairs) = e.take_layer(full);
    (head, pairs.into_sorted().collect())
}

/// The engine a chain of layers restores, merging the chain from its last full layer.
fn restore(chain: &[Layer]) -> Engine {
    let from = chain.iter().rposition(|(h, _)| h.is_full()).unwrap_or(0);
    let chain = &chain[from..];
    let mut pairs: Box<dyn Iterator<Item = Pair>> = Box::new(chain[0].1.clone().into_iter());
    for (head, changed) in &chain[1..] {
        pairs = Box::new(
            overlay(pairs, head, changed.clone().into_iter())
                .collect::<Vec<_>>()
                .into_iter(),
        );
    }
    let head = LayerHead::merge(chain.iter().map(|(h, _)| h.clone()).collect()).unwrap();
    Engine::from_layer(head, pairs)
}

/// The state both engines act on. Not the number of pairs: when a sweep drops expired pairs is
/// the store's own scheduling (a restored store sweeps at its first chance), and expired pairs
/// are never used, so the outputs compared around this are what must match.
fn same(a: &Engine, b: &Engine) -> Result<(), TestCaseError> {
    let (x, y) = (a.stats(), b.stats());
    prop_assert_eq!(
        (x.pending_plays, x.dedup_ids),
        (y.pending_plays, y.dedup_ids)
    );
    prop_assert_eq!(a.impressions_high_water(), b.impressions_high_water());
    prop_assert_eq!(a.plays_high_water(), b.plays_high_water());
    Ok(())
}

proptest! {
    #[test]
    fn restored_from_layers_behaves_as_the_live_engine(evs in workload(), cuts in cuts(), split in 0usize..300) {
        let split = split.min(evs.len());
        let mut live = Engine::new(AttributionConfig::default());
        let mut chain: Vec<Layer> = Vec::new();
        let mut sink = Vec::new();
        for (i, ev) in evs[..split].iter().enumerate() {
            feed(&mut live, ev, &mut sink);
            for &(_, full) in cuts.iter().filter(|(at, _)| *at == i) {
                chain.push(take(&mut live, full));
            }
        }
        chain.push(take(&mut live, false));
        prop_assert!(chain[0].0.is_full(), "the first layer is full");
        let mut restored = restore(&chain);
        same(&live, &restored)?;

        // Half of what follows, then a layer of the restored engine on top of the merged chain.
        let rest = &evs[split..];
        let half = rest.len() / 2;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for ev in &rest[..half] {
            feed(&mut live, ev, &mut a);
            feed(&mut restored, ev, &mut b);
        }
        prop_assert_eq!(&a, &b);
        let merged = {
            let e = restore(&chain);
            let mut e = e;
            take(&mut e, true)
        };
        let next = take(&mut restored, false);
        prop_assert!(!next.0.is_full());
        let mut again = restore(&[merged, next]);
        same(&live, &again)?;
        let (mut a, mut c) = (Vec::new(), Vec::new());
        for ev in &rest[half..] {
            feed(&mut live, ev, &mut a);
            feed(&mut again, ev, &mut c);
        }
        prop_assert_eq!(a, c);
        same(&live, &again)?;
    }
}

#[test]
fn an_incremental_layer_holds_only_what_changed() {
    let mut e = Engine::new(AttributionConfig::default());
    let mut out = Vec::new();
    for k in 0..1000u64 {
        feed(
            &mut e,
            &Ev {
                play: false,
                at: k as i64,
                member: k,
                video: 1,
                id: k as u32,
            },
            &mut out,
        );
    }
    let (first, pairs) = e.take_layer(false);
    assert!(first.is_full());
    assert_eq!(pairs.len(), 1000);
    for k in 0..10u64 {
        feed(
            &mut e,
            &Ev {
                play: false,
                at: 2000 + k as i64,
                member: k * 7,
                video: 2,
                id: 5000 + k as u32,
            },
            &mut out,
        );
    }
    let (next, pairs) = e.take_layer(false);
    assert!(!next.is_full());
    assert_eq!(pairs.len(), 10);
    let (_, pairs) = e.take_layer(false);
    assert!(pairs.is_empty(), "nothing changed since the last layer");
}

proptest! {
    /// A layer copied a slice at a time while events keep coming holds the state where it began:
    /// the same as a layer taken at once there, and with the layers after it restores an engine
    /// that behaves as the live one.
    #[test]
    fn a_layer_taken_in_slices_is_the_state_where_it_began(
        evs in workload(),
        cut in (0usize..300, 0usize..300),
        first_full in any::<bool>(),
        full in any::<bool>(),
        work in 1usize..6,
        every in 0usize..4,
    ) {
        let a = cut.0.min(evs.len());
        let b = (a + cut.1).min(evs.len());
        let mut live = Engine::new(AttributionConfig::default());
        let mut sink = Vec::new();
        let mut chain: Vec<Layer> = Vec::new();
        for ev in &evs[..a / 2] {
            feed(&mut live, ev, &mut sink);
        }
        chain.push(take(&mut live, first_full));
        for ev in &evs[a / 2..a] {
            feed(&mut live, ev, &mut sink);
        }
        let expected = take(&mut live.clone(), full);

        let head = live.begin_layer(full);
        let mut during = evs[a..b].iter();
        loop {
            for ev in during.by_ref().take(every) {
                feed(&mut live, ev, &mut sink);
            }
            if live.continue_layer(work) {
                break;
            }
        }
        let pairs: Vec<Pair> = live.finish_layer().unwrap_or_default().into_sorted().collect();
        prop_assert!(!live.layer_in_progress());
        prop_assert_eq!(head.is_full(), expected.0.is_full());
        prop_assert_eq!(&head.removed, &expected.0.removed);
        prop_assert_eq!(head.swept, expected.0.swept);
        prop_assert_eq!(&head.seen, &expected.0.seen);
        prop_assert_eq!(&pairs, &expected.1);
        chain.push((head, pairs));

        for ev in during {
            feed(&mut live, ev, &mut sink);
        }
        chain.push(take(&mut live, false));
        let mut restored = restore(&chain);
        same(&live, &restored)?;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for ev in &evs[b..] {
            feed(&mut live, ev, &mut x);
            feed(&mut restored, ev, &mut y);
        }
        prop_assert_eq!(x, y);
        same(&live, &restored)?;
    }
}

#[test]
fn a_layer_begun_while_another_is_taken_is_full() {
    let mut e = Engine::new(AttributionConfig::default());
    let mut out = Vec::new();
    for k in 0..100u64 {
        let ev = Ev {
            play: false,
            at: k as i64,
            member: k,
            video: 1,
            id: k as u32,
        };
        feed(&mut e, &ev, &mut out);
    }
    let _ = e.take_layer(false);
    let ev = Ev {
        play: false,
        at: 500,
        member: 3,
        video: 2,
        id: 900,
    };
    feed(&mut e, &ev, &mut out);
    assert!(!e.begin_layer(false).is_full());
    assert!(e.layer_in_progress());
    let again = e.begin_layer(false);
    assert!(
        again.is_full(),
        "the abandoned layer's changes are only in a full one"
    );
    assert_eq!(e.finish_layer().map(|p| p.len()), Some(101));
    assert!(e.finish_layer().is_none());
}
