//! The compact store against a plain map of [`KeyImpressions`] given the same changes.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::ids::{EventKey, Sym};
use crate::time::DAY_MS;

type Model = BTreeMap<Key, KeyImpressions>;

fn contents(store: &KeyStore) -> Model {
    store
        .chunks
        .iter()
        .flatten()
        .filter_map(|slot| match &slot.held {
            Held::Live(p) => Some((slot.key, p.to_impressions())),
            Held::Free(_) => None,
        })
        .collect()
}

fn rec(ts: i64, n: u64, text: bool, row: u32) -> ImpressionRecord {
    let id = if text {
        format!("t{n}")
    } else {
        format!("0f3c1a2b-0000-4000-8000-{n:012x}")
    };
    ImpressionRecord {
        ts: Ts(ts),
        event_id: EventKey::new(&id),
        row_type: Sym(row),
        row_index: 1,
        rank: 2,
    }
}

fn model_insert(m: &mut Model, key: Key, r: ImpressionRecord, f: Option<Ts>) {
    let list = m.entry(key).or_default();
    list.insert(r);
    if let Some(f) = f {
        list.compact(f, &AttributionConfig::default());
    }
    if list.is_empty() {
        m.remove(&key);
    }
}

fn model_sweep(m: &mut Model, f: Ts) {
    let cfg = AttributionConfig::default();
    m.retain(|_, list| {
        if list.as_slice().len() > 1 {
            list.compact(f, &cfg);
        }
        list.expires_at(&cfg).is_some_and(|e| e > f)
    });
}

fn check(store: &KeyStore, m: &Model) {
    assert_eq!(&contents(store), m);
    assert_eq!(store.len(), m.len());
    assert_eq!(
        store.impressions(),
        m.values().map(|l| l.as_slice().len()).sum::<usize>()
    );
    let overflow: usize = store
        .chunks
        .iter()
        .flatten()
        .map(|slot| match &slot.held {
            Held::Live(p) => p.heap_bytes(),
            Held::Free(_) => 0,
        })
        .sum();
    assert_eq!(store.bytes().overflow, overflow);
}

#[test]
fn slots_are_48_bytes() {
    assert_eq!(std::mem::size_of::<Slot>(), 48);
}

#[test]
fn many_keys_fill_chunks_expire_and_reuse_their_slots() {
    let cfg = AttributionConfig::default();
    let mut store = KeyStore::default();
    let mut m = Model::new();
    let day0 = 20_000 * DAY_MS;
    let n = 3 * CHUNK as u64 + 17;
    for i in 0..n {
        let key = (i % 997, i);
        let r = rec(
            day0 + (i % 2) as i64 * DAY_MS,
            i,
            i % 5 == 0,
            (i % 3) as u32,
        );
        store.insert(key, r.clone(), None, &cfg);
        model_insert(&mut m, key, r, None);
        if i % 7 == 0 {
            // A second impression: the pair moves to a box.
            let r2 = rec(day0 + 10, i + n, false, 1);
            store.insert(key, r2.clone(), None, &cfg);
            model_insert(&mut m, key, r2, None);
        }
    }
    check(&store, &m);
    let slots = store.chunks.iter().map(Vec::len).sum::<usize>();
    assert_eq!(slots, n as usize);
    let spare = store
        .chunks
        .iter()
        .map(|c| c.capacity() - c.len())
        .sum::<usize>();
    assert!(
        spare < CHUNK,
        "spare capacity is under one chunk, got {spare}"
    );

    // Day 0's pairs expire on day 8 (those with a second impression on day 1 on day 9).
    let f = Ts(day0 + 8 * DAY_MS);
    store.expire(f, &cfg);
    model_sweep(&mut m, f);
    check(&store, &m);
    assert!(store.len() < n as usize && !store.is_empty());

    // New pairs take the freed slots before any new one.
    let freed = n as usize - store.len();
    for i in 0..freed as u64 {
        let key = (5_000 + i, i);
        let r = rec(day0 + 9 * DAY_MS, 10 * n + i, false, 0);
        store.insert(key, r.clone(), Some(f), &cfg);
        model_insert(&mut m, key, r, Some(f));
    }
    check(&store, &m);
    assert_eq!(store.chunks.iter().map(Vec::len).sum::<usize>(), slots);

    let json = serde_json::to_string(&store).expect("serialise");
    let back: KeyStore = serde_json::from_str(&json).expect("deserialise");
    check(&back, &m);
}

#[test]
fn a_sweep_waits_for_enough_changes() {
    let cfg = AttributionConfig::default();
    let mut store = KeyStore::default();
    let day0 = 20_000 * DAY_MS;
    for i in 0..100 {
        store.insert((1, i), rec(day0, i, false, 0), None, &cfg);
    }
    store.expire(Ts(day0 + 8 * DAY_MS), &cfg);
    assert!(store.is_empty(), "the first sweep is not held back");
    for i in 0..100 {
        store.insert((2, i), rec(day0 + DAY_MS, i, false, 0), None, &cfg);
    }
    store.sweep(Ts(day0), &cfg);
    // Fewer than 110 / 4 events since that sweep: the next one waits.
    for i in 0..10 {
        store.insert((3, i), rec(day0 + 2 * DAY_MS, i, false, 0), None, &cfg);
    }
    store.expire(Ts(day0 + 9 * DAY_MS), &cfg);
    assert_eq!(store.len(), 110);
    for i in 10..40 {
        store.insert((3, i), rec(day0 + 2 * DAY_MS, i, false, 0), None, &cfg);
    }
    store.expire(Ts(day0 + 9 * DAY_MS), &cfg);
    assert_eq!(store.len(), 40);
}

#[derive(Clone, Debug)]
enum Op {
    Imp {
        member: u64,
        video: u64,
        at: i64,
        n: u64,
        text: bool,
        big_row: bool,
    },
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..=4, 1u64..=4, 0i64..(12 * DAY_MS), 0u64..40, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(member, video, at, n, text, big_row)| Op::Imp { member, video, at, n, text, big_row }),
        1 => prop_oneof![0i64..3_600_000, 0i64..(3 * DAY_MS)].prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn the_store_holds_what_a_plain_map_holds(ops in prop::collection::vec(op(), 0..200)) {
        let cfg = AttributionConfig::default();
        let day0 = 20_000 * DAY_MS;
        let mut store = KeyStore::default();
        let mut m = Model::new();
        let mut frontier: Option<Ts> = None;
        for o in ops {
            match o {
                Op::Imp { member, video, at, n, text, big_row } => {
                    // Repeats of an id share a time, as redeliveries do.
                    let at = if n < 10 { day0 + n as i64 * 3_600_000 } else { day0 + at };
                    let r = rec(at, n, text, if big_row { 70_000 } else { (n % 4) as u32 });
                    store.insert((member, video), r.clone(), frontier, &cfg);
                    model_insert(&mut m, (member, video), r, frontier);
                }
                Op::Advance(dt) => {
                    let f = Ts(frontier.map_or(day0, |f| f.0) + dt);
                    frontier = Some(f);
                    store.sweep(f, &cfg);
                    model_sweep(&mut m, f);
                }
            }
            check(&store, &m);
        }
        let json = serde_json::to_string(&store).expect("serialise");
        let back: KeyStore = serde_json::from_str(&json).expect("deserialise");
        check(&back, &m);
    }
}

impl KeyStore {
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
