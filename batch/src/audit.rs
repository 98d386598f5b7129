//! `playsource audit`: the realtime view of a day against its batch view, hour by hour, in total
//! and per dimension (country, device, sop_row, sod_row, genre, new_launch).
//!
//! The batch view is the truth; a difference is **explained** when the stream's too-late events
//! (`rt_too_late`) can account for it:
//!
//! - a too-late play is missing from the realtime view, so in an hour the batch view may have up
//!   to that hour's too-late plays more in total, per country and per device (of that country or
//!   device), and per genre and new-launch value;
//! - a too-late impression can change the source of plays after it, so a sop_row value may also
//!   differ by up to the too-late impressions of the SoP window before the hour's end, and a
//!   sod_row value by up to the too-late impressions of the SoD lookback before the hour's end.
//!
//! Anything else is **drift** (exit 1).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use playsource_domain::{AttributionConfig, Day, Ts, HOUR_MS};
use sqlx::PgPool;

use crate::error::Error;
use crate::publish::{date, utc};

/// The dimensions compared, as columns of `rt_hourly` / `batch_hourly`.
pub const DIMENSIONS: [&str; 6] = [
    "country",
    "device",
    "sop_row",
    "sod_row",
    "genre",
    "new_launch",
];

/// One compared cell that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRow {
    pub hour: Ts,
    /// `total` or one of [`DIMENSIONS`].
    pub dimension: &'static str,
    /// The dimension's value (`*` for the total).
    pub value: String,
    pub realtime: i64,
    pub batch: i64,
    /// Whether too-late events account for the difference.
    pub explained: bool,
}

impl DriftRow {
    /// batch − realtime.
    pub fn diff(&self) -> i64 {
        self.batch - self.realtime
    }
}

/// The outcome of an audit.
#[derive(Clone, Debug)]
pub struct AuditReport {
    pub day: Day,
    /// The batch view's generation compared.
    pub generation: i64,
    pub realtime_plays: i64,
    pub batch_plays: i64,
    pub too_late_plays: i64,
    pub too_late_impressions: i64,
    /// Every differing cell, explained or not, by hour then dimension then value.
    pub rows: Vec<DriftRow>,
}

impl AuditReport {
    /// Differing cells that too-late events do not explain.
    pub fn unexplained(&self) -> usize {
        self.rows.iter().filter(|r| !r.explained).count()
    }

    /// Whether the views agree up to too-late events.
    pub fn is_clean(&self) -> bool {
        self.unexplained() == 0
    }

    /// The report as a plain-text table of every differing cell.
    pub fn render(&self) -> String {
        self.render_limited(usize::MAX)
    }

    /// The report as a plain-text table of at most `limit` cells (drift first, then explained
    /// differences, each by hour), with a line saying how many were left out.
    pub fn render_limited(&self, limit: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "audit of {} (batch generation {}): realtime {} plays, batch {} plays; too late: {} plays, {} impressions",
            self.day, self.generation, self.realtime_plays, self.batch_plays, self.too_late_plays, self.too_late_impressions
        );
        if self.rows.is_empty() {
            let _ = writeln!(
                s,
                "no drift: every hour agrees in total and in every dimension"
            );
            return s;
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.value.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "{:<17}  {:<10}  {:<width$}  {:>10}  {:>10}  {:>8}  status",
            "hour", "dimension", "value", "realtime", "batch", "diff"
        );
        let shown = self
            .rows
            .iter()
            .filter(|r| !r.explained)
            .chain(self.rows.iter().filter(|r| r.explained))
            .take(limit);
        for r in shown {
            let hour = r.hour.to_datetime().map_or_else(
                || r.hour.to_string(),
                |d| d.format("%Y-%m-%dT%H:%MZ").to_string(),
            );
            let _ = writeln!(
                s,
                "{hour:<17}  {:<10}  {:<width$}  {:>10}  {:>10}  {:>+8}  {}",
                r.dimension,
                r.value,
                r.realtime,
                r.batch,
                r.diff(),
                if r.explained {
                    "explained (too late)"
                } else {
                    "DRIFT"
                }
            );
        }
        if self.rows.len() > limit {
            let _ = writeln!(
                s,
                "... {} more cell(s) not shown (raise --limit to see them)",
                self.rows.len() - limit
            );
        }
        let n = self.unexplained();
        if n == 0 {
            let _ = writeln!(s, "all differences are explained by too-late events");
        } else {
            let _ = writeln!(s, "{n} cell(s) drift beyond what too-late events explain");
        }
        s
    }
}

/// Counts of one view of the day: per hour, per (dimension, value).
#[derive(Default)]
struct View {
    totals: BTreeMap<i64, i64>,
    cells: BTreeMap<(i64, usize, String), i64>,
}

