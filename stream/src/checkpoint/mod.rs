//! Incremental checkpoints of each unit's engine in the archive's store (a local folder or an
//! object store), with only their manifest in Postgres.
//!
//! A checkpoint is a chain of *layer files* (`format.rs`) under
//! `_checkpoints/<group>/p<p>/e<epoch>-<n>.ckpt` (readers of the archive skip `_` folders): a full
//! layer, then incremental layers holding only the pairs changed since the layer before
//! (`playsource_domain`'s [`Engine::take_layer`]). A flush that checkpoints writes its layer file
//! *before* its transaction and commits the new manifest (the files, oldest first, and the
//! offsets they are exact at) in `stream_checkpoints`, so exactly-once holds as with the offsets:
//! a crash before the commit leaves an unlisted file, collected later; after it, the manifest
//! names files that exist.
//!
//! The loop only copies what changed ([`Engine::take_layer`]); sorting, encoding and writing run
//! in the flush task, off the loop. When the incremental layers weigh half as much as the full
//! one, or number [`MAX_LAYERS`], a background job ([`merge`]) folds the chain into one new full
//! layer; the next checkpoint's manifest starts with it and the files it replaces are deleted
//! after that commit ([`Manifest::next`]). A new owner deletes the unit's files no manifest
//! names ([`collect_garbage`]).

mod format;
mod unit;

use std::cell::RefCell;

use playsource_archive::{ArchiveStore, Bytes};
use playsource_domain::{overlay, AttributionConfig, ChangedPairs, Engine, LayerHead, Pair};

pub use format::{Decoder, Encoder, VERSION};
pub use unit::{Checkpointing, PendingCheckpoint};

/// Version of the manifest and layer encoding, stored with the manifest; another version is
/// ignored (the unit then rebuilds from Kafka or the archive).
pub const FORMAT: i32 = 4;
/// A chain this long is merged whatever its size.
pub const MAX_LAYERS: usize = 16;

/// Why a checkpoint could not be written or read (the cause's own text, said once).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// postcard could not serialise a layer.
    #[error("cannot encode a layer: {cause}")]
    Encode { cause: postcard::Error },
    /// postcard could not deserialise a layer.
    #[error("a layer does not decode: {cause}")]
    Decode { cause: postcard::Error },
    /// zstd failed.
    #[error("a layer does not (de)compress: {cause}")]
    Compress { cause: std::io::Error },
    /// The file is not a layer, or is cut short.
    #[error("a layer file is damaged ({0})")]
    Corrupt(String),
    /// A layer of another encoding version.
    #[error("a layer file of encoding version {0}, this build reads version {VERSION}")]
    Version(u32),
    /// The store refused.
    #[error("{cause}")]
    Store { cause: playsource_archive::Error },
    /// The chain does not start with a full layer.
    #[error("the checkpoint's first layer is not a full one")]
    NoBase,
}

impl CheckpointError {
    fn encode(cause: postcard::Error) -> Self {
        CheckpointError::Encode { cause }
    }
    fn decode(cause: postcard::Error) -> Self {
        CheckpointError::Decode { cause }
    }
    fn compress(cause: std::io::Error) -> Self {
        CheckpointError::Compress { cause }
    }
    fn store(cause: playsource_archive::Error) -> Self {
        CheckpointError::Store { cause }
    }
}

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
/// the merged head; blocking.
fn with_merged<T>(
    raw: &[Bytes],
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
    let mut decoders = decoders.into_iter();
    let first = decoders.next().ok_or(CheckpointError::NoBase)?;
    let mut pairs: Box<dyn Iterator<Item = Pair> + '_> = Box::new(format::Pairs {
        decoder: first,
        failed: &failed,
    });
    for (head, d) in heads.iter().skip(1).zip(decoders) {
        let changed = format::Pairs {
            decoder: d,
            failed: &failed,
        };
        pairs = Box::new(overlay(pairs, head, changed));
    }
    let out = f(merged_head, &mut pairs)?;
    drop(pairs);
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
    with_merged(&raw, |head, pairs| {
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
    let bytes = with_merged(&raw, |head, pairs| {
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

/// A unit's committed manifest: its layer files, oldest (the full one) first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub files: Vec<LayerFile>,
}

/// A manifest to commit, the files it stops naming (deleted after the commit) and the files it
/// names first (deleted instead when the commit is refused).
#[derive(Clone, Debug, Default)]
pub struct NextManifest {
    pub files: Vec<LayerFile>,
    pub superseded: Vec<LayerFile>,
    pub added: Vec<LayerFile>,
}

impl Manifest {
    /// The manifest after adding `new` (full when `full`), folding in a finished merge whose
    /// files are still this manifest's first ones.
    pub fn next(&self, new: LayerFile, full: bool, merged: Option<Merged>) -> NextManifest {
        if full {
            let mut superseded = self.files.clone();
            superseded.extend(merged.map(|m| m.file));
            return NextManifest {
                files: vec![new.clone()],
                superseded,
                added: vec![new],
            };
        }
        let mut files = self.files.clone();
        let mut superseded = Vec::new();
        let mut added = Vec::new();
        if let Some(m) = merged {
            if !m.covers.is_empty() && files.starts_with(&m.covers) {
                files.splice(..m.covers.len(), [m.file.clone()]);
                superseded = m.covers;
                added.push(m.file);
            } else {
                superseded.push(m.file);
            }
        }
        files.push(new.clone());
        added.push(new);
        NextManifest {
            files,
            superseded,
            added,
        }
    }

    /// Whether the chain should be merged: its incremental layers weigh half the full one, or
    /// it is [`MAX_LAYERS`] long.
    pub fn merge_due(&self) -> bool {
        let Some((base, deltas)) = self.files.split_first() else {
            return false;
        };
        !deltas.is_empty()
            && (self.files.len() >= MAX_LAYERS
                || deltas.iter().map(|f| f.bytes).sum::<i64>() * 2 >= base.bytes)
    }
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

#[cfg(test)]
mod tests;
