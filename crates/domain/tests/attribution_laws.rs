//! Laws of the attribution engine, on random workloads (`PROPTEST_CASES` sets the count; CI runs
//! 10 000): the incremental engine, fed the two topics in any interleaving and with any disorder
//! within the allowed lateness (redeliveries included), ends with exactly the naive reference's
//! attribution and counts, and so does the bulk path.

mod common;

use common::*;
use playsource_domain::aggregate::{Counts, PlayFacts};
use playsource_domain::attribution::bulk::Bulk;
use playsource_domain::attribution::{reference, AttributionConfig};
use playsource_domain::catalog::{Catalog, Kind, VideoMeta};
use playsource_domain::{Day, Impression, Play, VideoId, DAY_MS};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const ROWS: [&str; 4] = [
    "billboard",
    "continue_watching",
    "top_picks",
    "trending_now",
];

fn base() -> i64 {
    ts("2026-11-01T00:00:00Z").0
}

/// Offsets within `days` days that hit the rules' edges often: day boundaries, the 30-minute
/// window, equal ts; and, for dense workloads, minutes within a couple of hours.
fn offset(days: i64, dense: bool) -> BoxedStrategy<i64> {
    if dense {
        return (0i64..(8 * 12), 0i64..3)
            .prop_map(|(five_min, ms)| 23 * 3_600_000 + five_min * 5 * MIN / 4 + ms)
            .boxed();
    }
    (
        0i64..days,
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(DAY_MS - 1),
            Just(30 * MIN),
            Just(30 * MIN + 1),
            (0i64..48).prop_map(|k| k * 15 * MIN),
            0i64..DAY_MS,
        ],
    )
        .prop_map(|(d, o)| d * DAY_MS + o)
        .boxed()
}

#[derive(Clone, Debug)]
struct Ev {
    id: String,
    at: i64,
    member: u64,
    video: u64,
    row: &'static str,
}

#[derive(Clone, Debug)]
struct Workload {
    imps: Vec<(Ev, i64)>,
    plays: Vec<(Ev, i64)>,
    interleave: Vec<bool>,
}

fn events(
    prefix: &'static str,
    max: usize,
    days: i64,
    dense: bool,
) -> impl Strategy<Value = Vec<(Ev, i64)>> {
    let lateness = AttributionConfig::default().allowed_lateness_ms;
    prop::collection::vec(
        (
            offset(days, dense),
            1u64..=2,
            1u64..=3,
            0usize..ROWS.len(),
            0..=lateness,
            any::<bool>(),
            0..=lateness,
        ),
        0..max,
    )
    .prop_map(move |v| {
        let mut out = Vec::new();
        for (n, (o, member, video, row, jitter, dup, dup_jitter)) in v.into_iter().enumerate() {
            let ev = Ev {
                id: format!("{prefix}{n:02}"),
                at: base() + o,
                member,
                video,
                row: ROWS[row],
            };
            if dup {
                out.push((ev.clone(), dup_jitter));
            }
            out.push((ev, jitter));
        }
        out
    })
}

fn workload() -> impl Strategy<Value = Workload> {
    // Sparse workloads over 10 days exercise the lookback and state expiry; dense ones over two
    // hours exercise the SoP window, disorder and compaction.
    (prop_oneof![Just((10i64, false)), Just((2, false)), Just((1, true))]).prop_flat_map(
        |(days, dense)| {
            (
                events("i", 40, days, dense),
                events("p", 16, days, dense),
                prop::collection::vec(any::<bool>(), 120),
            )
                .prop_map(|(imps, plays, interleave)| Workload {
                    imps,
                    plays,
                    interleave,
                })
        },
    )
}

/// Delivery order of one topic: by ts plus a jitter within the lateness, so nothing is too late.
fn delivered(evs: &[(Ev, i64)]) -> Vec<Ev> {
    let mut v: Vec<(i64, usize, Ev)> = evs
        .iter()
        .enumerate()
        .map(|(n, (e, j))| (e.at + j, n, e.clone()))
        .collect();
    v.sort_by_key(|(k, n, _)| (*k, *n));
    v.into_iter().map(|(_, _, e)| e).collect()
}

