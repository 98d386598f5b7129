//! Checkpoints of one large unit (issue 17): fills one engine with `BENCH_KEYS` (member, video)
//! pairs (default 10 M; `bench/checkpoint.sh` runs 100 M), then reports its RSS, the first (full)
//! checkpoint and an incremental one after 1 % of the pairs changed (the loop's share — beginning
//! the layer and copying its pairs in slices between events, as the stream does — and the
//! encoding and writing off the loop, sizes), the events/s the loop keeps
//! while a checkpoint is written beside it against without, the merge of the chain, and the
//! restore. Layers go to a local folder (`BENCH_STORE`, default a temporary one) through the same
//! `ArchiveStore` the stream uses; `BENCH_ARCHIVE=s3://...` puts them on an object store.
//!
//! Prints one `key: value` line per figure (bench/checkpoint.sh turns them into RESULTS.md).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use playsource_archive::ArchiveStore;
use playsource_domain::{
    AttributionConfig, ChangedPairs, Engine, Impression, LayerHead, MemberId, Ts, VideoId,
};
use playsource_stream::checkpoint::{self, layer_path, LayerFile, TakenLayer, SLICE, SLICE_EVERY};

const START: i64 = 1_790_000_000_000;

fn impression(i: u64, ts: i64) -> Impression<'static> {
    Impression {
        event_id: Cow::Owned(format!("0f3c1a2b-0000-4000-8000-{i:012x}")),
        ts: Ts(ts),
        member_id: MemberId(i / 4),
        video_id: VideoId(i % 4 + (i / 4) % 20_000),
        page: Cow::Borrowed("home"),
        row_type: Cow::Borrowed("top_picks"),
        row_index: (i % 12) as u16,
        rank: (i % 30) as u16,
        country: Cow::Borrowed("US"),
        device: Cow::Borrowed("tv"),
    }
}

