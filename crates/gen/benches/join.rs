//! The join core on `gen`'s own traffic, in-process: the messages `playsource gen --to ndjson`
//! writes (same seed and flags, so the same bytes), pushed through the domain [`Engine`] in
//! delivery order, one core. Two figures:
//!
//! - `engine`: events already decoded; the engine alone (impression / play with its catalog
//!   genre), as `crates/domain/benches/engine.rs` measures it;
//! - `decode_engine_count`: from the wire bytes, what a stream unit does per message apart from
//!   Kafka and Postgres: decode and validate (docs/reference.md §1), join, enrich from the catalog, count
//!   into the views (corrections retract).
//!
//! The workload comes from the environment (defaults in brackets): `JOIN_MEMBERS` [1000000],
//! `JOIN_VIDEOS` [10000], `JOIN_EVENTS` [3000000], `JOIN_DAYS` [2], `JOIN_START` [2026-11-01],
//! `JOIN_SEED` [42]; the other flags are gen's defaults. With `JOIN_NDJSON_DIR` set, the bench
//! first checks that the files there hold exactly these messages; with `JOIN_OUT_DIR` set, it
//! writes there `domain_result.txt` (the bulk path's hourly groups, in the Flink peer's format
//! `hour_ms|country|device|sop|sod|genre|new_launch|plays`) and `join_summary.json`.
//! Run: `cargo bench -p playsource-gen --bench join` (or `bench/join.sh`).

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use playsource_domain::aggregate::{Counts, PlayFacts};
use playsource_domain::attribution::bulk::Bulk;
use playsource_domain::catalog::UNKNOWN_GENRE;
use playsource_domain::{
    decode_impression, decode_play, AttributionConfig, Catalog, Engine, Impression, Output, Play,
    Verdict,
};
use playsource_gen::config::parse_start;
use playsource_gen::sink_ndjson::{IMPRESSIONS_FILE, PLAYS_FILE};
use playsource_gen::{GenConfig, Topic, Traffic};

/// Every message of the workload, in delivery order, as wire bytes.
struct Wire {
    bytes: Vec<u8>,
    msgs: Vec<(Topic, usize, usize)>,
}

impl Wire {
    fn iter(&self) -> impl Iterator<Item = (Topic, &[u8])> {
        self.msgs
            .iter()
            .map(|&(t, at, len)| (t, &self.bytes[at..at + len]))
    }
}

/// A decoded message.
enum Ev<'a> {
    Imp(Impression<'a>),
    Play(Play<'a>),
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        Err(_) => default,
    }
}

fn config() -> GenConfig {
    let start = env_or("JOIN_START", "2026-11-01".to_owned());
    GenConfig {
        seed: env_or("JOIN_SEED", 42),
        members: env_or("JOIN_MEMBERS", 1_000_000),
        videos: env_or("JOIN_VIDEOS", 10_000),
        start: parse_start(&start).expect("JOIN_START is a date or RFC 3339 time"),
        days: env_or("JOIN_DAYS", 2),
        events: Some(env_or("JOIN_EVENTS", 3_000_000)),
        ..Default::default()
    }
}

fn generate(cfg: &GenConfig) -> (Wire, Catalog) {
    let traffic = Traffic::new(cfg).expect("valid config");
    let catalog = Catalog::new(traffic.model().catalog());
    // About 270 bytes a message; reserved up front so the buffer is not doubled at the end.
    let guess = cfg.events.unwrap_or(0).saturating_mul(280) as usize;
    let mut wire = Wire {
        bytes: Vec::with_capacity(guess),
        msgs: Vec::new(),
    };
    for m in traffic {
        wire.msgs.push((m.topic, wire.bytes.len(), m.payload.len()));
        wire.bytes.extend_from_slice(&m.payload);
    }
    (wire, catalog)
}

/// Checks that `dir`'s NDJSON files hold exactly the workload's messages.
fn check_ndjson(dir: &Path, wire: &Wire) {
    for (topic, name) in [
        (Topic::Impressions, IMPRESSIONS_FILE),
        (Topic::Plays, PLAYS_FILE),
    ] {
        let path = dir.join(name);
        let file = std::fs::File::open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let mut lines = BufReader::with_capacity(1 << 20, file).split(b'\n');
        let mut n = 0u64;
        for (_, bytes) in wire.iter().filter(|(t, _)| *t == topic) {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{} ends after {n} lines", path.display()))
                .expect("readable NDJSON");
            assert!(
                line == bytes,
                "{} line {} differs from the in-process message",
                path.display(),
                n + 1
            );
            n += 1;
        }
        assert!(lines.next().is_none(), "{} has extra lines", path.display());
        println!("join: {} holds the same {n} messages", path.display());
    }
}

/// Counts the engine's outputs into the views, as a stream unit does (a correction retracts the
/// previous attribution under the genre the play was first counted under).
fn count(engine: &Engine, outs: &mut Vec<Output>, counts: &mut Counts) {
    let names = engine.names();
    for o in outs.drain(..) {
        let (genre, new_launch) = match o.play.counted_as {
            Some((g, n)) => (names.resolve(g), n),
            None => (UNKNOWN_GENRE, false),
        };
        if let Some(prev) = &o.previous {
            counts.add(&PlayFacts::of(names, &o.play, prev, genre, new_launch), -1);
        }
        counts.add(
            &PlayFacts::of(names, &o.play, &o.current, genre, new_launch),
            1,
        );
    }
}