/// Sums one view of the day per hour and dimension value in Postgres, so a day of many rows
/// comes back as a few thousand sums.
async fn load_view(pool: &PgPool, table: &str, day: Day) -> Result<View, Error> {
    let sql = DIMENSIONS
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            format!(
                "SELECT hour, {d}::int4 AS d, {dim}::text AS v, SUM(plays)::int8 AS plays FROM {table} \
                 WHERE hour >= $1 AND hour < $2 GROUP BY hour, {dim}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows: Vec<(DateTime<Utc>, i32, String, i64)> = sqlx::query_as(&sql)
        .bind(utc(day.start()))
        .bind(utc(day.plus(1).start()))
        .fetch_all(pool)
        .await
        .map_err(Error::db(format!("read {table} for {day}")))?;
    let mut v = View::default();
    for (hour, d, value, plays) in rows {
        let hour = hour.timestamp_millis();
        let d = usize::try_from(d).unwrap_or(0);
        if d == 0 {
            // Every row has one country: the country sums add up to the hour's total.
            *v.totals.entry(hour).or_default() += plays;
        }
        *v.cells.entry((hour, d, value)).or_default() += plays;
    }
    Ok(v)
}

/// Compares the realtime and batch views of `day`. `plays_topic` and `impressions_topic` name the
/// topics in `rt_too_late`; `cfg` gives the SoP window and SoD lookback the budgets use.
pub async fn audit_day(
    pool: &PgPool,
    day: Day,
    plays_topic: &str,
    impressions_topic: &str,
    cfg: &AttributionConfig,
) -> Result<AuditReport, Error> {
    let generation: Option<i64> =
        sqlx::query_scalar("SELECT generation FROM batch_days WHERE day = $1")
            .bind(date(day))
            .fetch_optional(pool)
            .await
            .map_err(Error::db(format!("read batch_days for {day}")))?;
    let generation = generation.ok_or(Error::NotComplete { day })?;
    let rt = load_view(pool, "rt_hourly", day).await?;
    let batch = load_view(pool, "batch_hourly", day).await?;

    // Too-late events from the start of the SoD lookback through the day.
    let first = day
        .plus(-cfg.sod_lookback_days)
        .start()
        .min(day.start().minus(cfg.sop_window_ms));
    let late: Vec<(DateTime<Utc>, String, String, String, i64)> = sqlx::query_as(
        "SELECT hour, topic, country, device, events FROM rt_too_late WHERE hour >= $1 AND hour < $2 AND topic IN ($3, $4)",
    )
    .bind(utc(first.hour_start()))
    .bind(utc(day.plus(1).start()))
    .bind(plays_topic)
    .bind(impressions_topic)
    .fetch_all(pool)
    .await
    .map_err(Error::db(format!("read rt_too_late for {day}")))?;
    let mut late_plays: BTreeMap<i64, i64> = BTreeMap::new();
    let mut late_plays_by: BTreeMap<(i64, usize, String), i64> = BTreeMap::new();
    let mut late_imps: BTreeMap<i64, i64> = BTreeMap::new();
    let day_range = day.start().0..day.plus(1).start().0;
    for (hour, topic, country, device, events) in late {
        let h = hour.timestamp_millis();
        if topic == plays_topic {
            if day_range.contains(&h) {
                *late_plays.entry(h).or_default() += events;
                *late_plays_by.entry((h, 0, country)).or_default() += events;
                *late_plays_by.entry((h, 1, device)).or_default() += events;
            }
        } else {
            *late_imps.entry(h).or_default() += events;
        }
    }
    // Too-late impressions in hours that can reach a play of hour `h` within `span` ms.
    let late_imps_before = |h: i64, span: i64| -> i64 {
        late_imps
            .range(Ts(h).minus(span).hour_start().0..h + HOUR_MS)
            .map(|(_, n)| n)
            .sum()
    };

    let mut rows = Vec::new();
    let hours: std::collections::BTreeSet<i64> = rt
        .totals
        .keys()
        .chain(batch.totals.keys())
        .copied()
        .collect();
    for &h in &hours {
        let tl = late_plays.get(&h).copied().unwrap_or(0);
        let (r, b) = (
            rt.totals.get(&h).copied().unwrap_or(0),
            batch.totals.get(&h).copied().unwrap_or(0),
        );
        if r != b {
            rows.push(DriftRow {
                hour: Ts(h),
                dimension: "total",
                value: "*".into(),
                realtime: r,
                batch: b,
                explained: (0..=tl).contains(&(b - r)),
            });
        }
        let sop_imps = late_imps_before(h, cfg.sop_window_ms);
        let sod_imps = late_imps_before(h, h - day.plus(-cfg.sod_lookback_days).start().0);
        for (d, dim) in DIMENSIONS.iter().enumerate() {
            let keys: std::collections::BTreeSet<&String> = rt
                .cells
                .range((h, d, String::new())..)
                .take_while(|((hh, dd, _), _)| *hh == h && *dd == d)
                .chain(
                    batch
                        .cells
                        .range((h, d, String::new())..)
                        .take_while(|((hh, dd, _), _)| *hh == h && *dd == d),
                )
                .map(|((_, _, v), _)| v)
                .collect();
            for v in keys {
                let key = (h, d, v.clone());
                let r = rt.cells.get(&key).copied().unwrap_or(0);
                let b = batch.cells.get(&key).copied().unwrap_or(0);
                if r == b {
                    continue;
                }
                let plays_budget = match d {
                    0 | 1 => late_plays_by.get(&key).copied().unwrap_or(0),
                    _ => tl,
                };
                let moved = match d {
                    2 => sop_imps,
                    3 => sod_imps,
                    _ => 0,
                };
                let diff = b - r;
                rows.push(DriftRow {
                    hour: Ts(h),
                    dimension: dim,
                    value: v.clone(),
                    realtime: r,
                    batch: b,
                    explained: (-moved..=plays_budget + moved).contains(&diff),
                });
            }
        }
    }
    Ok(AuditReport {
        day,
        generation,
        realtime_plays: rt.totals.values().sum(),
        batch_plays: batch.totals.values().sum(),
        too_late_plays: late_plays.values().sum(),
        too_late_impressions: late_imps.values().sum(),
        rows,
    })
}
