//! The result cache and the freshness watcher.
//!
//! Answers whose whole range is batch-complete never change until the batch layer republishes a
//! day, so they are cached (moka), keyed by the normalised query and the batch version they were
//! read at. The watcher re-reads the freshness (and with it the batch version: count and greatest
//! `generation` of `batch_days`) at most once a second; when the version moves, the cache is
//! emptied. Realtime answers are never cached, so they are never more than a second stale.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moka::future::Cache;
use sqlx::PgPool;

use crate::error::Problem;
use crate::merge::{self, BatchVersion, Freshness};
use crate::metrics as m;
use crate::model::VideoDiscovery;
use crate::params::{SeriesQuery, VideoQuery};
use crate::series_json::SeriesBody;
use crate::shed::UncachedLimit;

/// How old the freshness snapshot may be before a request re-reads it.
pub const FRESHNESS_MAX_AGE: Duration = Duration::from_secs(1);

/// What is cached: a normalised query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// A series request, its `from`/`to` rounded up to the bucket grid (see [`CacheKey::series`]).
    Series(SeriesQuery),
    /// A per-video request.
    Video(VideoQuery),
}

impl CacheKey {
    /// The key of a series request: `from` and `to` rounded up to the bucket grid (`lo`, `hi`).
    /// The buckets are those whose start is in `[from, to)`, so every `from`/`to` between two
    /// grid points asks for the same buckets: they share one entry (a client varying `from` by
    /// the millisecond cannot bypass the cache). Each answer still echoes its own `from`/`to`.
    pub fn series(q: &SeriesQuery) -> CacheKey {
        CacheKey::Series(SeriesQuery {
            from: q.lo,
            to: q.hi,
            ..q.clone()
        })
    }
}

/// A cached answer body (the `source` object is added fresh on every answer).
#[derive(Clone, Debug)]
pub enum Cached {
    /// A series, serialised.
    Series(Arc<SeriesBody>),
    /// A per-video answer.
    Video(Arc<VideoDiscovery>),
}

impl Cached {
    /// Estimated bytes held (the cache weight).
    pub fn bytes(&self) -> usize {
        const ENTRY: usize = 128;
        match self {
            Cached::Series(s) => ENTRY + s.head.len(),
            Cached::Video(v) => {
                ENTRY
                    + v.rows
                        .iter()
                        .map(|r| r.row_type.len() + std::mem::size_of_val(r))
                        .sum::<usize>()
            }
        }
    }
}

/// Why [`ResultCache::get_or_compute`] did not cache an answer.
#[derive(Debug)]
pub enum Uncached {
    /// The answer touches a day that is not batch-complete: served, not cached.
    Partial(Cached),
    /// The answer could not be computed (the database failed, or too many uncached queries).
    Failed(Problem),
}

/// An answer read from the views: the value to cache, whether every day in it was
/// batch-complete, and whatever else the caller needs from the same read.
pub struct Computed<X> {
    pub value: Cached,
    pub all_batch: bool,
    pub extra: X,
}

