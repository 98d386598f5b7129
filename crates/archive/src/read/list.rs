//! Finding the data files of a topic's day partitions.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use playsource_domain::Day;

use crate::error::Error;
use crate::layout::{is_data_file, ArchiveLayout};

/// The `*.parquet` files of `topic_dir` for every day in `days`, sorted by path. Looks in
/// `<root>/<topic_dir>/date=YYYY-MM-DD/` and every sub-folder of it (normally `hour=HH`), skipping
/// names that start with `.` or `_` (temporary files, `_staging`, `_SUCCESS`). Missing folders
/// are simply empty.
pub fn list_files(
    layout: &ArchiveLayout,
    topic_dir: &str,
    days: RangeInclusive<Day>,
) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut day = *days.start();
    while day <= *days.end() {
        collect_files(&layout.day_dir(topic_dir, day), &mut out)?;
        day = day.plus(1);
    }
    out.sort();
    Ok(out)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
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
        // Follows symlinks, as readers of a Hive layout do.
        let meta = std::fs::metadata(&path).map_err(|cause| Error::Io {
            action: "inspect",
            path: path.clone(),
            cause,
        })?;
        if meta.is_dir() {
            if !name.starts_with('.') && !name.starts_with('_') {
                collect_files(&path, out)?;
            }
        } else if meta.is_file() && is_data_file(name) {
            out.push(path);
        }
    }
    Ok(())
}
