//! A unit's checkpointing: its committed manifest, the offsets that manifest is exact at, when
//! to take the next layer, the layer being taken a slice at a time, and the background merge of
//! its chain.
//!
//! A layer is begun at a flush (the engine's small parts are copied then) and its pairs are
//! copied in slices of at most [`SLICE`] on the loop, one every [`SLICE_EVERY`] at most, between
//! messages ([`Checkpointing::step`]): the loop never stops for the whole state. The layer is
//! exact at the offsets where it began; the first flush after its last slice writes it and
//! commits its manifest with those offsets (older than the flush's own, which is fine: a restore
//! replays from them without counting). A revocation or shutdown finishes a layer at once.

use std::time::{Duration, Instant};

use futures::FutureExt;
use playsource_archive::ArchiveStore;
use playsource_domain::{ChangedPairs, Engine, LayerHead, PerTopic};
use tokio::task::JoinHandle;

use super::error::CheckpointError;
use super::files::{layer_path, merge, LayerFile, Merged, TakenLayer};
use super::manifest::Manifest;
use crate::metrics as m;

/// A layer taken on the loop, with what the flush task needs to commit it.
pub struct PendingCheckpoint {
    pub layer: TakenLayer,
    /// The manifest the layer goes on top of.
    pub manifest: Manifest,
    /// A merge of a prefix of that manifest, finished meanwhile.
    pub merged: Option<Merged>,
    /// The offsets the layer is exact at.
    pub offsets: PerTopic<i64>,
}

/// Longest the loop copies layers' pairs at a time (all its units together).
pub const SLICE: Duration = Duration::from_millis(5);
/// Least time between two slices (messages are handled in between).
pub const SLICE_EVERY: Duration = Duration::from_millis(10);
/// Pairs copied between two looks at the clock.
const PAIRS_PER_LOOK: usize = 2048;

/// A layer begun at `offsets`, its pairs being copied (`pairs` is None until the last slice).
struct Taking {
    head: LayerHead,
    pairs: Option<ChangedPairs>,
    path: String,
    offsets: PerTopic<i64>,
    began: Instant,
}

/// How a flush checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointNow {
    /// Not at all; a layer whose pairs are all copied goes with the flush.
    No,
    /// Begins a layer (due), copied in slices afterwards.
    Begin,
    /// A layer now, finished on the spot (revocation, shutdown).
    Finish,
}

/// One unit's checkpoints.
pub struct Checkpointing {
    manifest: Manifest,
    at: PerTopic<i64>,
    last: Instant,
    seq: u64,
    /// The next layer must be full (a layer failed to be written: its changes are lost to the chain).
    next_full: bool,
    merging: Option<JoinHandle<Result<Merged, CheckpointError>>>,
    taking: Option<Taking>,
}

impl Checkpointing {
    /// A unit standing at `at`, where `manifest` (possibly empty) is exact.
    pub fn new(manifest: Manifest, at: PerTopic<i64>) -> Checkpointing {
        Checkpointing {
            manifest,
            at,
            last: Instant::now(),
            seq: 0,
            next_full: false,
            merging: None,
            taking: None,
        }
    }

    /// Whether a layer is due: `interval` elapsed, the offsets moved since the last one and no
    /// layer is being taken.
    pub fn due(&self, next: PerTopic<i64>, interval: Duration) -> bool {
        self.taking.is_none() && self.last.elapsed() >= interval && next != self.at
    }

    /// Whether a layer's pairs are being copied (a slice is wanted).
    pub fn copying(&self) -> bool {
        self.taking.as_ref().is_some_and(|t| t.pairs.is_none())
    }

    /// Whether a layer is fully copied and waits for a flush to write it.
    pub fn ready(&self) -> bool {
        self.taking.as_ref().is_some_and(|t| t.pairs.is_some())
    }

    /// What a flush at `next` commits of the checkpoints: with [`CheckpointNow::Begin`] a layer
    /// of `engine` is begun (None returned unless an earlier layer is ready); with
    /// [`CheckpointNow::Finish`] one is finished at once (the one being copied, or a new one);
    /// in every case a layer whose pairs are all copied goes with the flush.
    pub fn take(
        &mut self,
        engine: &mut Engine,
        now: CheckpointNow,
        (group, partition, epoch): (&str, i32, i64),
        next: PerTopic<i64>,
    ) -> Option<PendingCheckpoint> {
        if now != CheckpointNow::No && self.taking.is_none() && next != self.at {
            self.begin(engine, group, partition, epoch, next);
        }
        if now == CheckpointNow::Finish && self.copying() {
            let started = Instant::now();
            let pairs = engine.finish_layer().unwrap_or_default();
            ::metrics::histogram!(m::CHECKPOINT_TAKE_SECONDS)
                .record(started.elapsed().as_secs_f64());
            self.copied(pairs);
        }
        if !self.ready() {
            return None;
        }
        let t = self.taking.take()?;
        Some(PendingCheckpoint {
            layer: TakenLayer {
                head: t.head,
                pairs: t.pairs.unwrap_or_default(),
                path: t.path,
            },
            manifest: self.manifest.clone(),
            merged: self.finished_merge(),
            offsets: t.offsets,
        })
    }

