//! Reads of the realtime and batch views' play counts: the same query on either view (`audit`
//! compares them cell by cell), and the serving layer's reads, which merge the two per UTC day
//! (the batch view where the day is in `batch_days`, else the realtime view) from one snapshot.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};

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

// ---- The serving layer's reads: each answer from one snapshot. ----

/// Starts a `REPEATABLE READ, READ ONLY` transaction: every statement in it reads one snapshot.
pub async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, Error> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(Error::query("beginning a read-only snapshot"))
}

/// Answers when the database does (`/readyz`).
pub async fn ping(pool: &PgPool) -> Result<(), Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map_err(Error::query("pinging the database"))?;
    Ok(())
}

/// Checks that the database has the views' tables.
pub async fn probe(pool: &PgPool) -> Result<(), Error> {
    sqlx::query("SELECT 1 FROM batch_days, rt_hourly LIMIT 1")
        .execute(pool)
        .await
        .map_err(Error::query("checking the views' tables"))?;
    Ok(())
}

/// The identity of the current snapshot (`pg_current_snapshot()` as text): it changes when a
/// transaction commits.
pub async fn current_snapshot(pool: &PgPool) -> Result<String, Error> {
    sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(pool)
        .await
        .map_err(Error::query("reading the current snapshot"))
}

/// How fresh both views are, and which batch days exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// The latest batch-complete day.
    pub through: Option<NaiveDate>,
    /// The greatest event time the stream has committed.
    pub high_water: Option<DateTime<Utc>>,
    /// How many days are batch-complete.
    pub days: i64,
    /// The greatest generation of a batch-complete day (0 without one).
    pub generation: i64,
}

/// The freshness columns (`through`, `high_water`, `n`, `g`) as a `FROM` item.
const FRESHNESS_FROM: &str = "(SELECT (SELECT max(day) FROM batch_days) AS through, \
        (SELECT max(high_water) FROM stream_offsets) AS high_water, \
        (SELECT count(*) FROM batch_days) AS n, \
        (SELECT coalesce(max(generation), 0) FROM batch_days) AS g) f";

fn freshness_of(row: &PgRow) -> Result<Freshness, sqlx::Error> {
    Ok(Freshness {
        through: row.try_get("through")?,
        high_water: row.try_get("high_water")?,
        days: row.try_get("n")?,
        generation: row.try_get("g")?,
    })
}

/// The freshness, and how many days of `[first, last]` are batch-complete (0 for `None`).
pub async fn freshness(
    conn: &mut PgConnection,
    days: Option<(NaiveDate, NaiveDate)>,
) -> Result<(Freshness, i64), Error> {
    let what = "reading the views' freshness";
    // No days: NULL bounds count nothing.
    let (first, last) = days.unzip();
    let row = sqlx::query(&format!(
        "SELECT f.*, (SELECT count(*) FROM batch_days WHERE day >= $1 AND day <= $2) AS complete \
         FROM {FRESHNESS_FROM}"
    ))
    .bind(first)
    .bind(last)
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::query(what))?;
    let freshness = freshness_of(&row).map_err(Error::query(what))?;
    let complete = row.try_get("complete").map_err(Error::query(what))?;
    Ok((freshness, complete))
}

/// The identity of the transaction's snapshot (see [`current_snapshot`]) and the freshness;
/// as the first statement of a [`begin_snapshot`] transaction, it fixes the snapshot.
pub async fn snapshot_and_freshness(conn: &mut PgConnection) -> Result<(String, Freshness), Error> {
    let what = "reading the views' freshness";
    let row = sqlx::query(&format!(
        "SELECT pg_current_snapshot()::text AS snap, f.* FROM {FRESHNESS_FROM}"
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::query(what))?;
    let snapshot = row.try_get("snap").map_err(Error::query(what))?;
    Ok((snapshot, freshness_of(&row).map_err(Error::query(what))?))
}

/// The column a merged series groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowColumn {
    /// `sop_row` (Source of Play).
    SourceOfPlay,
    /// `sod_row` (Source of Discovery).
    SourceOfDiscovery,
}

/// The bucket width of a merged series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

/// A merged series to read: hours `[lo, hi)`, whose UTC days are `first..=last` (`first > last`
/// for none), each day from the batch view if complete, else from the realtime view.
#[derive(Clone, Copy, Debug)]
pub struct SeriesQuery<'a> {
    pub lo: DateTime<Utc>,
    pub hi: DateTime<Utc>,
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub row: RowColumn,
    pub bucket: Bucket,
    pub country: Option<&'a str>,
    pub device: Option<&'a str>,
    pub genre: Option<&'a str>,
    pub new_launch: Option<bool>,
    pub sop_row: Option<&'a str>,
}

