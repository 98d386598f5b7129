//! Closing the gap between a catalog load and the cache's next refresh (docs/reference.md §2): before a
//! flush stages or publishes anything, one small query lists the catalog versions newer than the
//! oldest cache its units enriched with. A unit that counted a play at or after such a version's
//! effective time (with the older cache) is withheld from the flush — nothing of it reaches the
//! views, the offsets, the archive or the enriched topic — and the fresh catalog goes back to the
//! loop, which rebuilds the unit from its last durable point (see docs/stream.md).

use chrono::{DateTime, Utc};
use playsource_domain::Catalog;
use sqlx::PgPool;

use crate::error::Error;
use crate::flush::shared::Shared;
use crate::metrics as m;
use crate::unit::{CatalogUse, UnitFlush};

/// Units withheld from a flush, and the catalog to rebuild them with.
#[derive(Default)]
pub struct Withheld {
    /// (partition, epoch) of each withheld unit.
    pub units: Vec<(i32, i64)>,
    /// The catalog as of the check (set when a unit was withheld).
    pub catalog: Option<Catalog>,
}

/// Versions with an id above `above`: (id, effective from; `None` for the beginning of time).
async fn newer_versions(
    pool: &PgPool,
    above: i64,
) -> Result<Vec<(i64, Option<DateTime<Utc>>)>, Error> {
    playsource_store::catalog::versions_above(pool, above)
        .await
        .map_err(Error::db("check for a newer catalog version"))
}

/// Whether one of `newer` applies to a play this unit enriched with an older cache.
fn applies(newer: &[(i64, Option<DateTime<Utc>>)], used: CatalogUse) -> bool {
    newer.iter().any(|(version, from)| {
        *version > used.version && from.is_none_or(|t| t.timestamp_millis() <= used.max_play_ts.0)
    })
}

/// Splits `flushes` into those to commit and those withheld because a newer catalog version
/// applies to plays they counted. One query per flush, none when no unit enriched a play.
pub async fn withhold_stale(
    s: &Shared,
    flushes: Vec<UnitFlush>,
) -> Result<(Vec<UnitFlush>, Withheld), Error> {
    let Some(oldest) = flushes
        .iter()
        .filter_map(|f| f.catalog_use)
        .map(|u| u.version)
        .min()
    else {
        return Ok((flushes, Withheld::default()));
    };
    let newer = s
        .retry
        .run("check for a newer catalog version", |_| {
            newer_versions(&s.pool, oldest)
        })
        .await?;
    if newer.is_empty() {
        return Ok((flushes, Withheld::default()));
    }
    let (stale, keep): (Vec<UnitFlush>, Vec<UnitFlush>) = flushes
        .into_iter()
        .partition(|f| f.catalog_use.is_some_and(|u| applies(&newer, u)));
    if stale.is_empty() {
        return Ok((keep, Withheld::default()));
    }
    let catalog = s
        .retry
        .run("read the catalog", |_| async {
            Ok(playsource_store::catalog::fetch_catalog(&s.pool).await?)
        })
        .await?;
    let mut units = Vec::with_capacity(stale.len());
    for f in stale {
        let (p, epoch) = (f.commit.partition, f.commit.epoch);
        tracing::info!(
            partition = p,
            enriched_with = f.catalog_use.map(|u| u.version),
            "a catalog version loaded since the last refresh applies to plays this unit counted; rebuilding it with the new catalog"
        );
        ::metrics::counter!(m::CATALOG_REBUILDS).increment(1);
        units.push((p, epoch));
        // Its dead letters were produced when read (at-least-once, as for a fenced flush); its
        // archive files and enriched plays are dropped unwritten and come again from the rebuild.
        drop(f);
    }
    Ok((
        keep,
        Withheld {
            units,
            catalog: Some(catalog),
        },
    ))
}

#[cfg(test)]
mod tests {
    use playsource_domain::Ts;

    use super::*;

    fn at(ms: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(ms)
    }

    #[test]
    fn a_newer_version_applies_from_its_effective_time_on() {
        let used = CatalogUse {
            version: 1,
            max_play_ts: Ts(1_000),
        };
        // Effective at or before the greatest play: applies.
        assert!(applies(&[(2, at(1_000))], used));
        assert!(applies(&[(2, at(10))], used));
        // Effective after every play counted: the plays keep the version they had.
        assert!(!applies(&[(2, at(1_001))], used));
        // Already in the cache the unit used.
        assert!(!applies(&[(1, at(10))], used));
        // From the beginning of time (a first version loaded after the stream started).
        assert!(applies(
            &[(1, None)],
            CatalogUse {
                version: 0,
                max_play_ts: Ts(0),
            }
        ));
    }
}
