//! The catalog side input (docs/reference.md §2) as an in-process cache: the whole temporal catalog —
//! every version ever loaded, each holding only the videos it changed (the catalog is small, so
//! all versions are kept, whatever the lookback) — is held in memory and swapped for a fresh
//! copy from Postgres every `--catalog-ttl-secs` by a background task, so the hot path never
//! queries the database. A play is enriched with the version in effect at its ts
//! ([`Catalog::at`]), so a replay after a restart enriches it as the live run did, as long as
//! the version was loaded before the live run committed the play. A version loaded between two
//! refreshes that applies to plays counted since the last flush is caught before that flush
//! commits ([`crate::catalog_check`]) and the unit rebuilt with it (see docs/stream.md).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use playsource_domain::Catalog;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics as m;

/// The highest version id a catalog holds (0 when none was loaded): a version with a higher id
/// was loaded after it was read.
pub fn held_version(catalog: &Catalog) -> i64 {
    catalog
        .versions()
        .iter()
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
}

/// A shared, periodically refreshed catalog.
#[derive(Clone, Default)]
pub struct CatalogCache {
    current: Arc<RwLock<Arc<Catalog>>>,
}

impl CatalogCache {
    /// The catalog as of the last refresh (cheap: clones an `Arc`).
    pub fn get(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the catalog.
    pub fn set(&self, catalog: Catalog) {
        ::metrics::gauge!(m::CATALOG_VIDEOS).set(catalog.len() as f64);
        let fresh = Arc::new(catalog);
        match self.current.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// Loads the catalog from Postgres now.
    pub async fn refresh(&self, pool: &PgPool) -> Result<usize, Error> {
        let catalog = playsource_store::catalog::fetch_catalog(pool).await?;
        let n = catalog.len();
        self.set(catalog);
        Ok(n)
    }

    /// Refreshes every `ttl` until `shutdown`; a failed refresh keeps the previous catalog.
    pub fn spawn_refresher(
        &self,
        pool: PgPool,
        ttl: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        if let Err(e) = cache.refresh(&pool).await {
                            tracing::warn!(error = %e, "catalog refresh failed; keeping the previous catalog");
                        }
                    }
                }
            }
        })
    }
}
