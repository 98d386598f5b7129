//! Decoding and validating event messages (docs/reference.md §1), in-process: the messages producers
//! send (the contract's JSON as `to_json` and `gen` write it), 10 000 impressions and 1 000 plays
//! small enough to stay in cache, so the figure is the decoder's own. Run:
//! `cargo bench -p playsource-domain --bench decode`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use playsource_domain::{decode_impression, decode_play, Impression, MemberId, Play, Ts, VideoId};

const ROWS: [&str; 4] = ["continue_watching", "trending_now", "top_picks", "my_list"];
const DEVICES: [&str; 3] = ["tv", "mobile", "web"];

fn messages() -> (Vec<String>, Vec<String>) {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = 1_793_491_200_000; // 2026-11-01
    let imps = (0..10_000)
        .map(|i| {
            let r = next();
            Impression {
                event_id: format!("{:016x}-{:04x}-{:012x}", r, i, next() >> 16).into(),
                ts: Ts(start + (r % 86_400_000) as i64),
                member_id: MemberId(1 + r % 1_000_000),
                video_id: VideoId(1 + next() % 10_000),
                page: "home".into(),
                row_type: ROWS[(r % 4) as usize].into(),
                row_index: (r % 40) as u16,
                rank: (r % 75) as u16,
                country: "US".into(),
                device: DEVICES[(r % 3) as usize].into(),
            }
            .to_json()
        })
        .collect();
    let plays = (0..1_000)
        .map(|i| {
            let r = next();
            Play {
                event_id: format!("{:016x}-{:04x}-{:012x}", r, i, next() >> 16).into(),
                ts: Ts(start + (r % 86_400_000) as i64),
                member_id: MemberId(1 + r % 1_000_000),
                video_id: VideoId(1 + next() % 10_000),
                country: "BR".into(),
                device: DEVICES[(r % 3) as usize].into(),
                session_id: Some(format!("s-{r:x}").into()),
            }
            .to_json()
        })
        .collect();
    (imps, plays)
}

fn bench(c: &mut Criterion) {
    let (imps, plays) = messages();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(imps.len() as u64));
    g.bench_function("impressions", |b| {
        b.iter(|| {
            for m in &imps {
                black_box(decode_impression(m.as_bytes()).map(|i| i.rank).ok());
            }
        })
    });
    g.throughput(Throughput::Elements(plays.len() as u64));
    g.bench_function("plays", |b| {
        b.iter(|| {
            for m in &plays {
                black_box(decode_play(m.as_bytes()).map(|p| p.ts).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
