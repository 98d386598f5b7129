//! Fencing the stream's compaction of archive hours (docs/stream.md, "Raw archive, exactly once").
//!
//! A unit rewrites the one published file of a (topic, partition, hour) only while it holds a
//! [`LeaseHold`]: a transaction holding `FOR SHARE` locks on the feeder row and on the unit's
//! `stream_leases` row, checked to still carry the unit's epoch. A take-over of the partition
//! (`UPDATE stream_leases SET epoch = epoch + 1`) or of the realtime view waits until the hold is
//! released, so a stale owner can never overwrite a file after a new owner started compacting.
//! The locks are taken in the order flushes and take-overs take them: feeder row, then leases.

use sqlx::{PgPool, Postgres, Transaction};

use crate::error::Error;

/// Shared locks on the feeder row and a unit's lease row, held until [`LeaseHold::release`].
pub struct LeaseHold {
    tx: Transaction<'static, Postgres>,
}

/// Takes the locks of a [`LeaseHold`] on partition `partition` of `group` if the lease still
/// carries `epoch` and `group` feeds the realtime view (or no group does yet); `None` otherwise
/// (the unit is fenced: another owner holds it).
pub async fn hold_lease(
    pool: &PgPool,
    group: &str,
    partition: i32,
    epoch: i64,
) -> Result<Option<LeaseHold>, Error> {
    let mut tx = pool
        .begin()
        .await
        .map_err(Error::query("beginning a compaction's lease check"))?;
    let feeder: Option<String> =
        sqlx::query_scalar("SELECT group_id FROM stream_feeder WHERE view = 'realtime' FOR SHARE")
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::query("locking the feeder row for a compaction"))?;
    if feeder.is_some_and(|f| f != group) {
        return Ok(None);
    }
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT epoch FROM stream_leases WHERE group_id = $1 AND partition = $2 FOR SHARE",
    )
    .bind(group)
    .bind(partition)
    .fetch_optional(&mut *tx)
    .await
    .map_err(Error::query("locking a partition lease for a compaction"))?;
    if current != Some(epoch) {
        return Ok(None);
    }
    Ok(Some(LeaseHold { tx }))
}

impl LeaseHold {
    /// Ends the hold (the locks are released).
    pub async fn release(self) -> Result<(), Error> {
        self.tx
            .commit()
            .await
            .map_err(Error::query("releasing a compaction's lease lock"))
    }
}