    /// The layer being taken has all its pairs.
    fn copied(&mut self, pairs: ChangedPairs) {
        if let Some(t) = self.taking.as_mut() {
            ::metrics::histogram!(m::CHECKPOINT_COPY_SECONDS)
                .record(t.began.elapsed().as_secs_f64());
            t.pairs = Some(pairs);
        }
    }

    /// Begins a layer of `engine` at `next`: only its small parts are copied here.
    fn begin(
        &mut self,
        engine: &mut Engine,
        group: &str,
        partition: i32,
        epoch: i64,
        next: PerTopic<i64>,
    ) {
        let started = Instant::now();
        let head = engine.begin_layer(self.next_full || self.manifest.files.is_empty());
        ::metrics::histogram!(m::CHECKPOINT_TAKE_SECONDS).record(started.elapsed().as_secs_f64());
        self.next_full = false;
        let path = layer_path(group, partition, epoch, self.seq);
        self.seq += 1;
        self.at = next;
        self.last = Instant::now();
        self.taking = Some(Taking {
            head,
            pairs: None,
            path,
            offsets: next,
            began: started,
        });
    }

    /// Copies pairs of the layer being taken until `until` (one look at least); true when
    /// the last was copied.
    pub fn step(&mut self, engine: &mut Engine, until: Instant) -> bool {
        if !self.copying() {
            return false;
        }
        let started = Instant::now();
        let mut done = engine.continue_layer(PAIRS_PER_LOOK);
        while !done && Instant::now() < until {
            done = engine.continue_layer(PAIRS_PER_LOOK);
        }
        let pairs = if done { engine.finish_layer() } else { None };
        ::metrics::histogram!(m::CHECKPOINT_TAKE_SECONDS).record(started.elapsed().as_secs_f64());
        if let Some(p) = pairs {
            self.copied(p);
        }
        done
    }

    /// A merge that finished (successfully) since the last look.
    fn finished_merge(&mut self) -> Option<Merged> {
        if !self.merging.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        match self.merging.take()?.now_or_never()? {
            Ok(Ok(merged)) => Some(merged),
            Ok(Err(e)) => {
                ::metrics::counter!(m::CHECKPOINT_FAILURES, "stage" => "merge").increment(1);
                tracing::warn!(error = %e, "cannot merge the checkpoint's layers (retried after the next checkpoint)");
                None
            }
            Err(e) => {
                ::metrics::counter!(m::CHECKPOINT_FAILURES, "stage" => "merge").increment(1);
                tracing::warn!(error = %e, "the checkpoint merge task failed (retried after the next checkpoint)");
                None
            }
        }
    }

    /// The flush committed a manifest of `files`: it is the unit's now; a merge starts when due.
    pub fn committed(
        &mut self,
        files: Vec<LayerFile>,
        store: &ArchiveStore,
        group: &str,
        partition: i32,
        epoch: i64,
    ) {
        self.manifest = Manifest { files };
        if self.merging.is_some() || !self.manifest.merge_due() {
            return;
        }
        let files = self.manifest.files.clone();
        let path = layer_path(group, partition, epoch, self.seq);
        self.seq += 1;
        let store = store.clone();
        self.merging = Some(tokio::task::spawn_blocking(move || {
            let merged = merge(&store, files, path);
            if merged.is_ok() {
                ::metrics::counter!(m::CHECKPOINT_MERGES).increment(1);
            }
            merged
        }));
    }

    /// The flush could not write the layer: the chain misses its changes, so the next is full
    /// (a layer being taken on top of the lost one is dropped).
    pub fn failed(&mut self, engine: &mut Engine) {
        if self.taking.take().is_some() {
            engine.abandon_layer();
        }
        self.next_full = true;
        // Taken again at the next chance, even with no event since.
        self.at = PerTopic::new(-1, -1);
    }

    /// The committed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}