/// The stream path from wire bytes; returns the engine, the counts and the messages rejected.
fn decode_engine_count(wire: &Wire, catalog: &Catalog) -> (Engine, Counts, u64, u64) {
    let mut engine = Engine::new(AttributionConfig::default());
    let mut counts = Counts::default();
    let mut outs = Vec::with_capacity(16);
    let (mut rejected, mut left_out) = (0u64, 0u64);
    for (topic, bytes) in wire.iter() {
        let verdict = match topic {
            Topic::Impressions => match decode_impression(bytes) {
                Ok(imp) => engine.on_impression(&imp, &mut outs),
                Err(_) => {
                    rejected += 1;
                    continue;
                }
            },
            Topic::Plays => match decode_play(bytes) {
                Ok(play) => {
                    let e = catalog.enrich(play.video_id, play.ts);
                    engine.on_play_counted_as(&play, e.genre, e.is_new_launch, &mut outs)
                }
                Err(_) => {
                    rejected += 1;
                    continue;
                }
            },
        };
        left_out += u64::from(verdict != Verdict::Accepted);
        count(&engine, &mut outs, &mut counts);
    }
    (engine, counts, rejected, left_out)
}

/// The batch layer's bulk path over the same events: every impression, then every play.
fn bulk_counts(events: &[Ev<'_>], catalog: &Catalog) -> Counts {
    let mut bulk = Bulk::new(AttributionConfig::default());
    for ev in events {
        if let Ev::Imp(i) = ev {
            bulk.add_impression(i);
        }
    }
    let mut counts = Counts::default();
    for ev in events {
        if let Ev::Play(p) = ev {
            if let Some((rec, att)) = bulk.attribute(p) {
                let e = catalog.enrich(p.video_id, p.ts);
                let f = PlayFacts::of(bulk.names(), &rec, &att, e.genre, e.is_new_launch);
                counts.add(&f, 1);
            }
        }
    }
    counts
}

/// CPU seconds (user + system) this process has used so far, from /proc (Linux); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Clock ticks of USER_HZ, 100 per second on Linux.
    Some(ticks / 100.0)
}

fn result_lines(counts: &Counts) -> String {
    let mut s = String::new();
    for r in counts.hourly_rows() {
        let _ = writeln!(
            s,
            "{}|{}|{}|{}|{}|{}|{}|{}",
            r.hour.0, r.country, r.device, r.sop_row, r.sod_row, r.genre, r.new_launch, r.plays
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let (wire, catalog) = generate(&cfg);
    if let Ok(dir) = std::env::var("JOIN_NDJSON_DIR") {
        check_ndjson(Path::new(&dir), &wire);
    }
    let events: Vec<Ev<'_>> = wire
        .iter()
        .filter_map(|(topic, bytes)| match topic {
            Topic::Impressions => decode_impression(bytes).ok().map(Ev::Imp),
            Topic::Plays => decode_play(bytes).ok().map(Ev::Play),
        })
        .collect();
    let plays = events.iter().filter(|e| matches!(e, Ev::Play(_))).count();
    // One pass outside criterion, timed in wall and CPU seconds (the machine may be shared).
    let (cpu0, wall0) = (cpu_seconds(), std::time::Instant::now());
    let (engine, stream_counts, rejected, left_out) = decode_engine_count(&wire, &catalog);
    let (cpu1, wall_s) = (cpu_seconds(), wall0.elapsed().as_secs_f64());
    let cpu_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
    drop(engine);
    let bulk = bulk_counts(&events, &catalog);
    let (stream_rows, bulk_rows) = (stream_counts.hourly_rows(), bulk.hourly_rows());
    let same = stream_rows == bulk_rows;
    println!(
        "join: {} messages ({} decoded: {} impressions, {plays} plays; {rejected} rejected), {} members x {} titles over {} days from {}; engine left out {left_out}; stream counts {} plays in {} groups, bulk {} plays in {} groups: {}",
        wire.msgs.len(),
        events.len(),
        events.len() - plays,
        cfg.members,
        cfg.videos,
        cfg.days,
        cfg.start,
        stream_counts.total(),
        stream_rows.len(),
        bulk.total(),
        bulk_rows.len(),
        if same { "identical" } else { "DIFFERENT" }
    );
    if let Ok(dir) = std::env::var("JOIN_OUT_DIR") {
        let dir = Path::new(&dir);
        std::fs::write(dir.join("domain_result.txt"), result_lines(&bulk))
            .expect("writable JOIN_OUT_DIR");
        let summary = serde_json::json!({
            "messages": wire.msgs.len(),
            "events": events.len(),
            "plays": plays,
            "rejected": rejected,
            "engine_left_out": left_out,
            "stream_plays": stream_counts.total(),
            "bulk_plays": bulk.total(),
            "bulk_groups": bulk_rows.len(),
            "stream_equals_bulk": same,
            "decode_pass_wall_s": wall_s,
            "decode_pass_cpu_s": cpu_s,
        });
        std::fs::write(dir.join("join_summary.json"), summary.to_string())
            .expect("writable JOIN_OUT_DIR");
    }

    let mut g = c.benchmark_group("join_gen");
    g.throughput(Throughput::Elements(wire.msgs.len() as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("engine", |b| {
        b.iter_batched(
            || Engine::new(AttributionConfig::default()),
            |mut e| {
                let mut out = Vec::with_capacity(16);
                for ev in &events {
                    match ev {
                        Ev::Imp(i) => e.on_impression(i, &mut out),
                        Ev::Play(p) => {
                            let en = catalog.enrich(p.video_id, p.ts);
                            e.on_play_counted_as(p, en.genre, en.is_new_launch, &mut out)
                        }
                    };
                    out.clear();
                }
                e
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("decode_engine_count", |b| {
        b.iter_batched(
            || (),
            |()| {
                let (e, counts, ..) = decode_engine_count(&wire, &catalog);
                black_box(counts.total());
                (e, counts)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
