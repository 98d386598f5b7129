//! Finding the data files of a topic's day partitions.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use playsource_domain::Day;

use crate::error::Error;
use crate::layout::ArchiveLayout;
use crate::store::ArchiveStore;

/// The data files of `topic_dir` for every day in `days` under a local root, sorted by path:
/// what [`ArchiveStore::list_data_files`] gives (the Hive layout's `*.parquet` files, skipping
/// names that start with `.` or `_`, plus the pending files not yet covered by a published file
/// of their hour), as full paths. Missing folders are simply empty.
pub fn list_files(
    layout: &ArchiveLayout,
    topic_dir: &str,
    days: RangeInclusive<Day>,
) -> Result<Vec<PathBuf>, Error> {
    let store = ArchiveStore::local(layout.root());
    Ok(store
        .list_data_files(topic_dir, days)?
        .into_iter()
        .map(|rel| layout.root().join(rel))
        .collect())
}

/// Visits every file under `dir` (recursively, following symlinks as readers of a Hive layout
/// do) as (path, name, size). With `hidden` false, folders whose names start with `.` or `_` are
/// skipped. A missing folder is empty.
pub(crate) fn walk_dir(
    dir: &Path,
    hidden: bool,
    visit: &mut dyn FnMut(&Path, &str, u64),
) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(cause) => {
            return Err(Error::Io {
                action: "list the archive folder",
                path: dir.to_path_buf(),
                cause,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|cause| Error::Io {
            action: "list the archive folder",
            path: dir.to_path_buf(),
            cause,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // Deleted meanwhile (a compacted pending file, a renamed temporary file).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(cause) => {
                return Err(Error::Io {
                    action: "inspect",
                    path: path.clone(),
                    cause,
                })
            }
        };
        if meta.is_dir() {
            if hidden || (!name.starts_with('.') && !name.starts_with('_')) {
                walk_dir(&path, hidden, visit)?;
            }
        } else if meta.is_file() {
            visit(&path, name, meta.len());
        }
    }
    Ok(())
}
