//! Pruning the realtime view: once a day has been batch-complete for a while, the serving layer
//! answers it from the batch view only, so its `rt_*` rows are dead weight (kept a few days for
//! `playsource audit`).

use sqlx::PgPool;

use crate::error::Error;
use crate::metrics as m;

/// Rows deleted by [`prune_realtime`], per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rt_hourly: u64,
    pub rt_video_daily: u64,
    pub rt_too_late: u64,
}

/// Deletes, in one transaction, the `rt_hourly`, `rt_video_daily` and `rt_too_late` rows of every
/// day that has been batch-complete (`batch_days.completed_at`) for more than `older_than_days`
/// days.
pub async fn prune_realtime(pool: &PgPool, older_than_days: u32) -> Result<Pruned, Error> {
    let days = i32::try_from(older_than_days).map_err(|_| {
        Error::Usage(format!(
            "--prune-realtime {older_than_days} is too large; use a number of days such as 7"
        ))
    })?;
    let what = |t: &str| format!("prune {t} of batch-complete days");
    let mut tx = pool
        .begin()
        .await
        .map_err(Error::db(what("the realtime view")))?;
    // Hours are compared as ranges so the primary keys' indexes serve the deletes.
    let hourly = |table: &str| {
        format!(
            "DELETE FROM {table} r USING batch_days b \
             WHERE b.completed_at < now() - make_interval(days => $1) \
               AND r.hour >= (b.day::timestamp AT TIME ZONE 'UTC') \
               AND r.hour < ((b.day + 1)::timestamp AT TIME ZONE 'UTC')"
        )
    };
    let rt_hourly = sqlx::query(&hourly("rt_hourly"))
        .bind(days)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("rt_hourly")))?
        .rows_affected();
    let rt_too_late = sqlx::query(&hourly("rt_too_late"))
        .bind(days)
        .execute(&mut *tx)
        .await
        .map_err(Error::db(what("rt_too_late")))?
        .rows_affected();
    let rt_video_daily = sqlx::query(
        "DELETE FROM rt_video_daily r USING batch_days b \
         WHERE b.completed_at < now() - make_interval(days => $1) AND r.day = b.day",
    )
    .bind(days)
    .execute(&mut *tx)
    .await
    .map_err(Error::db(what("rt_video_daily")))?
    .rows_affected();
    tx.commit()
        .await
        .map_err(Error::db(what("the realtime view")))?;
    for (table, n) in [
        ("rt_hourly", rt_hourly),
        ("rt_video_daily", rt_video_daily),
        ("rt_too_late", rt_too_late),
    ] {
        metrics::counter!(m::REALTIME_ROWS_PRUNED, "table" => table).increment(n);
    }
    Ok(Pruned {
        rt_hourly,
        rt_video_daily,
        rt_too_late,
    })
}
