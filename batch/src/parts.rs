//! A shard's part of a day in Postgres (`batch_shard_*`, migration 0010), and the publish of the
//! day by the shard that records the last part (see [`crate::shard`]). The statements are in
//! `playsource_store::batch`.

use std::path::{Path, PathBuf};

use playsource_archive::ArchiveStore;
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::Day;
use playsource_store::batch as store;
use sqlx::PgPool;

use crate::enriched::StagedDir;
use crate::error::Error;
use crate::publish::{
    clear_day, insert_hourly, insert_video_daily, lock_day, mark_complete, what, Published,
};
use crate::shard::Shard;

/// One shard's part of a day.
#[derive(Clone, Copy, Debug)]
pub struct PartRows<'a> {
    pub day: Day,
    pub shard: Shard,
    /// The fingerprint of the day's listing ([`crate::shard::listing_fingerprint`]).
    pub inputs: &'a str,
    pub hourly: &'a [HourlyRow],
    pub video_daily: &'a [VideoDayRow],
    pub plays: i64,
    pub impressions: i64,
    /// The shard's staged enriched plays.
    pub enriched_dir: &'a Path,
}

/// The day as the last shard published it.
#[derive(Clone, Debug)]
pub struct DayPublished {
    pub published: Published,
    /// Counted plays of the whole day.
    pub plays: i64,
    /// Impressions of the whole day.
    pub impressions: i64,
    /// Where the day's enriched plays now are.
    pub enriched_dir: PathBuf,
}

/// What recording a part did.
#[derive(Clone, Debug)]
pub enum Recorded {
    /// Recorded; `parts` of the N parts (with the same fingerprint) are in.
    Waiting { parts: u32 },
    /// This part completed the set: the day is published.
    Published(DayPublished),
}

/// Records `rows` (replacing this shard's previous part of the day), and publishes the day when
/// it completes the set of N parts with the same fingerprint — all in one transaction under the
/// day's advisory lock, so of shards finishing together exactly one publishes.
pub async fn record_part(
    pool: &PgPool,
    archive: &ArchiveStore,
    rows: &PartRows<'_>,
    plays_topic: &str,
    allow_empty: bool,
) -> Result<Recorded, Error> {
    let (day, shard) = (rows.day, rows.shard);
    let (count, index) = (shard.count as i32, shard.index as i32);
    let w = |step: &str| what(day, &format!("{step} (shard {shard})"));
    let mut tx = pool
        .begin()
        .await
        .map_err(Error::db(w("begin a transaction")))?;
    lock_day(&mut tx, day).await?;
    let old_dir = store::delete_part(&mut tx, day, count, index)
        .await
        .map_err(Error::db(w("replace the shard's previous part")))?;
    store::insert_part(
        &mut tx,
        &store::Part {
            day,
            shard_count: count,
            shard_index: index,
            inputs: rows.inputs,
            plays: rows.plays,
            impressions: rows.impressions,
            enriched_dir: rows.enriched_dir.to_string_lossy().as_ref(),
        },
    )
    .await
    .map_err(Error::db(w("record the shard's part")))?;
    insert_hourly(&mut tx, day, Some((count, index)), rows.hourly).await?;
    insert_video_daily(&mut tx, day, Some((count, index)), rows.video_daily).await?;

    let parts = store::parts_of(&mut tx, day, count, rows.inputs)
        .await
        .map_err(Error::db(w("count the parts recorded")))?;
    let have = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    if have < shard.count {
        tx.commit().await.map_err(Error::db(w("commit")))?;
        remove_old(archive, old_dir, rows.enriched_dir);
        return Ok(Recorded::Waiting { parts: have });
    }

    // The last part: sum the N parts into the batch view, as one publish.
    let (plays, impressions) = store::sum_parts(&mut tx, day, count)
        .await
        .map_err(Error::db(w("sum the parts")))?;
    if plays == 0 && !allow_empty {
        // Publishes nothing and records nothing (the transaction rolls back).
        drop(tx);
        return Err(Error::EmptyShardedDay {
            day,
            count: shard.count,
        });
    }
    let dirs: Vec<(u32, PathBuf)> = parts
        .iter()
        .map(|(index, dir)| (*index as u32, PathBuf::from(dir)))
        .collect();
    let staged = {
        let (dirs, store) = (dirs.clone(), archive.clone());
        tokio::task::spawn_blocking(move || -> Result<StagedDir, Error> {
            let staged = StagedDir::create(&store, day)?;
            for (i, dir) in &dirs {
                let missing = || Error::ShardFilesMissing {
                    day,
                    index: *i,
                    count: shard.count,
                    path: dir.clone(),
                };
                // Recorded as the shard saw the archive: its path or URL under this root.
                let rel = store.rel_of(dir).ok_or_else(missing)?;
                if !store.dir_exists(&rel)? {
                    return Err(missing());
                }
                staged.take_files_of(&rel, &format!("shard-{i:05}-"))?;
            }
            Ok(staged)
        })
        .await
        .map_err(|_| Error::Worker { day })??
    };
    clear_day(&mut tx, day).await?;
    store::sum_parts_into_hourly(&mut tx, day, count)
        .await
        .map_err(Error::db(w("sum the parts into batch_hourly")))?;
    store::sum_parts_into_video_daily(&mut tx, day, count)
        .await
        .map_err(Error::db(w("sum the parts into batch_video_daily")))?;
    let published = mark_complete(&mut tx, day, plays, impressions, plays_topic).await?;
    // The parts are spent: a later re-run of one shard alone must not republish the day.
    store::delete_parts(&mut tx, day, count)
        .await
        .map_err(Error::db(w("remove the published parts")))?;
    tx.commit().await.map_err(Error::db(w("commit")))?;

    let store = archive.clone();
    let enriched_dir = tokio::task::spawn_blocking(move || {
        let final_dir = staged.commit()?;
        for (_, dir) in dirs {
            if let Some(rel) = store.rel_of(&dir) {
                let _ = store.delete_dir(&rel);
            }
        }
        Ok::<_, Error>(final_dir)
    })
    .await
    .map_err(|_| Error::Worker { day })??;
    remove_old(archive, old_dir, rows.enriched_dir);
    Ok(Recorded::Published(DayPublished {
        published,
        plays,
        impressions,
        enriched_dir,
    }))
}

/// Removes the enriched plays of a shard's replaced part (not the new one).
fn remove_old(archive: &ArchiveStore, old: Option<String>, new: &Path) {
    if let Some(old) = old {
        let old = PathBuf::from(old);
        if old != new {
            if let Some(rel) = archive.rel_of(&old) {
                let _ = archive.delete_dir(&rel);
            }
        }
    }
}
