//! Layer files in the archive's store: where they go, writing a taken layer, reading a chain
//! back (restore), folding a chain into one full layer (merge), and deleting what no manifest
//! names.

use std::cell::RefCell;

use playsource_archive::{ArchiveStore, Bytes};
use playsource_domain::{overlay, AttributionConfig, ChangedPairs, Engine, LayerHead, Pair};

use super::error::CheckpointError;
use super::format::{self, Blocks, Decoder, Encoder};

/// One layer file of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// Path relative to the archive root.
    pub path: String,
    /// Its size.
    pub bytes: i64,
}

/// The folder of a unit's layer files.
pub fn folder(group: &str, partition: i32) -> String {
    format!("_checkpoints/{group}/p{partition}")
}

/// The path of a new layer file: unique per epoch and sequence number, so a stale owner never
/// writes over a file a manifest names.
pub fn layer_path(group: &str, partition: i32, epoch: i64, seq: u64) -> String {
    format!("{}/e{epoch}-{seq}.ckpt", folder(group, partition))
}

/// A layer taken from the engine on the loop, to encode and write in the flush task.
pub struct TakenLayer {
    pub head: LayerHead,
    pub pairs: ChangedPairs,
    pub path: String,
}

/// Sorts, encodes and writes a taken layer (blocking: call it off the loop).
pub fn write_layer(store: &ArchiveStore, layer: TakenLayer) -> Result<LayerFile, CheckpointError> {
    let (bytes, _) = format::encode(&layer.head, layer.pairs.into_sorted())?;
    let len = bytes.len() as i64;
    store
        .put_bytes(&layer.path, bytes)
        .map_err(CheckpointError::store)?;
    Ok(LayerFile {
        path: layer.path,
        bytes: len,
    })
}

/// The chain of files a manifest names, read: each file's bytes.
fn read_all(store: &ArchiveStore, files: &[LayerFile]) -> Result<Vec<Bytes>, CheckpointError> {
    files
        .iter()
        .map(|f| store.get(&f.path).map_err(CheckpointError::store))
        .collect()
}

/// Runs `f` over the merged pairs of a chain of layer files (oldest first, the first full) and
/// the merged head; blocking. With `read_ahead` each file is decoded by a thread of its own
/// ahead of `f` (a restore, which wants every core); else all on the calling thread (a
/// background merge, which must leave the consumer loop its core).
fn with_merged<T>(
    raw: &[Bytes],
    read_ahead: bool,
    f: impl FnOnce(LayerHead, &mut dyn Iterator<Item = Pair>) -> Result<T, CheckpointError>,
) -> Result<T, CheckpointError> {
    let failed = RefCell::new(None);
    let mut heads = Vec::with_capacity(raw.len());
    let mut decoders = Vec::with_capacity(raw.len());
    for b in raw {
        let (head, d) = Decoder::new(b)?;
        heads.push(head);
        decoders.push(d);
    }
    if !heads.first().is_some_and(LayerHead::is_full) {
        return Err(CheckpointError::NoBase);
    }
    let merged_head = LayerHead::merge(heads.clone()).ok_or(CheckpointError::NoBase)?;
    let out = std::thread::scope(|scope| {
        let mut blocks = decoders.into_iter().map(|d| {
            if read_ahead {
                Blocks::ahead(scope, d)
            } else {
                Blocks::Here(d)
            }
        });
        let first = blocks.next().ok_or(CheckpointError::NoBase)?;
        let mut pairs: Box<dyn Iterator<Item = Pair> + '_> =
            Box::new(format::Pairs::new(first, &failed));
        for (head, b) in heads.iter().skip(1).zip(blocks) {
            pairs = Box::new(overlay(pairs, head, format::Pairs::new(b, &failed)));
        }
        let out = f(merged_head, &mut pairs);
        // Closes the channels: decoding threads still ahead stop.
        drop(pairs);
        out
    })?;
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The engine a manifest's files restore (blocking). Fails when a file is missing or damaged,
/// or was taken under another attribution configuration.
pub fn restore(
    store: &ArchiveStore,
    files: &[LayerFile],
    cfg: &AttributionConfig,
) -> Result<Option<Engine>, CheckpointError> {
    let raw = read_all(store, files)?;
    with_merged(&raw, true, |head, pairs| {
        if head.config() != cfg {
            return Ok(None);
        }
        Ok(Some(Engine::from_layer(head, pairs)))
    })
}

/// A chain folded into one full layer by [`merge`].
#[derive(Clone, Debug)]
pub struct Merged {
    /// The files it replaces: a prefix of the manifest it was made from.
    pub covers: Vec<LayerFile>,
    pub file: LayerFile,
}

/// Folds a chain of layer files into one full layer written at `path` (blocking).
pub fn merge(
    store: &ArchiveStore,
    files: Vec<LayerFile>,
    path: String,
) -> Result<Merged, CheckpointError> {
    let raw = read_all(store, &files)?;
    let bytes = with_merged(&raw, false, |head, pairs| {
        let mut e = Encoder::new(&head)?;
        for p in pairs {
            e.push(p)?;
        }
        Ok(e.finish()?.0)
    })?;
    drop(raw);
    let len = bytes.len() as i64;
    store
        .put_bytes(&path, bytes)
        .map_err(CheckpointError::store)?;
    Ok(Merged {
        covers: files,
        file: LayerFile { path, bytes: len },
    })
}

/// Deletes the unit's layer files that `keep` does not name (blocking): what crashed flushes,
/// fenced owners and unfinished merges left. Run by a new owner after taking the lease, so no
/// commit can name them any more. Returns how many it deleted.
pub fn collect_garbage(
    store: &ArchiveStore,
    group: &str,
    partition: i32,
    keep: &[LayerFile],
) -> Result<usize, CheckpointError> {
    let listed = store
        .list(&folder(group, partition))
        .map_err(CheckpointError::store)?;
    let mut deleted = 0;
    for (path, _) in listed {
        if keep.iter().any(|k| k.path == path) {
            continue;
        }
        store.delete(&path).map_err(CheckpointError::store)?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Deletes files a committed manifest no longer names (blocking); failures are logged (a new
/// owner collects what is left).
pub fn delete_superseded(store: &ArchiveStore, files: &[LayerFile]) {
    for f in files {
        if let Err(e) = store.delete(&f.path) {
            tracing::warn!(path = %store.describe(&f.path).display(), error = %e,
                "cannot delete a superseded checkpoint layer (the partition's next owner collects it)");
        }
    }
}