/// Feeds `n` impressions of pairs picked by `pick`, one event-time millisecond apart from the
/// clock `at` (advanced), each with a new event id.
fn feed(e: &mut Engine, n: u64, at: &mut i64, pick: impl Fn(u64) -> u64) -> Duration {
    let mut out = Vec::new();
    let started = Instant::now();
    for j in 0..n {
        *at += 1;
        let mut imp = impression(pick(j), *at);
        imp.event_id = Cow::Owned(format!("0f3c1a2b-0000-4000-8000-{:012x}", *at));
        e.on_impression(&imp, &mut out);
        out.clear();
    }
    started.elapsed()
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Spreads `j` over `keys` (a multiplicative hash, so a 1 % change touches pairs all over).
fn spread(j: u64, keys: u64) -> u64 {
    j.wrapping_mul(0x9E37_79B9_7F4A_7C15) % keys
}

/// What a layer taken in slices cost the loop.
struct Sliced {
    /// Beginning the layer (its small parts copied).
    begin: Duration,
    /// The longest single hold of the loop: the beginning or one slice.
    longest: Duration,
    slices: u64,
    /// From the beginning to the last pair copied.
    wall: Duration,
    /// Events fed between the slices, and their rate over `wall`.
    events: u64,
}

/// Takes a layer as the stream's loop does: begins it, then copies a slice of [`SLICE`] every
/// [`SLICE_EVERY`], feeding events (pairs spread over `keys`, from `from` on) in between.
fn take_in_slices(
    e: &mut Engine,
    full: bool,
    at: &mut i64,
    keys: u64,
    from: u64,
) -> (LayerHead, ChangedPairs, Sliced) {
    let started = Instant::now();
    let head = e.begin_layer(full);
    let begin = started.elapsed();
    let mut longest = begin;
    let (mut slices, mut events) = (0u64, 0u64);
    loop {
        // Events until the next slice is due.
        let tick = Instant::now();
        while tick.elapsed() < SLICE_EVERY.saturating_sub(SLICE) {
            feed(e, 1_000, at, |j| spread(j + from + events, keys));
            events += 1_000;
        }
        let t = Instant::now();
        let mut done = e.continue_layer(2048);
        while !done && t.elapsed() < SLICE {
            done = e.continue_layer(2048);
        }
        longest = longest.max(t.elapsed());
        slices += 1;
        if done {
            break;
        }
    }
    let pairs = e.finish_layer().expect("a layer was begun");
    let wall = started.elapsed();
    let cost = Sliced {
        begin,
        longest,
        slices,
        wall,
        events,
    };
    (head, pairs, cost)
}

fn print_sliced(kind: &str, s: &Sliced) {
    println!("{kind}_begin_on_loop_s: {}", secs(s.begin));
    println!("{kind}_longest_hold_s: {}", secs(s.longest));
    println!("{kind}_slices: {}", s.slices);
    println!("{kind}_copy_wall_s: {}", secs(s.wall));
    println!(
        "{kind}_events_per_s_while_copying: {:.0}",
        s.events as f64 / s.wall.as_secs_f64()
    );
}

fn main() {
    let keys: u64 = std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let location = std::env::var("BENCH_ARCHIVE")
        .or_else(|_| std::env::var("BENCH_STORE"))
        .unwrap_or_else(|_| tmp.path().display().to_string());
    let store = ArchiveStore::open(&location).expect("the layers' store");
    let cfg = AttributionConfig::default();
    let mut e = Engine::new(cfg);
    println!("keys_asked: {keys}");
    println!("store: {}", store.display());

    // Fill: one impression per pair.
    let mut at = START;
    let took = feed(&mut e, keys, &mut at, |j| j);
    let stats = e.stats();
    println!("fill_events_per_s: {:.0}", keys as f64 / took.as_secs_f64());
    println!("keys: {}", stats.keys);
    println!("state_bytes: {}", stats.bytes);
    println!("rss_bytes: {}", rss_bytes());

    // First checkpoint: every pair, copied in slices between events.
    let (head, pairs, sliced) = take_in_slices(&mut e, false, &mut at, keys, 3 * keys / 7);
    let full_path = layer_path("bench", 0, 1, 0);
    let t = Instant::now();
    let full = checkpoint::write_layer(
        &store,
        TakenLayer {
            head,
            pairs,
            path: full_path,
        },
    )
    .expect("write the full layer");
    let full_write = t.elapsed();
    print_sliced("full", &sliced);
    println!("full_write_s: {}", secs(full_write));
    println!("full_bytes: {}", full.bytes);
    println!("rss_after_full_bytes: {}", rss_bytes());

    // The loop's rate without a checkpoint beside it, then with one being written (a full layer
    // re-taken and written on another thread while the loop feeds events).
    let probe = keys / 20;
    let alone = feed(&mut e, probe, &mut at, |j| spread(j, keys));
    let rate_alone = probe as f64 / alone.as_secs_f64();
    let _ = e.take_layer(false);
    let (head, pairs) = e.take_layer(true);
    let beside_path = layer_path("bench", 0, 1, 9);
    let (rate_beside, beside_write) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let t = Instant::now();
            let f = checkpoint::write_layer(
                &store,
                TakenLayer {
                    head,
                    pairs,
                    path: beside_path,
                },
            )
            .expect("write");
            (t.elapsed(), f)
        });
        let mut fed = 0u64;
        let t = Instant::now();
        while !writer.is_finished() {
            let chunk = 10_000;
            feed(&mut e, chunk, &mut at, |j| spread(j + fed + probe, keys));
            fed += chunk;
        }
        let rate = fed as f64 / t.elapsed().as_secs_f64();
        let (took, f) = writer.join().expect("the writer");
        let _ = store.delete(&f.path);
        (rate, took)
    });
    println!("loop_events_per_s_alone: {rate_alone:.0}");
    println!("loop_events_per_s_while_writing: {rate_beside:.0}");
    println!("full_write_beside_loop_s: {}", secs(beside_write));
    // Everything since the re-taken full layer is in the next incremental layer: start the
    // chain again from a full layer at this point, as the stream's merge would.
    let (head, pairs) = e.take_layer(true);
    let base = checkpoint::write_layer(
        &store,
        TakenLayer {
            head,
            pairs,
            path: layer_path("bench", 0, 1, 1),
        },
    )
    .expect("write");
    let _ = store.delete(&full.path);

    // 1 % of the pairs change, then an incremental layer.
    let changed = keys / 100;
    feed(&mut e, changed, &mut at, |j| {
        spread(j + 7 * keys / 13, keys)
    });
    // Taken at once (the whole copy in one hold of the loop), for comparison, then in slices.
    let mut once = e.clone();
    let t = Instant::now();
    let (_, pairs) = once.take_layer(false);
    let inc_at_once = t.elapsed();
    drop((once, pairs));
    let (head, pairs, inc_sliced) = take_in_slices(&mut e, false, &mut at, keys, 5 * keys / 11);
    let inc_pairs = pairs.len();
    let t = Instant::now();
    let inc = checkpoint::write_layer(
        &store,
        TakenLayer {
            head,
            pairs,
            path: layer_path("bench", 0, 1, 2),
        },
    )
    .expect("write the incremental layer");
    let inc_write = t.elapsed();
    println!("changed_pairs: {inc_pairs}");
    println!("incremental_take_at_once_s: {}", secs(inc_at_once));
    print_sliced("incremental", &inc_sliced);
    println!("incremental_write_s: {}", secs(inc_write));
    println!("incremental_bytes: {}", inc.bytes);
    println!(
        "incremental_share_of_full: {:.4}",
        inc.bytes as f64 / base.bytes as f64
    );

    // Merge the chain (background job in the stream), then restore from the chain and from the
    // merged layer.
    let chain: Vec<LayerFile> = vec![base.clone(), inc.clone()];
    let t = Instant::now();
    let merged =
        checkpoint::merge(&store, chain.clone(), layer_path("bench", 0, 1, 3)).expect("merge");
    println!("merge_s: {}", secs(t.elapsed()));
    println!("merged_bytes: {}", merged.file.bytes);
    let want = e.stats().keys;
    drop(e);
    let t = Instant::now();
    let restored = checkpoint::restore(&store, &chain, &cfg)
        .expect("restore")
        .expect("same configuration");
    let took = t.elapsed();
    assert_eq!(
        restored.stats().keys,
        want,
        "the restored engine holds every pair"
    );
    println!("restore_chain_s: {}", secs(took));
    println!(
        "restore_keys_per_s: {:.0}",
        want as f64 / took.as_secs_f64()
    );
    println!("rss_after_restore_bytes: {}", rss_bytes());
    drop(restored);
    let t = Instant::now();
    let restored = checkpoint::restore(&store, std::slice::from_ref(&merged.file), &cfg)
        .expect("restore")
        .expect("same configuration");
    let took = t.elapsed();
    assert_eq!(restored.stats().keys, want);
    println!("restore_merged_s: {}", secs(took));
    drop(restored);
    // Of which reading and decoding the file alone:
    let t = Instant::now();
    let bytes = store.get(&merged.file.path).expect("read the merged layer");
    let read = t.elapsed();
    let (_, mut d) = checkpoint::Decoder::new(&bytes).expect("a layer");
    let mut n = 0u64;
    while d.next_pair().expect("decodes").is_some() {
        n += 1;
    }
    println!("merged_read_s: {}", secs(read));
    println!("merged_decode_s: {} ({n} pairs)", secs(t.elapsed() - read));
    for f in [base, inc, merged.file] {
        let _ = store.delete(&f.path);
    }
}
