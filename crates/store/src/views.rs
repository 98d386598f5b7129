//! Reads of the realtime and batch views' play counts by day, the same query on either view
//! (`audit` compares them cell by cell).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::Error;

/// Which view to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// `rt_hourly`, `rt_video_daily`.
    Realtime,
    /// `batch_hourly`, `batch_video_daily`.
    Batch,
}

impl View {
    /// The hourly table.
    pub fn hourly_table(self) -> &'static str {
        match self {
            View::Realtime => "rt_hourly",
            View::Batch => "batch_hourly",
        }
    }

    /// The per-video daily table.
    pub fn video_table(self) -> &'static str {
        match self {
            View::Realtime => "rt_video_daily",
            View::Batch => "batch_video_daily",
        }
    }
}

/// One non-zero cell of an hourly view.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HourlyCell {
    pub hour: DateTime<Utc>,
    pub country: String,
    pub device: String,
    pub sop_row: String,
    pub sod_row: String,
    pub genre: String,
    pub new_launch: bool,
    pub plays: i64,
}

/// The non-zero cells of `view`'s hourly table in the hours `[from, to)`.
pub async fn hourly_cells(
    pool: &PgPool,
    view: View,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<HourlyCell>, Error> {
    let sql = format!(
        "SELECT hour, country, device, sop_row, sod_row, genre, new_launch, plays FROM {} \
         WHERE hour >= $1 AND hour < $2 AND plays <> 0",
        view.hourly_table()
    );
    sqlx::query_as(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .map_err(Error::query("reading an hourly view"))
}

/// The non-zero cells of `view`'s per-video table on `day`: (video id as text, sod_row, plays).
pub async fn video_cells(
    pool: &PgPool,
    view: View,
    day: NaiveDate,
) -> Result<Vec<(String, String, i64)>, Error> {
    let sql = format!(
        "SELECT video_id::text, sod_row, plays FROM {} WHERE day = $1 AND plays <> 0",
        view.video_table()
    );
    sqlx::query_as(&sql)
        .bind(day)
        .fetch_all(pool)
        .await
        .map_err(Error::query("reading a per-video view"))
}
