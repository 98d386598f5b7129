//! Pruning the realtime view: once a day has been batch-complete for a while, the serving layer
//! answers it from the batch view only, so its `rt_*` rows are dead weight (kept a few days for
//! `playsource audit`).

use playsource_store::batch::{self as store, RealtimeHourly};
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
    let rt_hourly = store::prune_realtime_hourly(&mut tx, RealtimeHourly::Plays, days)
        .await
        .map_err(Error::db(what("rt_hourly")))?;
    let rt_too_late = store::prune_realtime_hourly(&mut tx, RealtimeHourly::TooLate, days)
        .await
        .map_err(Error::db(what("rt_too_late")))?;
    let rt_video_daily = store::prune_realtime_video_daily(&mut tx, days)
        .await
        .map_err(Error::db(what("rt_video_daily")))?;
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
