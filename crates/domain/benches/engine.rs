//! The join core in-process: events per second through the incremental engine and the bulk
//! path on a realistic mix (1 M members × 10 k titles, Zipf-like popularity, browse-then-play),
//! and the state's bytes per (member, video) key. Run: `cargo bench -p playsource-domain`.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use playsource_domain::attribution::bulk::Bulk;
use playsource_domain::{AttributionConfig, Engine, Impression, MemberId, Play, Ts, VideoId};

const ROWS: [&str; 8] = [
    "continue_watching",
    "trending_now",
    "top_picks",
    "my_list",
    "because_you_watched",
    "new_releases",
    "popular",
    "billboard",
];
const DEVICES: [&str; 4] = ["tv", "mobile", "web", "tablet"];
const COUNTRIES: [&str; 6] = ["US", "BR", "GB", "IN", "MX", "DE"];

/// A tiny deterministic generator (xorshift), so the bench needs nothing but the domain.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Zipf-like: small ids far more often.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as u64).clamp(1, n)
    }
}

enum Ev {
    Imp(Impression<'static>),
    Play(Play<'static>),
}

/// Sessions in time order: a member browses a few rows, then maybe plays one impressed title.
fn workload(events: usize, members: u64, titles: u64, seed: u64) -> Vec<Ev> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(events);
    let mut t = Ts::parse_rfc3339("2026-11-21T00:00:00Z")
        .map(|t| t.0)
        .unwrap_or(0);
    let mut n = 0u64;
    while out.len() < events {
        let member = 1 + r.below(members);
        let device = DEVICES[r.below(4) as usize];
        let country = COUNTRIES[(member % 6) as usize];
        let mut shown = Vec::new();
        for _ in 0..(4 + r.below(8)) {
            t += r.below(40) as i64;
            let video = r.zipf(titles);
            shown.push(video);
            n += 1;
            out.push(Ev::Imp(Impression {
                event_id: Cow::Owned(format!("{:08x}-0000-4000-8000-{:012x}", n >> 32, n)),
                ts: Ts(t),
                member_id: MemberId(member),
                video_id: VideoId(video),
                page: Cow::Borrowed("home"),
                row_type: Cow::Borrowed(ROWS[r.below(8) as usize]),
                row_index: r.below(20) as u16,
                rank: r.below(40) as u16,
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
            }));
        }
        if r.below(3) == 0 {
            let video = if r.below(5) == 0 {
                r.zipf(titles)
            } else {
                shown[r.below(shown.len() as u64) as usize]
            };
            n += 1;
            out.push(Ev::Play(Play {
                event_id: Cow::Owned(format!("{:08x}-0000-4000-9000-{:012x}", n >> 32, n)),
                ts: Ts(t + 1_000 + r.below(60_000) as i64),
                member_id: MemberId(member),
                video_id: VideoId(video),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
                session_id: None,
            }));
        }
    }
    out
}

fn report_state_size() {
    // Distinct (member, video) keys; the bytes the engine says it holds, per key.
    let evs = workload(2_000_000, 1_000_000, 10_000, 7);
    let mut e = Engine::new(AttributionConfig::default());
    let mut out = Vec::new();
    for ev in &evs {
        match ev {
            Ev::Imp(i) => e.on_impression(i, &mut out),
            Ev::Play(p) => e.on_play(p, &mut out),
        };
        out.clear();
    }
    let s = e.stats();
    println!(
        "state: {} keys, {} impressions kept, {} pending plays, {} dedup ids, {} bytes = {:.1} bytes/key",
        s.keys,
        s.impressions,
        s.pending_plays,
        s.dedup_ids,
        s.bytes,
        s.bytes as f64 / s.keys.max(1) as f64
    );
}

fn bench(c: &mut Criterion) {
    report_state_size();
    let evs = workload(200_000, 1_000_000, 10_000, 42);
    let mut g = c.benchmark_group("join_core");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.sample_size(10);
    g.bench_function("incremental_engine", |b| {
        b.iter_batched(
            || Engine::new(AttributionConfig::default()),
            |mut e| {
                let mut out = Vec::with_capacity(64);
                for ev in &evs {
                    match ev {
                        Ev::Imp(i) => e.on_impression(i, &mut out),
                        Ev::Play(p) => e.on_play(p, &mut out),
                    };
                    out.clear();
                }
                black_box(e.stats().keys)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("bulk", |b| {
        b.iter(|| {
            let mut bulk = Bulk::new(AttributionConfig::default());
            for ev in &evs {
                if let Ev::Imp(i) = ev {
                    bulk.add_impression(i);
                }
            }
            let mut n = 0;
            for ev in &evs {
                if let Ev::Play(p) = ev {
                    n += usize::from(bulk.attribute(p).is_some());
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
