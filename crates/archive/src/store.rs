//! Where the archive lives (docs/reference.md §5): a local folder (the default) or an object store
//! (`s3://bucket/prefix`, configured by the usual `AWS_*` variables, `AWS_ENDPOINT_URL` for
//! S3-compatible servers). The layout under the root is the same in both.
//!
//! [`ArchiveStore`] is the one handle every reader and writer goes through; paths are relative to
//! the archive root (`plays/date=2026-11-21/hour=07/p0-o1-9.parquet`). On a local root the files
//! keep the crash-safe `std::fs` path of [`crate::write`] (a hidden temporary file, fsynced,
//! renamed into place, folder fsynced): object_store's `LocalFileSystem` does not fsync, and a
//! local archive must survive a power cut as it did before. On an object store a file is one PUT,
//! so a reader sees all of it or nothing; [`ArchiveStore::put_parquet_if_absent`] is a
//! conditional PUT (`If-None-Match: *`, object_store's `PutMode::Create`), so a file name is
//! written at most once even when two processes race for it.

mod files;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::future::Future;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use playsource_domain::Day;

use crate::compact::{published_covers, published_of_pending, PENDING_DIR};
use crate::error::Error;
use crate::layout::{date_segment, is_data_file, ArchiveLayout};
use crate::read::walk_dir;
use crate::write::{write_file, writer_properties};

/// The archive root: a local folder or a prefix in an object store.
#[derive(Clone)]
pub struct ArchiveStore {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Local(PathBuf),
    Remote(Arc<Remote>),
}

