//! Reading a replica state from Postgres in one `REPEATABLE READ, READ ONLY` snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use playsource_store::views;
use sqlx::{PgConnection, PgPool};

use super::part::{PartBuilder, RawRow};
use super::state::{day_ms, BatchPart, ReplicaState};
use crate::error::from_store;
use crate::merge::freshness_of;
use crate::metrics as m;

/// Reads a state; the batch rows of `previous` are kept when the batch version is unchanged
/// (they only change with a publish, which moves it) and its window starts on `first_day`.
pub(super) async fn load(
    pool: &PgPool,
    previous: Option<Arc<ReplicaState>>,
    first_day: NaiveDate,
) -> Result<ReplicaState, sqlx::Error> {
    let started = Instant::now();
    let mut tx = views::begin_snapshot(pool).await.map_err(from_store)?;
    // The first statement fixes the transaction's snapshot: its identity and the freshness.
    let (snapshot, freshness) = views::snapshot_and_freshness(&mut tx)
        .await
        .map_err(from_store)?;
    let freshness = freshness_of(&freshness);
    let reuse = previous
        .filter(|p| p.freshness.version == freshness.version && p.batch.first_day == first_day);
    let batch = match reuse {
        Some(p) => Arc::clone(&p.batch),
        None => {
            let t = Instant::now();
            let b = load_batch(&mut tx, first_day).await?;
            metrics::counter!(m::REPLICA_RELOADS, "part" => "batch").increment(1);
            metrics::gauge!(m::REPLICA_LOAD_SECONDS, "part" => "batch")
                .set(t.elapsed().as_secs_f64());
            Arc::new(b)
        }
    };
    let t = Instant::now();
    let rt = load_rt(&mut tx, &batch).await?;
    tx.commit().await?;
    metrics::counter!(m::REPLICA_RELOADS, "part" => "realtime").increment(1);
    metrics::gauge!(m::REPLICA_LOAD_SECONDS, "part" => "realtime").set(t.elapsed().as_secs_f64());
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        batch_rows = batch.part.rows(),
        realtime_rows = rt.rows(),
        "replica loaded"
    );
    Ok(ReplicaState {
        snapshot,
        freshness,
        batch,
        rt,
    })
}

fn push(b: &mut PartBuilder, r: views::HourlyRef<'_>) {
    b.push(&RawRow {
        hour_ms: r.hour.timestamp_millis(),
        country: r.country,
        device: r.device,
        sop: r.sop_row,
        sod: r.sod_row,
        genre: r.genre,
        new_launch: r.new_launch,
        plays: r.plays,
    });
}

/// The batch-complete days from `first_day` on and their `batch_hourly` rows.
async fn load_batch(
    conn: &mut PgConnection,
    first_day: NaiveDate,
) -> Result<BatchPart, sqlx::Error> {
    let complete: BTreeSet<NaiveDate> = views::complete_days_from(&mut *conn, first_day)
        .await
        .map_err(from_store)?
        .into_iter()
        .collect();
    let mut b = PartBuilder::default();
    views::batch_hourly_from(conn, first_day, |r| push(&mut b, r))
        .await
        .map_err(from_store)?;
    Ok(BatchPart {
        first_day,
        complete,
        part: b.build(),
    })
}

/// The `rt_hourly` rows of the days from the window's start on that are not batch-complete:
/// one index range scan per run of such days.
async fn load_rt(
    conn: &mut PgConnection,
    batch: &BatchPart,
) -> Result<super::part::Part, sqlx::Error> {
    let ms = |d: NaiveDate| DateTime::<Utc>::from_timestamp_millis(day_ms(d)).unwrap_or_default();
    let (mut los, mut his) = (Vec::new(), Vec::new());
    let mut cursor = batch.first_day;
    for &d in &batch.complete {
        if d > cursor {
            los.push(ms(cursor));
            his.push(ms(d));
        }
        cursor = d.succ_opt().unwrap_or(d);
    }
    los.push(ms(cursor));
    his.push(ms(
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
    ));
    let mut b = PartBuilder::default();
    views::realtime_hourly_in(conn, &los, &his, |r| push(&mut b, r))
        .await
        .map_err(from_store)?;
    Ok(b.build())
}