fn to_imp(e: &Ev) -> Impression<'static> {
    imp_ms(&e.id, e.at, e.member, e.video, e.row)
}

fn to_play(e: &Ev) -> Play<'static> {
    play_ms(&e.id, e.at, e.member, e.video)
}

fn inputs(w: &Workload) -> Vec<Input> {
    let (mut a, mut b) = (
        delivered(&w.imps).into_iter().peekable(),
        delivered(&w.plays).into_iter().peekable(),
    );
    let mut bits = w.interleave.iter().cycle();
    let mut out = Vec::new();
    while a.peek().is_some() || b.peek().is_some() {
        let take_imp = b.peek().is_none() || (a.peek().is_some() && *bits.next().unwrap_or(&true));
        if take_imp {
            out.extend(a.next().map(|e| Input::Imp(to_imp(&e))));
        } else {
            out.extend(b.next().map(|e| Input::Play(to_play(&e))));
        }
    }
    out
}

fn catalog() -> Catalog {
    Catalog::new([VideoMeta {
        video_id: VideoId(1),
        title: "One".into(),
        genre: "drama".into(),
        kind: Kind::Movie,
        launch_date: Day::parse("2026-11-04").unwrap_or(Day(0)),
    }])
}

proptest! {
    #[test]
    fn incremental_equals_reference_and_bulk(w in workload()) {
        let cfg = AttributionConfig::default();
        let imps: Vec<Impression<'static>> = delivered(&w.imps).iter().map(to_imp).collect();
        let plays: Vec<Play<'static>> = delivered(&w.plays).iter().map(to_play).collect();
        let expected: Vec<_> = reference::attribute(&cfg, &imps, &plays)
            .into_iter()
            .map(|a| (a.play_event_id, a.sop_event_id, a.sod_event_id, a.sop_row, a.sod_row))
            .collect();

        let inputs = inputs(&w);
        let (engine, finals) = run_engine(cfg, &inputs);
        prop_assert_eq!(&finals, &expected);

        let mut bulk = Bulk::new(cfg);
        for i in &imps {
            bulk.add_impression(i);
        }
        let attributed: Vec<_> = plays.iter().filter_map(|p| bulk.attribute(p)).collect();
        let mut from_bulk: Vec<_> = attributed
            .into_iter()
            .map(|(p, a)| {
                let row = |r: &Option<playsource_domain::ImpressionRecord>| {
                    r.as_ref().map_or("unattributed".to_string(), |i| bulk.names().resolve(i.row_type).to_string())
                };
                (p.event_id.to_string(), a.sop.as_ref().map(|i| i.event_id.to_string()),
                 a.sod.as_ref().map(|i| i.event_id.to_string()), row(&a.sop), row(&a.sod))
            })
            .collect();
        from_bulk.sort();
        prop_assert_eq!(&from_bulk, &expected);
        prop_assert!(engine.stats().bytes > 0 || expected.is_empty() && imps.is_empty());
    }

    #[test]
    fn incremental_counts_equal_reference_counts(w in workload()) {
        let cfg = AttributionConfig::default();
        let cat = catalog();
        let imps: Vec<Impression<'static>> = delivered(&w.imps).iter().map(to_imp).collect();
        let plays: Vec<Play<'static>> = delivered(&w.plays).iter().map(to_play).collect();
        let expected = reference::counts(&cfg, &imps, &plays, &cat);

        let mut engine = playsource_domain::Engine::new(cfg);
        let mut outputs = Vec::new();
        let mut counts = Counts::default();
        for i in inputs(&w) {
            match &i {
                Input::Imp(x) => engine.on_impression(x, &mut outputs),
                Input::Play(x) => engine.on_play(x, &mut outputs),
            };
            for o in outputs.drain(..) {
                let e = cat.enrich(o.play.video_id, o.play.ts);
                if let Some(prev) = &o.previous {
                    counts.add(&PlayFacts::of(engine.names(), &o.play, prev, e.genre, e.is_new_launch), -1);
                }
                counts.add(&PlayFacts::of(engine.names(), &o.play, &o.current, e.genre, e.is_new_launch), 1);
            }
        }
        prop_assert_eq!(counts.hourly_rows(), expected.hourly_rows());
        prop_assert_eq!(counts.video_rows(), expected.video_rows());
    }
}
