//! Layer files on a local store: written, chained, merged, restored, collected.

use playsource_archive::ArchiveStore;
use playsource_domain::{decode_impression, decode_play, AttributionConfig, Engine, Output};

use super::*;

fn impression(e: &mut Engine, member: u64, video: u64, minute: u32) {
    let (member, video) = (member + 1, video + 1);
    let json = format!(
        r#"{{"event_id":"i-{member}-{video}-{minute}","ts":"2026-11-21T{:02}:{:02}:00Z","member_id":{member},"video_id":{video},"page":"home","row_type":"top_picks","row_index":1,"rank":2,"country":"US","device":"tv"}}"#,
        minute / 60,
        minute % 60
    );
    e.on_impression(
        &decode_impression(json.as_bytes()).unwrap(),
        &mut Vec::new(),
    );
}

fn play(e: &mut Engine, member: u64, video: u64, minute: u32) -> Vec<Output> {
    let (member, video) = (member + 1, video + 1);
    let json = format!(
        r#"{{"event_id":"p-{member}-{video}-{minute}","ts":"2026-11-21T{:02}:{:02}:30Z","member_id":{member},"video_id":{video},"country":"US","device":"tv"}}"#,
        minute / 60,
        minute % 60
    );
    let mut out = Vec::new();
    e.on_play(&decode_play(json.as_bytes()).unwrap(), &mut out);
    out
}

fn write(store: &ArchiveStore, e: &mut Engine, seq: u64, full: bool) -> LayerFile {
    let (head, pairs) = e.take_layer(full);
    write_layer(
        store,
        TakenLayer {
            head,
            pairs,
            path: layer_path("g", 0, 1, seq),
        },
    )
    .unwrap()
}

#[test]
fn a_chain_restores_the_engine_and_a_merge_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(dir.path());
    let cfg = AttributionConfig::default();
    let mut live = Engine::new(cfg);
    for m in 0..2000 {
        impression(&mut live, m, m % 7, 10);
    }
    let base = write(&store, &mut live, 0, false);
    for m in 0..20 {
        impression(&mut live, m * 13, 99, 20);
    }
    play(&mut live, 5, 5, 30);
    let delta = write(&store, &mut live, 1, false);
    assert!(
        delta.bytes * 20 < base.bytes,
        "1 % of the pairs changed: {} bytes against {}",
        delta.bytes,
        base.bytes
    );
    let chain = vec![base.clone(), delta.clone()];
    let mut restored = restore(&store, &chain, &cfg).unwrap().unwrap();
    assert_eq!(restored.stats().keys, live.stats().keys);
    assert_eq!(play(&mut restored, 13, 99, 40), play(&mut live, 13, 99, 40));
    assert!(
        play(&mut restored, 5, 5, 30).is_empty(),
        "the play id is remembered"
    );

    let merged = merge(&store, chain.clone(), layer_path("g", 0, 1, 2)).unwrap();
    assert_eq!(merged.covers, chain);
    let mut from_merged = restore(&store, std::slice::from_ref(&merged.file), &cfg)
        .unwrap()
        .unwrap();
    assert_eq!(from_merged.stats().keys, live.stats().keys);
    assert_eq!(
        play(&mut from_merged, 26, 99, 50),
        play(&mut live, 26, 99, 50)
    );

    // The next manifest starts with the merged layer and supersedes what it covers.
    let manifest = Manifest { files: chain };
    let newer = LayerFile {
        path: layer_path("g", 0, 1, 3),
        bytes: 10,
    };
    let next = manifest.next(newer.clone(), false, Some(merged.clone()));
    assert_eq!(next.files, vec![merged.file.clone(), newer.clone()]);
    assert_eq!(next.superseded, vec![base, delta]);
    assert_eq!(next.added, vec![merged.file.clone(), newer]);

    // Files no manifest names are collected; named ones stay.
    assert_eq!(
        collect_garbage(&store, "g", 0, &next.files[..1]).unwrap(),
        2
    );
    assert!(store.exists(&merged.file.path).unwrap());
    assert_eq!(
        collect_garbage(&store, "g", 0, &next.files[..1]).unwrap(),
        0
    );
}

#[test]
fn another_configuration_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(dir.path());
    let mut live = Engine::new(AttributionConfig::default());
    impression(&mut live, 1, 1, 10);
    let base = write(&store, &mut live, 0, true);
    let other = AttributionConfig {
        sod_lookback_days: 3,
        ..AttributionConfig::default()
    };
    assert!(restore(&store, &[base], &other).unwrap().is_none());
}

