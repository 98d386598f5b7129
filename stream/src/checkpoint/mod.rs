//! Incremental checkpoints of each unit's engine in the archive's store (a local folder or an
//! object store), with only their manifest in Postgres.
//!
//! A checkpoint is a chain of *layer files* (`format.rs`) under
//! `_checkpoints/<group>/p<p>/e<epoch>-<n>.ckpt` (readers of the archive skip `_` folders): a full
//! layer, then incremental layers holding only the pairs changed since the layer before
//! (`playsource_domain`'s [`Engine::take_layer`](playsource_domain::Engine::take_layer)). A flush that checkpoints writes its layer file
//! *before* its transaction and commits the new manifest (the files, oldest first, and the
//! offsets they are exact at) in `stream_checkpoints`, so exactly-once holds as with the offsets:
//! a crash before the commit leaves an unlisted file, collected later; after it, the manifest
//! names files that exist.
//!
//! The loop only copies what changed
//! ([`Engine::take_layer`](playsource_domain::Engine::take_layer)); sorting, encoding and writing run
//! in the flush task, off the loop. When the incremental layers weigh half as much as the full
//! one, or number [`MAX_LAYERS`], a background job ([`merge`]) folds the chain into one new full
//! layer; the next checkpoint's manifest starts with it and the files it replaces are deleted
//! after that commit ([`Manifest::next`]). A new owner deletes the unit's files no manifest
//! names ([`collect_garbage`]).

mod error;
mod files;
mod format;
mod manifest;
mod unit;

pub use error::CheckpointError;
pub use files::{
    collect_garbage, delete_superseded, folder, layer_path, merge, restore, write_layer, LayerFile,
    Merged, TakenLayer,
};
pub use format::{Decoder, Encoder, VERSION};
pub use manifest::{Manifest, NextManifest, MAX_LAYERS};
pub use unit::{CheckpointNow, Checkpointing, PendingCheckpoint, SLICE, SLICE_EVERY};

/// Version of the manifest and layer encoding, stored with the manifest; another version is
/// ignored (the unit then rebuilds from Kafka or the archive).
pub const FORMAT: i32 = 4;

#[cfg(test)]
mod tests;
