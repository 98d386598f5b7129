//! A unit's manifest: its chain of layer files, what the next checkpoint makes of it, and when the
//! chain is due for a merge.

use super::files::{LayerFile, Merged};

/// A chain this long is merged whatever its size.
pub const MAX_LAYERS: usize = 16;

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
