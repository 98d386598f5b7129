//! File operations the batch layer needs on either kind of root: sizes of listed files, copies,
//! whole-object writes, and turning a described path back into one relative to the root.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;

use super::{ArchiveStore, Kind};
use crate::error::Error;

/// Object-store requests of one call run at most this many at a time.
const CONCURRENT_REQUESTS: usize = 16;

impl ArchiveStore {
    /// The sizes in bytes of the files `rels` (relative paths, e.g. from
    /// [`ArchiveStore::list_data_files`]), in order; a file gone meanwhile counts 0 (reading it
    /// then fails with an error naming it). On an object store this is one listing per folder
    /// (not one request per file).
    pub fn sizes(&self, rels: &[String]) -> Result<Vec<u64>, Error> {
        match &self.kind {
            Kind::Local(root) => Ok(rels
                .iter()
                .map(|rel| fs::metadata(root.join(rel)).map_or(0, |m| m.len()))
                .collect()),
            Kind::Remote(r) => {
                let folders: BTreeSet<&str> = rels
                    .iter()
                    .map(|rel| rel.rsplit_once('/').map_or("", |(dir, _)| dir))
                    .collect();
                let keys: Vec<ObjPath> = folders.iter().map(|dir| r.key(dir)).collect();
                let store = Arc::clone(&r.store);
                let metas: Vec<Vec<object_store::ObjectMeta>> =
                    r.run("list", &self.location(), async move {
                        futures::stream::iter(keys)
                            .map(|key| {
                                let store = Arc::clone(&store);
                                async move {
                                    let listed = store.list_with_delimiter(Some(&key)).await?;
                                    Ok::<_, object_store::Error>(listed.objects)
                                }
                            })
                            .buffer_unordered(CONCURRENT_REQUESTS)
                            .try_collect()
                            .await
                    })?;
                let size: HashMap<String, u64> = metas
                    .into_iter()
                    .flatten()
                    .map(|m| (m.location.to_string(), m.size))
                    .collect();
                Ok(rels
                    .iter()
                    .map(|rel| size.get(r.key(rel).as_ref()).copied().unwrap_or(0))
                    .collect())
            }
        }
    }

    /// Copies the file `from` to `to` (relative paths), replacing a file there: locally a hard
    /// link (a copy across file systems), creating `to`'s folder; on an object store a
    /// server-side copy, which a reader sees whole or not at all.
    pub fn copy_file(&self, from: &str, to: &str) -> Result<(), Error> {
        match &self.kind {
            Kind::Local(root) => {
                let (src, dst) = (root.join(from), root.join(to));
                if let Some(dir) = dst.parent() {
                    fs::create_dir_all(dir).map_err(|cause| Error::Io {
                        action: "create the archive folder",
                        path: dir.to_path_buf(),
                        cause,
                    })?;
                }
                let _ = fs::remove_file(&dst);
                if fs::hard_link(&src, &dst).is_err() {
                    fs::copy(&src, &dst).map_err(|cause| Error::Io {
                        action: "copy a file to",
                        path: dst.clone(),
                        cause,
                    })?;
                }
                Ok(())
            }
            Kind::Remote(r) => {
                let (src, dst) = (r.key(from), r.key(to));
                let store = Arc::clone(&r.store);
                r.run("copy a file to", &self.describe(to), async move {
                    store.copy(&src, &dst).await
                })
            }
        }
    }

    /// Makes the folder `rel_dir` exist: created locally; nothing to do on an object store
    /// (folders are key prefixes).
    pub fn create_dir(&self, rel_dir: &str) -> Result<(), Error> {
        if let Kind::Local(root) = &self.kind {
            let dir = root.join(rel_dir);
            fs::create_dir_all(&dir).map_err(|cause| Error::Io {
                action: "create the folder",
                path: dir,
                cause,
            })?;
        }
        Ok(())
    }

    /// Whether the folder `rel_dir` exists: locally a directory; on an object store, some file
    /// under it.
    pub fn dir_exists(&self, rel_dir: &str) -> Result<bool, Error> {
        match &self.kind {
            Kind::Local(root) => Ok(root.join(rel_dir).is_dir()),
            Kind::Remote(_) => Ok(!self.list(rel_dir)?.is_empty()),
        }
    }

    /// The path relative to the root of `described`, a path or URL given by
    /// [`ArchiveStore::describe`] (or an absolute local path under the root); `None` when it is
    /// not under this root.
    pub fn rel_of(&self, described: &Path) -> Option<String> {
        match &self.kind {
            Kind::Local(root) => {
                let rel = match described.strip_prefix(root) {
                    Ok(rel) => rel.to_path_buf(),
                    Err(_) => {
                        let abs = std::path::absolute(root).ok()?;
                        std::path::absolute(described)
                            .ok()?
                            .strip_prefix(&abs)
                            .ok()?
                            .to_path_buf()
                    }
                };
                Some(rel.to_string_lossy().trim_matches('/').to_owned())
            }
            Kind::Remote(r) => described
                .to_str()?
                .strip_prefix(&format!("{}/", r.url))
                .map(|rel| rel.trim_matches('/').to_owned()),
        }
    }
}