/// The cache of batch-complete answers, plus hit/miss counters.
pub struct ResultCache {
    cache: Cache<(BatchVersion, CacheKey), Cached>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ResultCache {
    /// A cache holding answers of at most `max_bytes` in all (weighted by their size in bytes;
    /// an answer larger than the whole budget is served but not kept), each at most an hour.
    pub fn new(max_bytes: u64) -> Self {
        ResultCache {
            cache: Cache::builder()
                .max_capacity(max_bytes.max(1))
                .weigher(|_, v: &Cached| u32::try_from(v.bytes()).unwrap_or(u32::MAX))
                .time_to_live(Duration::from_secs(3600))
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Answers a query: through the cache when `cacheable` (its range looks batch-complete; an
    /// answer that turns out to touch a realtime day is served but not kept), otherwise straight
    /// from `compute`. `extra` comes back only from a direct read (`None` on the cache path).
    /// Every run of `compute` holds a slot of `limit` (none free: 429).
    pub async fn answer<X, Fut>(
        &self,
        limit: &UncachedLimit,
        version: BatchVersion,
        key: CacheKey,
        cacheable: bool,
        compute: impl Fn() -> Fut,
    ) -> Result<(Cached, Option<X>), Problem>
    where
        Fut: std::future::Future<Output = Result<Computed<X>, sqlx::Error>>,
    {
        if !cacheable {
            let _slot = limit.enter()?;
            let c = compute().await?;
            return Ok((c.value, Some(c.extra)));
        }
        let got = self
            .get_or_compute(version, key, async {
                let _slot = limit.enter().map_err(Uncached::Failed)?;
                let c = compute().await.map_err(|e| Uncached::Failed(e.into()))?;
                if c.all_batch {
                    Ok(c.value)
                } else {
                    Err(Uncached::Partial(c.value))
                }
            })
            .await;
        match got {
            Ok(value) => Ok((value, None)),
            Err(e) => match &*e {
                Uncached::Partial(value) => Ok((value.clone(), None)),
                Uncached::Failed(p) => Err(p.clone()),
            },
        }
    }

    /// Returns the cached answer for `key` at `version`, or runs `compute` (once: concurrent
    /// callers of the same key wait for it and share its result) and caches what it returns.
    /// `compute` returns `Err(Uncached::Partial(..))` for an answer that must not be cached (a
    /// day of its range is not batch-complete after all); it is handed back all the same.
    async fn get_or_compute<F>(
        &self,
        version: BatchVersion,
        key: CacheKey,
        compute: F,
    ) -> Result<Cached, Arc<Uncached>>
    where
        F: std::future::Future<Output = Result<Cached, Uncached>>,
    {
        let ran = std::sync::atomic::AtomicBool::new(false);
        let result = self
            .cache
            .try_get_with((version, key), async {
                ran.store(true, Ordering::Relaxed);
                compute.await
            })
            .await;
        if ran.load(Ordering::Relaxed) {
            self.misses.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::CACHE_MISSES).increment(1);
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(m::CACHE_HITS).increment(1);
        }
        result
    }

    /// Drops every entry (a batch day was published or republished).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
        metrics::counter!(m::CACHE_INVALIDATIONS).increment(1);
    }

    /// Estimated bytes held, after pending evictions are applied.
    pub async fn weighted_bytes(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[derive(Clone)]
struct Snapshot {
    at: Instant,
    freshness: Arc<Freshness>,
}

/// Keeps a freshness snapshot at most [`FRESHNESS_MAX_AGE`] old, empties the cache when the
/// batch version moves, and publishes the batch gauges (`playsource_batch_*`) on every re-read.
pub struct Watcher {
    snapshot: RwLock<Option<Snapshot>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Default for Watcher {
    fn default() -> Self {
        Watcher {
            snapshot: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

impl Watcher {
    fn recent(&self) -> Option<Arc<Freshness>> {
        let guard = self.snapshot.read().ok()?;
        let s = guard.as_ref()?;
        (s.at.elapsed() < FRESHNESS_MAX_AGE).then(|| s.freshness.clone())
    }

    /// The current freshness, re-read from the database when the snapshot is older than a
    /// second (one reader at a time; the others wait and share its result). Shared, not copied:
    /// every request reads it.
    pub async fn current(
        &self,
        pool: &PgPool,
        cache: &ResultCache,
    ) -> Result<Arc<Freshness>, sqlx::Error> {
        if let Some(f) = self.recent() {
            return Ok(f);
        }
        let _one = self.refresh.lock().await;
        if let Some(f) = self.recent() {
            return Ok(f);
        }
        let fresh = Arc::new(merge::freshness(pool).await?);
        record_freshness(&fresh);
        let previous = self
            .snapshot
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|s| s.freshness.version));
        if previous.is_some_and(|v| v != fresh.version) {
            tracing::info!(?previous, now = ?fresh.version, "batch view republished; cache emptied");
            cache.invalidate_all();
        }
        if let Ok(mut g) = self.snapshot.write() {
            *g = Some(Snapshot {
                at: Instant::now(),
                freshness: Arc::clone(&fresh),
            });
        }
        Ok(fresh)
    }
}

/// Publishes the batch view's state as read by the watcher (the `playsource_batch_*` gauges).
fn record_freshness(f: &Freshness) {
    let (days, generation) = f.version;
    metrics::gauge!(m::BATCH_COMPLETE_DAYS).set(days as f64);
    metrics::gauge!(m::BATCH_GENERATION).set(generation as f64);
    if let Some(day) = f.through {
        let start = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        metrics::gauge!(m::BATCH_LATEST_COMPLETE_DAY).set(start as f64);
    }
}
