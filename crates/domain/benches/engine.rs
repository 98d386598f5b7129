//! The join core in-process: events per second through the incremental engine and the bulk
//! path on a realistic mix (1 M members × 10 k titles, Zipf-like popularity, browse-then-play),
//! and the state's bytes per (member, video) key once it holds 10 M keys. Run:
//! `cargo bench -p playsource-domain --bench engine` (the state size alone:
//! `cargo bench -p playsource-domain --bench engine -- state_only`).

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

/// Sessions in time order, generated lazily: a member browses a few rows, then maybe plays one
/// impressed title.
struct Sessions {
    r: Rng,
    members: u64,
    titles: u64,
    t: i64,
    n: u64,
    queue: std::collections::VecDeque<Ev>,
}

impl Sessions {
    fn new(members: u64, titles: u64, seed: u64) -> Sessions {
        Sessions {
            r: Rng(seed | 1),
            members,
            titles,
            t: Ts::parse_rfc3339("2026-11-21T00:00:00Z")
                .map(|t| t.0)
                .unwrap_or(0),
            n: 0,
            queue: std::collections::VecDeque::new(),
        }
    }

    fn session(&mut self) {
        let r = &mut self.r;
        let member = 1 + r.below(self.members);
        let device = DEVICES[r.below(4) as usize];
        let country = COUNTRIES[(member % 6) as usize];
        let mut shown = Vec::new();
        for _ in 0..(4 + r.below(8)) {
            self.t += r.below(40) as i64;
            let video = r.zipf(self.titles);
            shown.push(video);
            self.n += 1;
            let n = self.n;
            self.queue.push_back(Ev::Imp(Impression {
                event_id: Cow::Owned(format!("{:08x}-0000-4000-8000-{:012x}", n >> 32, n)),
                ts: Ts(self.t),
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
                r.zipf(self.titles)
            } else {
                shown[r.below(shown.len() as u64) as usize]
            };
            self.n += 1;
            let n = self.n;
            self.queue.push_back(Ev::Play(Play {
                event_id: Cow::Owned(format!("{:08x}-0000-4000-9000-{:012x}", n >> 32, n)),
                ts: Ts(self.t + 1_000 + r.below(60_000) as i64),
                member_id: MemberId(member),
                video_id: VideoId(video),
                country: Cow::Borrowed(country),
                device: Cow::Borrowed(device),
                session_id: None,
            }));
        }
    }
}

impl Iterator for Sessions {
    type Item = Ev;
    fn next(&mut self) -> Option<Ev> {
        if self.queue.is_empty() {
            self.session();
        }
        self.queue.pop_front()
    }
}

/// `events` events of [`Sessions`].
fn workload(events: usize, members: u64, titles: u64, seed: u64) -> Vec<Ev> {
    Sessions::new(members, titles, seed).take(events).collect()
}

/// (member, video) keys the state-size measurement fills the engine to.
const STATE_KEYS: usize = 10_000_000;

fn report_state_size() {
    // The same sessions, fed until the engine holds STATE_KEYS distinct (member, video) keys
    // (about 3 days of event time, so nothing has expired yet); then the bytes the engine says it
    // holds, per key.
    let mut e = Engine::new(AttributionConfig::default());
    let mut out = Vec::new();
    let mut fed = 0usize;
    let mut gen = Sessions::new(1_000_000, 10_000, 7);
    let started = std::time::Instant::now();
    loop {
        for ev in gen.by_ref().take(250_000) {
            match &ev {
                Ev::Imp(i) => e.on_impression(i, &mut out),
                Ev::Play(p) => e.on_play(p, &mut out),
            };
            out.clear();
        }
        fed += 250_000;
        if e.stats().keys >= STATE_KEYS {
            break;
        }
    }
    let s = e.stats();
    let per_key = |b: usize| b as f64 / s.keys.max(1) as f64;
    println!(
        "state after {fed} events ({:.1} s): {} keys, {} impressions kept, {} pending plays, {} dedup ids, {} bytes = {:.1} bytes/key",
        started.elapsed().as_secs_f64(),
        s.keys,
        s.impressions,
        s.pending_plays,
        s.dedup_ids,
        s.bytes,
        per_key(s.bytes)
    );
    println!(
        "  per key: index {:.1} + slots {:.1} + overflow {:.1} + pending plays {:.1} + dedup set {:.1}",
        per_key(s.index_bytes),
        per_key(s.slot_bytes),
        per_key(s.overflow_bytes),
        per_key(s.pending_bytes),
        per_key(s.dedup_bytes)
    );
    // A play 8 days on moves the plays' frontier past every pair's SoD lookback: one sweep drops
    // them all (the worst case of the once-a-day sweep).
    let later = Play {
        event_id: Cow::Borrowed("ffffffff-0000-4000-9000-000000000000"),
        ts: Ts(gen.t + 8 * 86_400_000),
        member_id: MemberId(1),
        video_id: VideoId(1),
        country: Cow::Borrowed("US"),
        device: Cow::Borrowed("tv"),
        session_id: None,
    };
    let swept = std::time::Instant::now();
    e.on_play(&later, &mut out);
    println!(
        "expiry: a play 8 days later swept {} keys in {:.0} ms, {} left",
        s.keys,
        swept.elapsed().as_secs_f64() * 1e3,
        e.stats().keys
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