/// A merged series as read: freshness and complete days of the same snapshot, and the non-zero
/// (bucket start, row, plays) sums.
#[derive(Clone, Debug)]
pub struct SeriesRows {
    pub freshness: Freshness,
    /// How many days of the range are batch-complete.
    pub complete: i64,
    pub rows: Vec<(DateTime<Utc>, String, i64)>,
}

/// Builds the merged series statement (filters become `$5..`).
///
/// One statement, so one snapshot: the freshness, the complete days and the rows of both views
/// are read together. The range is split per UTC day (`generate_series`); each day reads either
/// `batch_hourly` (complete) or `rt_hourly` (not complete) by an index range scan on `hour`, so
/// no row of the other view is read and thrown away.
fn series_sql(q: &SeriesQuery<'_>) -> String {
    let row_col = match q.row {
        RowColumn::SourceOfPlay => "sop_row",
        RowColumn::SourceOfDiscovery => "sod_row",
    };
    let bucket = match q.bucket {
        Bucket::Hour => "date_trunc('hour', v.hour, 'UTC')",
        Bucket::Day => "date_trunc('day', v.hour, 'UTC')",
    };
    let mut filters = String::new();
    let mut n = 4;
    for (present, cond) in [
        (q.country.is_some(), "country"),
        (q.device.is_some(), "device"),
        (q.genre.is_some(), "genre"),
        (q.new_launch.is_some(), "new_launch"),
        (q.sop_row.is_some(), "sop_row"),
    ] {
        if present {
            n += 1;
            let _ = write!(filters, " AND t.{cond} = ${n}");
        }
    }
    let part = |table: &str, complete: &str| {
        format!(
            "SELECT t.hour, t.{row_col} AS row_type, t.plays FROM {table} t \
              WHERE {complete}d.complete AND t.hour >= greatest($1, d.t0) AND t.hour < least($2, d.t1){filters}"
        )
    };
    format!(
        "WITH d AS ( \
           SELECT x.day, x.day::timestamp AT TIME ZONE 'UTC' AS t0, \
                  (x.day + 1)::timestamp AT TIME ZONE 'UTC' AS t1, \
                  EXISTS (SELECT 1 FROM batch_days b WHERE b.day = x.day) AS complete \
             FROM (SELECT generate_series($3::date::timestamp, $4::date::timestamp, interval '1 day')::date AS day) x \
         ), s AS ( \
           SELECT {bucket} AS bucket, v.row_type, sum(v.plays)::bigint AS plays \
             FROM d CROSS JOIN LATERAL ({batch} UNION ALL {rt}) v \
            GROUP BY 1, 2 HAVING sum(v.plays) <> 0 \
         ) \
         SELECT f.*, (SELECT count(*) FROM d WHERE d.complete) AS complete, \
                s.bucket, s.row_type, s.plays \
           FROM {FRESHNESS_FROM} LEFT JOIN s ON true",
        batch = part("batch_hourly", ""),
        rt = part("rt_hourly", "NOT "),
    )
}

/// Reads a merged series in one statement (one snapshot).
pub async fn merged_series(pool: &PgPool, q: &SeriesQuery<'_>) -> Result<SeriesRows, Error> {
    let what = "reading a merged series";
    let sql = series_sql(q);
    let mut query = sqlx::query(&sql)
        .bind(q.lo)
        .bind(q.hi)
        .bind(q.first)
        .bind(q.last);
    if let Some(v) = q.country {
        query = query.bind(v);
    }
    if let Some(v) = q.device {
        query = query.bind(v);
    }
    if let Some(v) = q.genre {
        query = query.bind(v);
    }
    if let Some(v) = q.new_launch {
        query = query.bind(v);
    }
    if let Some(v) = q.sop_row {
        query = query.bind(v);
    }
    let rows = query.fetch_all(pool).await.map_err(Error::query(what))?;
    let decode = || -> Result<SeriesRows, sqlx::Error> {
        let first_row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
        let mut out = SeriesRows {
            freshness: freshness_of(first_row)?,
            complete: first_row.try_get("complete")?,
            rows: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            let Some(bucket) = row.try_get::<Option<DateTime<Utc>>, _>("bucket")? else {
                continue;
            };
            out.rows
                .push((bucket, row.try_get("row_type")?, row.try_get("plays")?));
        }
        Ok(out)
    };
    decode().map_err(Error::query(what))
}

