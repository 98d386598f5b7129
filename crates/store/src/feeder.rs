//! One realtime view, one owner (docs/reference.md §4): `stream_feeder` names the one consumer group whose
//! flushes add to `rt_*`. A stream of another group refuses to start, so a blue/green deploy with
//! a new `--group-id` never counts a play twice; `--take-over` hands the view to the new group,
//! which continues exactly where the old one stood.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::Error;

/// How [`claim`] let a group feed the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// No group fed the view yet: this one does from now on.
    First,
    /// This group already feeds the view (a restart, or another member of it).
    Already,
    /// `--take-over`: the view was fed by `from`; its committed offsets, checkpoint manifests and staged
    /// archive files were copied to this group and its leases fenced.
    TookOver { from: String },
}

/// The group feeding the realtime view, if one was ever recorded.
pub async fn current(pool: &PgPool) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT group_id FROM stream_feeder WHERE view = 'realtime'")
        .fetch_optional(pool)
        .await
        .map_err(Error::query("reading which group feeds the realtime view"))
}

/// The group feeding the realtime view, with the row share-locked until the end of the
/// transaction (a flush takes it before the leases, in the order a take-over takes them).
pub async fn lock_shared(conn: &mut PgConnection) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT group_id FROM stream_feeder WHERE view = 'realtime' FOR SHARE")
        .fetch_optional(conn)
        .await
        .map_err(Error::query("reading which group feeds the realtime view"))
}

/// Lets `group` feed the realtime view: the first group to start becomes its feeder; the feeder
/// itself passes; any other group is refused with [`Error::NotFeeder`] unless `take_over`, which
/// hands the view to `group` in one transaction (copy the old group's offsets, checkpoint manifests and
/// staged files, fence its leases by bumping their epochs).
///
/// A database written before `stream_feeder` existed has no feeder row but offsets: the group
/// that committed last is taken as the feeder, so an upgrade cannot start a second count either.
pub async fn claim(pool: &PgPool, group: &str, take_over: bool) -> Result<Claim, Error> {
    let what = "handing the realtime view to a consumer group";
    let mut tx = pool.begin().await.map_err(Error::query(what))?;
    // Serialises claims and take-overs (the row may not exist yet, so lock the table).
    sqlx::query("LOCK TABLE stream_feeder IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(Error::query(what))?;
    // The row first, then the old group's leases: the order of a flush, so the two never deadlock.
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT group_id FROM stream_feeder WHERE view = 'realtime' FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query(what))?;
    let feeder = match recorded {
        Some(g) => Some(g),
        None => sqlx::query_scalar(
            "SELECT group_id FROM stream_offsets ORDER BY updated_at DESC, group_id LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::query(what))?,
    };
    let claim = match feeder {
        None => Claim::First,
        Some(g) if g == group => Claim::Already,
        Some(g) if take_over => {
            hand_over(&mut tx, &g, group).await?;
            Claim::TookOver { from: g }
        }
        Some(g) => {
            return Err(Error::NotFeeder {
                feeder: g,
                group: group.to_owned(),
            })
        }
    };
    sqlx::query(
        "INSERT INTO stream_feeder (view, group_id) VALUES ('realtime', $1)
         ON CONFLICT (view) DO UPDATE SET group_id = EXCLUDED.group_id,
             since = CASE WHEN stream_feeder.group_id = EXCLUDED.group_id
                          THEN stream_feeder.since ELSE now() END",
    )
    .bind(group)
    .execute(&mut *tx)
    .await
    .map_err(Error::query(what))?;
    tx.commit().await.map_err(Error::query(what))?;
    match &claim {
        Claim::First => tracing::info!(group, "this consumer group now feeds the realtime view"),
        Claim::Already => {}
        Claim::TookOver { from } => tracing::warn!(
            group,
            from = from.as_str(),
            "took the realtime view over: continuing from the old group's committed offsets; its members are fenced"
        ),
    }
    Ok(claim)
}

/// Copies `from`'s recovery state to `to` (replacing whatever `to` had) and fences `from`'s
/// leases, inside the caller's transaction.
async fn hand_over(tx: &mut Transaction<'_, Postgres>, from: &str, to: &str) -> Result<(), Error> {
    let what = "taking the realtime view over";
    // Lock the old group's leases first, as a flush does: an in-flight flush of the old group
    // either committed before this (and is copied) or is refused after it.
    sqlx::query("SELECT 1 FROM stream_leases WHERE group_id = $1 ORDER BY partition FOR UPDATE")
        .bind(from)
        .execute(&mut **tx)
        .await
        .map_err(Error::query(what))?;
    for table in [
        "stream_offsets",
        "stream_checkpoints",
        "stream_archive_staged",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE group_id = $1"))
            .bind(to)
            .execute(&mut **tx)
            .await
            .map_err(Error::query(what))?;
    }
    sqlx::query(
        "INSERT INTO stream_offsets (group_id, topic, partition, next_offset, high_water, updated_at)
         SELECT $2, topic, partition, next_offset, high_water, now()
         FROM stream_offsets WHERE group_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(&mut **tx)
    .await
    .map_err(Error::query(what))?;
    sqlx::query(
        "INSERT INTO stream_checkpoints (group_id, partition, impressions_topic, plays_topic,
             impressions_offset, plays_offset, format, epoch, layers, layer_bytes, taken_at)
         SELECT $2, partition, impressions_topic, plays_topic, impressions_offset, plays_offset,
             format, epoch, layers, layer_bytes, taken_at
         FROM stream_checkpoints WHERE group_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(&mut **tx)
    .await
    .map_err(Error::query(what))?;
    sqlx::query(
        "INSERT INTO stream_archive_staged (group_id, partition, staged_path, final_path, rows, created_at)
         SELECT $2, partition, staged_path, final_path, rows, created_at
         FROM stream_archive_staged WHERE group_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(&mut **tx)
    .await
    .map_err(Error::query(what))?;
    // A still-running member of the old group holds an older epoch: its next flush is fenced.
    sqlx::query(
        "UPDATE stream_leases SET epoch = epoch + 1, owner = 'taken over by ' || $2,
             acquired_at = now()
         WHERE group_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(&mut **tx)
    .await
    .map_err(Error::query(what))?;
    Ok(())
}
