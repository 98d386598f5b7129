//! A unit's checkpointing: its committed manifest, the offsets that manifest is exact at, when
//! to take the next layer, and the background merge of its chain.

use std::time::{Duration, Instant};

use futures::FutureExt;
use playsource_archive::ArchiveStore;
use playsource_domain::{Engine, PerTopic};
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

/// One unit's checkpoints.
pub struct Checkpointing {
    manifest: Manifest,
    at: PerTopic<i64>,
    last: Instant,
    seq: u64,
    /// The next layer must be full (a layer failed to be written: its changes are lost to the chain).
    next_full: bool,
    merging: Option<JoinHandle<Result<Merged, CheckpointError>>>,
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
        }
    }

    /// Whether a layer is due: `interval` elapsed and the offsets moved since the last one.
    pub fn due(&self, next: PerTopic<i64>, interval: Duration) -> bool {
        self.last.elapsed() >= interval && next != self.at
    }

    /// Takes a layer of `engine` at `next` (None when it stands where the last one did): only
    /// the pairs changed since the last layer are copied here, on the loop.
    pub fn take(
        &mut self,
        engine: &mut Engine,
        group: &str,
        partition: i32,
        epoch: i64,
        next: PerTopic<i64>,
    ) -> Option<PendingCheckpoint> {
        if next == self.at {
            return None;
        }
        let started = Instant::now();
        let (head, pairs) = engine.take_layer(self.next_full || self.manifest.files.is_empty());
        ::metrics::histogram!(m::CHECKPOINT_TAKE_SECONDS).record(started.elapsed().as_secs_f64());
        self.next_full = false;
        let path = layer_path(group, partition, epoch, self.seq);
        self.seq += 1;
        self.at = next;
        self.last = Instant::now();
        Some(PendingCheckpoint {
            layer: TakenLayer { head, pairs, path },
            manifest: self.manifest.clone(),
            merged: self.finished_merge(),
            offsets: next,
        })
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

    /// The flush could not write the layer: the chain misses its changes, so the next is full.
    pub fn failed(&mut self) {
        self.next_full = true;
        // Taken again at the next chance, even with no event since.
        self.at = PerTopic::new(-1, -1);
    }

    /// The committed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}
