//! A shard's part of a day in Postgres (`batch_shard_*`, migration 0010), and the publish of the
//! day by the shard that records the last part (see [`crate::shard`]).

use std::path::{Path, PathBuf};

use playsource_archive::ArchiveStore;
use playsource_domain::aggregate::{HourlyRow, VideoDayRow};
use playsource_domain::Day;
use sqlx::PgPool;

use crate::enriched::StagedDir;
use crate::error::Error;
use crate::publish::{
    clear_day, date, insert_hourly, insert_video_daily, lock_day, mark_complete, what, Published,
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

#[derive(sqlx::FromRow)]
struct PartRow {
    shard_index: i32,
    enriched_dir: String,
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
    let old_dir: Option<String> = sqlx::query_scalar(
        "DELETE FROM batch_shard_parts WHERE day = $1 AND shard_count = $2 AND shard_index = $3 \
         RETURNING enriched_dir",
    )
    .bind(date(day))
    .bind(count)
    .bind(index)
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::db(w("replace the shard's previous part")))?;
    sqlx::query(
        "INSERT INTO batch_shard_parts (day, shard_count, shard_index, inputs, plays, impressions, enriched_dir) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(date(day))
    .bind(count)
    .bind(index)
    .bind(rows.inputs)
    .bind(rows.plays)
    .bind(rows.impressions)
    .bind(rows.enriched_dir.to_string_lossy().as_ref())
    .execute(&mut *tx)
    .await
    .map_err(Error::db(w("record the shard's part")))?;
    insert_hourly(&mut tx, day, Some((count, index)), rows.hourly).await?;
    insert_video_daily(&mut tx, day, Some((count, index)), rows.video_daily).await?;

    let parts: Vec<PartRow> = sqlx::query_as(
        "SELECT shard_index, enriched_dir FROM batch_shard_parts \
         WHERE day = $1 AND shard_count = $2 AND inputs = $3 ORDER BY shard_index",
    )
    .bind(date(day))
    .bind(count)
    .bind(rows.inputs)
    .fetch_all(&mut *tx)
    .await
    .map_err(Error::db(w("count the parts recorded")))?;
    let have = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    if have < shard.count {
        tx.commit().await.map_err(Error::db(w("commit")))?;
        remove_old(archive, old_dir, rows.enriched_dir);
        return Ok(Recorded::Waiting { parts: have });
    }

    // The last part: sum the N parts into the batch view, as one publish.
    let (plays, impressions): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(plays), 0)::int8, COALESCE(SUM(impressions), 0)::int8 \
         FROM batch_shard_parts WHERE day = $1 AND shard_count = $2",
    )
    .bind(date(day))
    .bind(count)
    .fetch_one(&mut *tx)
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
        .map(|p| (p.shard_index as u32, PathBuf::from(&p.enriched_dir)))
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
    sqlx::query(
        "INSERT INTO batch_hourly (hour, country, device, sop_row, sod_row, genre, new_launch, plays) \
         SELECT hour, country, device, sop_row, sod_row, genre, new_launch, SUM(plays)::int8 \
         FROM batch_shard_hourly WHERE day = $1 AND shard_count = $2 \
         GROUP BY hour, country, device, sop_row, sod_row, genre, new_launch",
    )
    .bind(date(day))
    .bind(count)
    .execute(&mut *tx)
    .await
    .map_err(Error::db(w("sum the parts into batch_hourly")))?;
    sqlx::query(
        "INSERT INTO batch_video_daily (day, video_id, sod_row, plays) \
         SELECT day, video_id, sod_row, SUM(plays)::int8 \
         FROM batch_shard_video_daily WHERE day = $1 AND shard_count = $2 \
         GROUP BY day, video_id, sod_row",
    )
    .bind(date(day))
    .bind(count)
    .execute(&mut *tx)
    .await
    .map_err(Error::db(w("sum the parts into batch_video_daily")))?;
    let published = mark_complete(&mut tx, day, plays, impressions, plays_topic).await?;
    // The parts are spent: a later re-run of one shard alone must not republish the day.
    sqlx::query("DELETE FROM batch_shard_parts WHERE day = $1 AND shard_count = $2")
        .bind(date(day))
        .bind(count)
        .execute(&mut *tx)
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