struct Remote {
    store: Arc<dyn ObjectStore>,
    /// The key prefix of the root (no leading or trailing `/`; empty for a bucket's root).
    prefix: String,
    /// `s3://bucket[/prefix]`, for messages.
    url: String,
    /// Runs the object-store requests, so the blocking API works from any thread.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Never blocks, so the last handle may be dropped inside an async task.
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ArchiveStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Whether `location` names an object store rather than a local path.
pub fn is_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

impl ArchiveStore {
    /// The archive at `location`: a local path, `file:///path`, or `s3://bucket[/prefix]`
    /// (`s3a://` too), configured from the `AWS_*` variables (`AWS_ENDPOINT_URL` for an
    /// S3-compatible server; plain `http://` endpoints are allowed).
    pub fn open(location: &str) -> Result<ArchiveStore, Error> {
        if !is_url(location) {
            return Ok(ArchiveStore::local(location));
        }
        let bad = |message: String| Error::Location {
            location: location.to_owned(),
            message,
        };
        let url = url::Url::parse(location).map_err(|e| bad(e.to_string()))?;
        match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("a file:// URL needs an absolute path".into()))?;
                Ok(ArchiveStore::local(path))
            }
            "s3" | "s3a" => {
                let bucket = url.host_str().unwrap_or_default();
                if bucket.is_empty() {
                    return Err(bad("the URL names no bucket".into()));
                }
                let mut builder = AmazonS3Builder::from_env().with_url(location);
                let endpoint = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .unwrap_or_default();
                if endpoint.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                let store = builder
                    .build()
                    .map_err(|e| bad(format!("the S3 client could not be configured: {e}")))?;
                let prefix = url.path().trim_matches('/').to_owned();
                ArchiveStore::remote(Arc::new(store), prefix, location)
            }
            other => Err(bad(format!(
                "the scheme {other}:// is not supported (use a local path or s3://)"
            ))),
        }
    }

    /// A local archive root.
    pub fn local(root: impl Into<PathBuf>) -> ArchiveStore {
        ArchiveStore {
            kind: Kind::Local(root.into()),
        }
    }

    /// An archive under `prefix` of an object store (e.g. an in-memory store in tests).
    pub fn remote(
        store: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
        url: &str,
    ) -> Result<ArchiveStore, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("archive-store")
            .enable_all()
            .build()
            .map_err(|cause| Error::Io {
                action: "start the object-store client threads for",
                path: PathBuf::from(url),
                cause,
            })?;
        Ok(ArchiveStore {
            kind: Kind::Remote(Arc::new(Remote {
                store,
                prefix: prefix.into().trim_matches('/').to_owned(),
                url: url.trim_end_matches('/').to_owned(),
                rt: Some(rt),
            })),
        })
    }

    /// The local root, if the archive is a local folder.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(root) => Some(root),
            Kind::Remote(_) => None,
        }
    }

    /// The local layout, if the archive is a local folder.
    pub fn local_layout(&self) -> Option<ArchiveLayout> {
        self.local_root().map(ArchiveLayout::new)
    }

    /// The root as given: a path or a URL.
    pub fn display(&self) -> String {
        match &self.kind {
            Kind::Local(root) => root.display().to_string(),
            Kind::Remote(r) => r.url.clone(),
        }
    }

    /// The root as a path: the local folder, or the URL (`s3://bucket/prefix`) as a path.
    pub fn location(&self) -> PathBuf {
        match &self.kind {
            Kind::Local(root) => root.clone(),
            Kind::Remote(r) => PathBuf::from(&r.url),
        }
    }

    /// `rel` as a full path or URL, for messages.
    pub fn describe(&self, rel: &str) -> PathBuf {
        match &self.kind {
            Kind::Local(root) => root.join(rel),
            Kind::Remote(r) => PathBuf::from(format!("{}/{rel}", r.url)),
        }
    }

    /// Writes `batches` as one Parquet file at `rel`, replacing a file of that name; a reader
    /// sees the old file, or the whole new one. Returns (rows, bytes).
    pub fn put_parquet(&self, rel: &str, batches: &[RecordBatch]) -> Result<(u64, u64), Error> {
        match &self.kind {
            Kind::Local(root) => write_file(&root.join(rel), batches),
            Kind::Remote(r) => {
                let (rows, data) = encode(&self.describe(rel), batches)?;
                let bytes = data.len() as u64;
                r.put(rel, data.into(), PutMode::Overwrite)?;
                Ok((rows, bytes))
            }
        }
    }

    /// Writes already encoded bytes (a whole file, e.g. Parquet encoded in memory) at `rel`,
    /// replacing a file of that name; a reader sees the old file, or the whole new one (locally a
    /// temporary file renamed over it, on an object store one PUT).
    pub fn put_bytes(&self, rel: &str, data: impl Into<Bytes>) -> Result<(), Error> {
        let data: Bytes = data.into();
        match &self.kind {
            Kind::Local(root) => crate::write::write_bytes_atomic(&root.join(rel), &data),
            Kind::Remote(r) => r.put(rel, data.into(), PutMode::Overwrite),
        }
    }

    /// The Parquet footer (the encoded file metadata, without its length and magic) of the file
    /// at `rel`, read from its end; `None` when there is no such file.
    pub fn footer(&self, rel: &str) -> Result<Option<Bytes>, Error> {
        let bad = |message: &str| Error::Parquet {
            action: "read (is it a Parquet file?)",
            path: self.describe(rel),
            cause: parquet::errors::ParquetError::General(message.to_owned()),
        };
        // The file may be replaced between two requests: the second one is checked again.
        let mut want = 64 * 1024u64;
        for _ in 0..4 {
            let Some(tail) = self.tail(rel, want)? else {
                return Ok(None);
            };
            let n = tail.len();
            if n < 12 || &tail[n - 4..] != b"PAR1" {
                return Err(bad("no Parquet footer at its end"));
            }
            let mut len4 = [0u8; 4];
            len4.copy_from_slice(&tail[n - 8..n - 4]);
            let len = u32::from_le_bytes(len4) as usize;
            if len + 8 <= n {
                return Ok(Some(tail.slice(n - 8 - len..n - 8)));
            }
            want = (len + 8) as u64;
        }
        Err(bad("its footer changed while it was read"))
    }

    /// Up to the last `n` bytes of the file at `rel`; `None` when there is no such file.
    fn tail(&self, rel: &str, n: u64) -> Result<Option<Bytes>, Error> {
        match &self.kind {
            Kind::Local(root) => {
                use std::io::{Read, Seek, SeekFrom};
                let path = root.join(rel);
                let io = |action| {
                    let path = path.clone();
                    move |cause| Error::Io {
                        action,
                        path,
                        cause,
                    }
                };
                let mut file = match fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(cause) => return Err(io("open")(cause)),
                };
                let size = file.metadata().map_err(io("inspect"))?.len();
                let start = size.saturating_sub(n);
                file.seek(SeekFrom::Start(start)).map_err(io("read"))?;
                let mut buf = Vec::with_capacity((size - start) as usize);
                file.read_to_end(&mut buf).map_err(io("read"))?;
                Ok(Some(Bytes::from(buf)))
            }
            Kind::Remote(r) => {
                let key = r.key(rel);
                let store = Arc::clone(&r.store);
                r.run("read the end of", &self.describe(rel), async move {
                    let opts = object_store::GetOptions {
                        range: Some(object_store::GetRange::Suffix(n)),
                        ..object_store::GetOptions::default()
                    };
                    match store.get_opts(&key, opts).await {
                        Ok(got) => got.bytes().await.map(Some),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
            }
        }
    }

    /// Writes `batches` as one Parquet file at `rel` only if no file has that name: `Ok(None)`
    /// when one already exists (it is left as it is), else `Ok(Some((rows, bytes)))`. Atomic
    /// on both kinds of root (a hard link of a complete temporary file locally, a conditional PUT
    /// on an object store).
    pub fn put_parquet_if_absent(
        &self,
        rel: &str,
        batches: &[RecordBatch],
    ) -> Result<Option<(u64, u64)>, Error> {
        match &self.kind {
            Kind::Local(root) => {
                let path = root.join(rel);
                if path.exists() {
                    return Ok(None);
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                let tmp = path.with_file_name(format!(".{}.new", name.unwrap_or_default()));
                let (rows, bytes) = write_file(&tmp, batches)?;
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        sync_parent(&path)?;
                        Ok(Some((rows, bytes)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
                    Err(cause) => Err(Error::Io {
                        action: "link the new file into place at",
                        path,
                        cause,
                    }),
                }
            }
            Kind::Remote(r) => {
                let (rows, data) = encode(&self.describe(rel), batches)?;
                let bytes = data.len() as u64;
                match r.put(rel, data.into(), PutMode::Create) {
                    Ok(()) => Ok(Some((rows, bytes))),
                    Err(Error::Store {
                        cause: object_store::Error::AlreadyExists { .. },
                        ..
                    }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The whole file at `rel`.
    pub fn get(&self, rel: &str) -> Result<Bytes, Error> {
        match &self.kind {
            Kind::Local(root) => {
                let path = root.join(rel);
                fs::read(&path).map(Bytes::from).map_err(|cause| Error::Io {
                    action: "read",
                    path,
                    cause,
                })
            }
            Kind::Remote(r) => {
                let key = r.key(rel);
                let store = Arc::clone(&r.store);
                r.run("read", &self.describe(rel), async move {
                    store.get(&key).await?.bytes().await
                })
            }
        }
    }

    /// Whether a file exists at `rel`.
    pub fn exists(&self, rel: &str) -> Result<bool, Error> {
        match &self.kind {
            Kind::Local(root) => Ok(root.join(rel).is_file()),
            Kind::Remote(r) => {
                let key = r.key(rel);
                let store = Arc::clone(&r.store);
                r.run("look up", &self.describe(rel), async move {
                    match store.head(&key).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                })
            }
        }
    }

    /// Deletes the file at `rel`; a missing file is not an error.
    pub fn delete(&self, rel: &str) -> Result<(), Error> {
        match &self.kind {
            Kind::Local(root) => {
                let path = root.join(rel);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(cause) => Err(Error::Io {
                        action: "delete",
                        path,
                        cause,
                    }),
                }
            }
            Kind::Remote(r) => {
                let key = r.key(rel);
                let store = Arc::clone(&r.store);
                r.run("delete", &self.describe(rel), async move {
                    match store.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                })
            }
        }
    }

    /// Moves the file `from` to `to` (relative paths): `Ok(false)` when `from` is gone (moved
    /// already). Locally a rename (replacing `to`) and an fsync of its folder; on an object store
    /// a conditional PUT of `to` (a file already there is kept: the same name holds the same
    /// rows), then the deletion of `from`, so a crash between the two leaves a copy that a retry
    /// finishes, never a missing file.
    pub fn move_file(&self, from: &str, to: &str) -> Result<bool, Error> {
        match &self.kind {
            Kind::Local(root) => {
                let (src, dst) = (root.join(from), root.join(to));
                if !src.exists() {
                    return Ok(false);
                }
                let dir = dst.parent().map_or_else(|| root.clone(), Path::to_path_buf);
                fs::create_dir_all(&dir).map_err(|cause| Error::Io {
                    action: "create the archive folder",
                    path: dir.clone(),
                    cause,
                })?;
                match fs::rename(&src, &dst) {
                    Ok(()) => {}
                    // Moved meanwhile by another process.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && dst.exists() => {
                        return Ok(false)
                    }
                    Err(cause) => {
                        return Err(Error::Io {
                            action: "move a file into",
                            path: dst,
                            cause,
                        })
                    }
                }
                sync_parent(&dst)?;
                Ok(true)
            }
            Kind::Remote(r) => {
                let data = match self.get(from) {
                    Ok(data) => data,
                    Err(Error::Store {
                        cause: object_store::Error::NotFound { .. },
                        ..
                    }) => return Ok(false),
                    Err(e) => return Err(e),
                };
                match r.put(to, data.into(), PutMode::Create) {
                    Ok(())
                    | Err(Error::Store {
                        cause: object_store::Error::AlreadyExists { .. },
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
                self.delete(from)?;
                Ok(true)
            }
        }
    }

    /// Deletes the folder `rel_dir` and everything under it; a missing folder is not an error.
    pub fn delete_dir(&self, rel_dir: &str) -> Result<(), Error> {
        match &self.kind {
            Kind::Local(root) => {
                let dir = root.join(rel_dir);
                match fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(cause) => Err(Error::Io {
                        action: "delete the folder",
                        path: dir,
                        cause,
                    }),
                }
            }
            Kind::Remote(_) => {
                for (rel, _) in self.list(rel_dir)? {
                    self.delete(&rel)?;
                }
                Ok(())
            }
        }
    }

    /// Every file under the folder `rel_dir` (recursively, hidden and `_` names included), as
    /// (path relative to the root, size), sorted by path.
    pub fn list(&self, rel_dir: &str) -> Result<Vec<(String, u64)>, Error> {
        let rel_dir = rel_dir.trim_matches('/');
        let mut out = match &self.kind {
            Kind::Local(root) => {
                let mut out = Vec::new();
                walk_dir(&root.join(rel_dir), true, &mut |path, _, len| {
                    if let Ok(rel) = path.strip_prefix(root) {
                        out.push((rel.to_string_lossy().into_owned(), len));
                    }
                })?;
                out
            }
            Kind::Remote(r) => {
                let prefix = r.key(rel_dir);
                let strip = if r.prefix.is_empty() {
                    0
                } else {
                    r.prefix.len() + 1
                };
                let store = Arc::clone(&r.store);
                let metas: Vec<object_store::ObjectMeta> =
                    r.run("list", &self.describe(rel_dir), async move {
                        store.list(Some(&prefix)).try_collect().await
                    })?;
                metas
                    .into_iter()
                    .filter_map(|m| {
                        let key = m.location.as_ref();
                        key.get(strip..).map(|rel| (rel.to_owned(), m.size))
                    })
                    .collect()
            }
        };
        out.sort();
        Ok(out)
    }

    /// The data files of `topic_dir` for every day in `days` (relative paths, sorted): every
    /// data file of the Hive layout (skipping names that start with `.` or `_` at any level below
    /// the day folder), plus the pending files (`_pending/<topic>/date=D/hour=HH/`, see
    /// [`crate::compact`]) that the published `p<p>.parquet` of their hour does not cover yet, so
    /// every committed row is listed exactly once, published or not.
    pub fn list_data_files(
        &self,
        topic_dir: &str,
        days: RangeInclusive<Day>,
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut day = *days.start();
        while day <= *days.end() {
            // Pending files first: a compaction between the two listings then shows as a
            // published file that covers them, never as rows in neither listing.
            let pending = self.list(&format!("{PENDING_DIR}/{topic_dir}/{}", date_segment(day)))?;
            let published = self.published_files(topic_dir, day)?;
            let mut covers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (rel, _) in pending {
                let Some((target, _)) = published_of_pending(&rel) else {
                    continue;
                };
                let depth_ok = target.matches('/').count() == 3;
                if !depth_ok {
                    continue;
                }
                if published.binary_search(&target).is_ok() {
                    if !covers.contains_key(&target) {
                        let c = published_covers(self, &target)?;
                        covers.insert(target.clone(), c);
                    }
                    let stem = rel
                        .rsplit('/')
                        .next()
                        .and_then(|n| n.strip_suffix(".parquet"))
                        .unwrap_or_default();
                    if covers.get(&target).is_some_and(|c| c.contains(stem)) {
                        continue;
                    }
                }
                out.push(rel);
            }
            out.extend(published);
            day = day.plus(1);
        }
        out.sort();
        Ok(out)
    }

    /// The data files of the Hive layout of `topic_dir` for `day` (relative paths, sorted).
    fn published_files(&self, topic_dir: &str, day: Day) -> Result<Vec<String>, Error> {
        let day_dir = format!("{topic_dir}/{}", date_segment(day));
        let mut out = Vec::new();
        if let Kind::Local(root) = &self.kind {
            walk_dir(&root.join(&day_dir), false, &mut |path, name, _| {
                if is_data_file(name) {
                    if let Ok(rel) = path.strip_prefix(root) {
                        out.push(rel.to_string_lossy().into_owned());
                    }
                }
            })?;
        } else {
            for (rel, _) in self.list(&day_dir)? {
                let below = rel.get(day_dir.len() + 1..).unwrap_or_default();
                let mut segments: Vec<&str> = below.split('/').collect();
                let Some(name) = segments.pop() else { continue };
                let hidden = segments
                    .iter()
                    .any(|s| s.starts_with('.') || s.starts_with('_'));
                if !hidden && is_data_file(name) {
                    out.push(rel);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Remote {
    fn key(&self, rel: &str) -> ObjPath {
        let rel = rel.trim_matches('/');
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else if rel.is_empty() {
            ObjPath::from(self.prefix.as_str())
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn put(&self, rel: &str, data: PutPayload, mode: PutMode) -> Result<(), Error> {
        let key = self.key(rel);
        let store = Arc::clone(&self.store);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let path = PathBuf::from(format!("{}/{rel}", self.url));
        self.run("write", &path, async move {
            store.put_opts(&key, data, opts).await.map(|_| ())
        })
    }

    /// Runs one request on the store's own runtime and waits for it (from any thread).
    fn run<T: Send + 'static>(
        &self,
        action: &'static str,
        path: &Path,
        fut: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let err = |cause| Error::Store {
            action,
            path: path.display().to_string(),
            cause,
        };
        let Some(rt) = &self.rt else {
            return Err(err(object_store::Error::Generic {
                store: "archive",
                source: "the object-store client was shut down".into(),
            }));
        };
        // Unconstrained: called from inside a tokio task (e.g. a test's or the CLI's runtime),
        // awaiting the JoinHandle would spend that task's cooperative budget, and once it is
        // spent tokio defers the wake-up to a scheduler this thread is blocking: a hang after
        // about 128 requests in one poll.
        match futures::executor::block_on(tokio::task::unconstrained(rt.spawn(fut))) {
            Ok(result) => result.map_err(err),
            Err(join) => Err(err(object_store::Error::Generic {
                store: "archive",
                source: Box::new(join),
            })),
        }
    }
}

/// Encodes `batches` as one Parquet file in memory with the archive's writer properties.
fn encode(path: &Path, batches: &[RecordBatch]) -> Result<(u64, Vec<u8>), Error> {
    let first = batches.first().ok_or_else(|| Error::NoBatches {
        path: path.to_path_buf(),
    })?;
    let parquet_err = |cause| Error::Parquet {
        action: "written",
        path: path.to_path_buf(),
        cause,
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), first.schema(), Some(writer_properties()))
        .map_err(parquet_err)?;
    let mut rows = 0u64;
    for batch in batches {
        writer.write(batch).map_err(parquet_err)?;
        rows += batch.num_rows() as u64;
    }
    let data = writer.into_inner().map_err(parquet_err)?;
    Ok((rows, data))
}

fn sync_parent(path: &Path) -> Result<(), Error> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|cause| Error::Io {
            action: "fsync the directory",
            path: dir.to_path_buf(),
            cause,
        })
}

// Only paths convert: a string may be a URL, so it goes through [`ArchiveStore::open`].
impl From<PathBuf> for ArchiveStore {
    fn from(root: PathBuf) -> ArchiveStore {
        ArchiveStore::local(root)
    }
}

impl From<&Path> for ArchiveStore {
    fn from(root: &Path) -> ArchiveStore {
        ArchiveStore::local(root)
    }
}

impl From<&PathBuf> for ArchiveStore {
    fn from(root: &PathBuf) -> ArchiveStore {
        ArchiveStore::local(root.as_path())
    }
}

impl From<&ArchiveLayout> for ArchiveStore {
    fn from(layout: &ArchiveLayout) -> ArchiveStore {
        ArchiveStore::local(layout.root())
    }
}