#[test]
fn damaged_or_missing_layers_are_errors_not_engines() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(dir.path());
    let cfg = AttributionConfig::default();
    let mut live = Engine::new(cfg);
    for m in 0..100 {
        impression(&mut live, m, 1, 10);
    }
    let base = write(&store, &mut live, 0, true);
    let bytes = store.get(&base.path).unwrap();
    store
        .put_bytes(&base.path, bytes.slice(..bytes.len() - 7))
        .unwrap();
    let err = restore(&store, std::slice::from_ref(&base), &cfg).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt(_)), "{err}");

    store
        .put_bytes(&base.path, b"PSCKPT\x09\0\0\0".to_vec())
        .unwrap();
    let err = restore(&store, std::slice::from_ref(&base), &cfg).unwrap_err();
    assert!(matches!(err, CheckpointError::Version(9)), "{err}");

    store.delete(&base.path).unwrap();
    assert!(restore(&store, &[base], &cfg).is_err());
}

#[test]
fn a_chain_without_a_full_layer_first_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArchiveStore::local(dir.path());
    let cfg = AttributionConfig::default();
    let mut live = Engine::new(cfg);
    impression(&mut live, 1, 1, 10);
    let _ = write(&store, &mut live, 0, true);
    impression(&mut live, 2, 1, 11);
    let delta = write(&store, &mut live, 1, false);
    let err = restore(&store, &[delta], &cfg).unwrap_err();
    assert!(matches!(err, CheckpointError::NoBase), "{err}");
}

#[test]
fn merging_is_due_by_weight_or_length() {
    let f = |bytes| LayerFile {
        path: String::new(),
        bytes,
    };
    assert!(!Manifest {
        files: vec![f(100)]
    }
    .merge_due());
    assert!(!Manifest {
        files: vec![f(100), f(10), f(10)]
    }
    .merge_due());
    assert!(Manifest {
        files: vec![f(100), f(30), f(20)]
    }
    .merge_due());
    let long: Vec<LayerFile> = std::iter::once(f(1_000_000))
        .chain((1..MAX_LAYERS).map(|_| f(1)))
        .collect();
    assert!(Manifest { files: long }.merge_due());
}

#[test]
fn a_layer_copied_in_slices_goes_with_a_later_flush_at_the_offsets_where_it_began() {
    use std::time::{Duration, Instant};

    use playsource_domain::PerTopic;

    let mut e = Engine::new(AttributionConfig::default());
    for m in 0..20_000 {
        impression(&mut e, m, m % 5, 10);
    }
    let mut c = Checkpointing::new(Manifest::default(), PerTopic::new(0, 0));
    let at = PerTopic::new(20_000, 0);
    assert!(c.due(at, Duration::ZERO));
    let begun = c.take(&mut e, CheckpointNow::Begin, ("g", 0, 1), at);
    assert!(begun.is_none(), "a begun layer is not ready yet");
    assert!(c.copying() && !c.due(PerTopic::new(20_001, 0), Duration::ZERO));

    // Events keep coming between the slices (one look at the clock per slice: the deadline has
    // already passed), changing pairs copied already and pairs not copied yet; the layer holds
    // none of them.
    let mut slices = 0u64;
    while !c.step(&mut e, Instant::now()) {
        impression(&mut e, slices * 997 % 20_000, slices * 997 % 20_000 % 5, 11);
        slices += 1;
    }
    assert!(slices > 1, "copied in several slices ({slices})");
    assert!(c.ready() && !c.copying());
    let later = PerTopic::new(20_000 + slices as i64, 0);
    let pending = c
        .take(&mut e, CheckpointNow::No, ("g", 0, 1), later)
        .expect("the ready layer goes with the next flush");
    assert_eq!(
        pending.offsets, at,
        "exact where it began, not at the flush"
    );
    assert!(pending.layer.head.is_full());
    let pairs: Vec<_> = pending.layer.pairs.into_sorted().collect();
    assert_eq!(pairs.len(), 20_000);
    assert!(
        pairs.iter().all(|(_, imps)| imps.as_slice().len() == 1),
        "every pair as it was when the layer began"
    );
    assert!(!c.ready() && !c.copying());
}

#[test]
fn a_revocation_finishes_a_layer_being_copied_at_once() {
    use std::time::Instant;

    use playsource_domain::PerTopic;

    let mut e = Engine::new(AttributionConfig::default());
    for m in 0..5_000 {
        impression(&mut e, m, 1, 10);
    }
    let mut c = Checkpointing::new(Manifest::default(), PerTopic::new(0, 0));
    let at = PerTopic::new(5_000, 0);
    assert!(c
        .take(&mut e, CheckpointNow::Begin, ("g", 0, 1), at)
        .is_none());
    assert!(!c.step(&mut e, Instant::now()), "one slice copies a part");
    impression(&mut e, 4_999, 2, 11);
    let pending = c
        .take(
            &mut e,
            CheckpointNow::Finish,
            ("g", 0, 1),
            PerTopic::new(5_001, 0),
        )
        .expect("finished on the spot");
    assert_eq!(pending.offsets, at);
    assert_eq!(
        pending.layer.pairs.len(),
        5_000,
        "the pair added meanwhile is not in it"
    );
}