/// A video's merged per-day SoD sums over the days `[first, end)`: each day from the batch view
/// if complete, else from the realtime view; non-zero (sod_row, plays) only.
pub async fn merged_video(
    conn: &mut PgConnection,
    video_id: u64,
    first: NaiveDate,
    end: NaiveDate,
) -> Result<Vec<(String, i64)>, Error> {
    sqlx::query_as(
        "SELECT sod_row, sum(plays)::bigint AS plays FROM ( \
           SELECT b.sod_row, b.plays FROM batch_video_daily b \
            WHERE b.video_id = $1::text::numeric AND b.day >= $2 AND b.day < $3 \
              AND EXISTS (SELECT 1 FROM batch_days d WHERE d.day = b.day) \
           UNION ALL \
           SELECT r.sod_row, r.plays FROM rt_video_daily r \
            WHERE r.video_id = $1::text::numeric AND r.day >= $2 AND r.day < $3 \
              AND NOT EXISTS (SELECT 1 FROM batch_days d WHERE d.day = r.day) \
         ) v GROUP BY 1 HAVING sum(plays) <> 0",
    )
    .bind(video_id.to_string())
    .bind(first)
    .bind(end)
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading a video's merged discovery"))
}

/// One hourly row, borrowed from the database row it was read from.
#[derive(Clone, Copy, Debug)]
pub struct HourlyRef<'a> {
    pub hour: DateTime<Utc>,
    pub country: &'a str,
    pub device: &'a str,
    pub sop_row: &'a str,
    pub sod_row: &'a str,
    pub genre: &'a str,
    pub new_launch: bool,
    pub plays: i64,
}

const COLUMNS: &str =
    "t.hour, t.country, t.device, t.sop_row, t.sod_row, t.genre, t.new_launch, t.plays";

/// Streams the rows of `sql` (selecting [`COLUMNS`]) into `each`.
async fn for_each_row<'q>(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    what: &'static str,
    mut each: impl FnMut(HourlyRef<'_>),
) -> Result<(), Error> {
    let mut rows = query.fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(Error::query(what))? {
        let r = (|| -> Result<HourlyRef<'_>, sqlx::Error> {
            Ok(HourlyRef {
                hour: row.try_get(0)?,
                country: row.try_get(1)?,
                device: row.try_get(2)?,
                sop_row: row.try_get(3)?,
                sod_row: row.try_get(4)?,
                genre: row.try_get(5)?,
                new_launch: row.try_get(6)?,
                plays: row.try_get(7)?,
            })
        })()
        .map_err(Error::query(what))?;
        each(r);
    }
    Ok(())
}

/// The batch-complete days from `first_day` on.
pub async fn complete_days_from(
    conn: &mut PgConnection,
    first_day: NaiveDate,
) -> Result<Vec<NaiveDate>, Error> {
    sqlx::query_scalar("SELECT day FROM batch_days WHERE day >= $1")
        .bind(first_day)
        .fetch_all(conn)
        .await
        .map_err(Error::query("reading the batch-complete days"))
}

/// Streams the `batch_hourly` rows of the batch-complete days from `first_day` on into `each`.
pub async fn batch_hourly_from(
    conn: &mut PgConnection,
    first_day: NaiveDate,
    each: impl FnMut(HourlyRef<'_>),
) -> Result<(), Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM batch_days d CROSS JOIN LATERAL ( \
           SELECT * FROM batch_hourly b \
            WHERE b.hour >= d.day::timestamp AT TIME ZONE 'UTC' \
              AND b.hour < (d.day + 1)::timestamp AT TIME ZONE 'UTC') t \
          WHERE d.day >= $1"
    );
    let query = sqlx::query(&sql).bind(first_day);
    for_each_row(conn, query, "reading batch_hourly", each).await
}

/// Streams the `rt_hourly` rows of the ranges `[los[i], his[i])` into `each` (one index range
/// scan per range).
pub async fn realtime_hourly_in(
    conn: &mut PgConnection,
    los: &[DateTime<Utc>],
    his: &[DateTime<Utc>],
    each: impl FnMut(HourlyRef<'_>),
) -> Result<(), Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM unnest($1::timestamptz[], $2::timestamptz[]) AS g(lo, hi) \
         CROSS JOIN LATERAL (SELECT * FROM rt_hourly r WHERE r.hour >= g.lo AND r.hour < g.hi) t"
    );
    let query = sqlx::query(&sql).bind(los).bind(his);
    for_each_row(conn, query, "reading rt_hourly", each).await
}
