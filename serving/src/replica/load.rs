//! Reading a replica state from Postgres in one `REPEATABLE READ, READ ONLY` snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::part::{PartBuilder, RawRow};
use super::state::{day_ms, BatchPart, ReplicaState};
use crate::merge::{freshness_of, BEGIN_SNAPSHOT, FRESHNESS_FROM};
use crate::metrics as m;

/// Reads a state; the batch rows of `previous` are kept when the batch version is unchanged
/// (they only change with a publish, which moves it) and its window starts on `first_day`.
pub(super) async fn load(
    pool: &PgPool,
    previous: Option<Arc<ReplicaState>>,
    first_day: NaiveDate,
) -> Result<ReplicaState, sqlx::Error> {
    let started = Instant::now();
    let mut tx = pool.begin_with(BEGIN_SNAPSHOT).await?;
    // The first statement fixes the transaction's snapshot: its identity and the freshness.
    let row = sqlx::query(&format!(
        "SELECT pg_current_snapshot()::text AS snap, f.* FROM {FRESHNESS_FROM}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    let snapshot: String = row.try_get("snap")?;
    let freshness = freshness_of(&row)?;
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

const COLUMNS: &str =
    "t.hour, t.country, t.device, t.sop_row, t.sod_row, t.genre, t.new_launch, t.plays";

fn push(b: &mut PartBuilder, row: &PgRow) -> Result<(), sqlx::Error> {
    let hour: DateTime<Utc> = row.try_get(0)?;
    b.push(&RawRow {
        hour_ms: hour.timestamp_millis(),
        country: row.try_get(1)?,
        device: row.try_get(2)?,
        sop: row.try_get(3)?,
        sod: row.try_get(4)?,
        genre: row.try_get(5)?,
        new_launch: row.try_get(6)?,
        plays: row.try_get(7)?,
    });
    Ok(())
}

/// The batch-complete days from `first_day` on and their `batch_hourly` rows.
async fn load_batch(
    conn: &mut PgConnection,
    first_day: NaiveDate,
) -> Result<BatchPart, sqlx::Error> {
    let complete: BTreeSet<NaiveDate> =
        sqlx::query_scalar("SELECT day FROM batch_days WHERE day >= $1")
            .bind(first_day)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut b = PartBuilder::default();
    let sql = format!(
        "SELECT {COLUMNS} FROM batch_days d CROSS JOIN LATERAL ( \
           SELECT * FROM batch_hourly b \
            WHERE b.hour >= d.day::timestamp AT TIME ZONE 'UTC' \
              AND b.hour < (d.day + 1)::timestamp AT TIME ZONE 'UTC') t \
          WHERE d.day >= $1"
    );
    let mut rows = sqlx::query(&sql).bind(first_day).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        push(&mut b, &row)?;
    }
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
    let sql = format!(
        "SELECT {COLUMNS} FROM unnest($1::timestamptz[], $2::timestamptz[]) AS g(lo, hi) \
         CROSS JOIN LATERAL (SELECT * FROM rt_hourly r WHERE r.hour >= g.lo AND r.hour < g.hi) t"
    );
    let mut b = PartBuilder::default();
    let mut rows = sqlx::query(&sql).bind(los).bind(his).fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        push(&mut b, &row)?;
    }
    Ok(b.build())
}
