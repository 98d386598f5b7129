//! `playsource audit`: the realtime view of a day against its batch view, every cell of both
//! views: hour × country × device × sop_row × sod_row × genre × new_launch, and
//! day × video × sod_row. Comparing whole cells (not each dimension on its own) means differences
//! in two dimensions that cancel out per dimension are still caught.
//!
//! The batch view is the truth; a difference is **explained** when the stream's too-late events
//! (`rt_too_late`, counted per hour × country × device) can account for it:
//!
//! - a too-late play is missing from the realtime view, so a cell of an hour may have up to that
//!   hour's too-late plays of its country and device more in batch, and the differences of each
//!   (hour, country, device) must add up to between 0 and those too-late plays (per-video cells:
//!   the day's too-late plays);
//! - a too-late impression can change the source of plays after it (moving them between cells,
//!   never in or out of the view), so a cell may also differ by up to the too-late impressions
//!   from the start of the SoD lookback through the hour.
//!
//! Anything else is **drift** (exit 1). A catalog version loaded after it took effect (a
//! retroactive `catalog load --effective-from`) also shows as drift for the plays the stream
//! counted before the load: batch is right (see docs/batch.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use playsource_domain::{AttributionConfig, Day, Ts, HOUR_MS};
use playsource_store::realtime::TooLateRow;
use playsource_store::views::{self, View};
use sqlx::PgPool;

use crate::error::Error;
use crate::publish::{date, utc};

/// One compared cell that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftRow {
    /// The hour (hourly view) or the day's start (per-video view).
    pub hour: Ts,
    /// `hourly` or `video_daily`.
    pub view: &'static str,
    /// The cell's key, e.g. `US tv sop=top_picks sod=my_list genre=drama new_launch=false` or
    /// `video=42 sod=my_list`.
    pub cell: String,
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
    /// Catalog versions that can make the views differ for this day: loaded after plays of the
    /// day they apply to (see docs/batch.md); one sentence each.
    pub catalog_notes: Vec<String>,
    /// Every differing cell, explained or not: the hourly view's by hour and cell, then the
    /// per-video view's.
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
        for n in &self.catalog_notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.rows.is_empty() {
            let _ = writeln!(
                s,
                "no drift: every cell of the hourly and per-video views agrees"
            );
            return s;
        }
        let width = self
            .rows
            .iter()
            .map(|r| r.cell.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:<17}  {:<11}  {:<width$}  {:>10}  {:>10}  {:>8}  status",
            "hour", "view", "cell", "realtime", "batch", "diff"
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
                "{hour:<17}  {:<11}  {:<width$}  {:>10}  {:>10}  {:>+8}  {}",
                r.view,
                r.cell,
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
            let _ = writeln!(
                s,
                "all {} differing cell(s) are explained by too-late events ({} plays left out of the realtime view, {} impressions that can move plays between cells)",
                self.rows.len(),
                self.too_late_plays,
                self.too_late_impressions
            );
        } else {
            let _ = writeln!(s, "{n} cell(s) drift beyond what too-late events explain");
        }
        s
    }
}

/// One cell of the hourly view: (hour, country, device, sop_row, sod_row, genre, new_launch).
type HourCell = (i64, String, String, String, String, String, bool);
/// One cell of the per-video view: (video_id, sod_row).
type VideoCell = (String, String);

/// The hourly view of the day, cell by cell (zero cells left out).
async fn load_hourly(
    pool: &PgPool,
    view: View,
    day: Day,
) -> Result<BTreeMap<HourCell, i64>, Error> {
    let table = view.hourly_table();
    let rows = views::hourly_cells(pool, view, utc(day.start()), utc(day.plus(1).start()))
        .await
        .map_err(Error::db(format!("read {table} for {day}")))?;
    let mut out = BTreeMap::new();
    for r in rows {
        *out.entry((
            r.hour.timestamp_millis(),
            r.country,
            r.device,
            r.sop_row,
            r.sod_row,
            r.genre,
            r.new_launch,
        ))
        .or_default() += r.plays;
    }
    Ok(out)
}

/// The per-video view of the day, cell by cell (zero cells left out).
async fn load_video(
    pool: &PgPool,
    view: View,
    day: Day,
) -> Result<BTreeMap<VideoCell, i64>, Error> {
    let table = view.video_table();
    let rows = views::video_cells(pool, view, date(day))
        .await
        .map_err(Error::db(format!("read {table} for {day}")))?;
    let mut out = BTreeMap::new();
    for (v, sod, plays) in rows {
        *out.entry((v, sod)).or_default() += plays;
    }
    Ok(out)
}

/// Every key of either map with its (realtime, batch) counts, where they differ.
fn differing<K: Ord + Clone>(
    rt: &BTreeMap<K, i64>,
    batch: &BTreeMap<K, i64>,
) -> Vec<(K, i64, i64)> {
    let keys: std::collections::BTreeSet<&K> = rt.keys().chain(batch.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (r, b) = (
                rt.get(k).copied().unwrap_or(0),
                batch.get(k).copied().unwrap_or(0),
            );
            (r != b).then(|| (k.clone(), r, b))
        })
        .collect()
}

/// Compares the realtime and batch views of `day` cell by cell. `plays_topic` and
/// `impressions_topic` name the topics in `rt_too_late`; `cfg` gives the SoP window and SoD
/// lookback the budgets use.
pub async fn audit_day(
    pool: &PgPool,
    day: Day,
    plays_topic: &str,
    impressions_topic: &str,
    cfg: &AttributionConfig,
) -> Result<AuditReport, Error> {
    let generation = playsource_store::batch::generation(pool, day)
        .await
        .map_err(Error::db(format!("read batch_days for {day}")))?;
    let generation = generation.ok_or(Error::NotComplete { day })?;
    let rt = load_hourly(pool, View::Realtime, day).await?;
    let batch = load_hourly(pool, View::Batch, day).await?;
    let rt_video = load_video(pool, View::Realtime, day).await?;
    let batch_video = load_video(pool, View::Batch, day).await?;

    // Too-late events from the first impression a play of the day can use through the day.
    let range = cfg.impression_range(day);
    let late = playsource_store::realtime::too_late_between(
        pool,
        utc(range.start.hour_start()),
        utc(range.end),
        [plays_topic, impressions_topic],
    )
    .await
    .map_err(Error::db(format!("read rt_too_late for {day}")))?;
    let mut late_plays: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    let mut late_imps: BTreeMap<i64, i64> = BTreeMap::new();
    let day_range = day.start().0..day.plus(1).start().0;
    for TooLateRow {
        hour,
        topic,
        country,
        device,
        events,
    } in late
    {
        let h = hour.timestamp_millis();
        if topic == plays_topic {
            if day_range.contains(&h) {
                *late_plays.entry((h, country, device)).or_default() += events;
            }
        } else {
            *late_imps.entry(h).or_default() += events;
        }
    }
    // Too-late impressions that can reach a play of hour `h`: they can move it to another SoP
    // or SoD cell (never in or out of the view).
    let late_imps_before = |h: i64| -> i64 {
        let sop_from = Ts(h).minus(cfg.sop_window_ms).hour_start().0;
        late_imps
            .range(range.start.0.min(sop_from)..h + HOUR_MS)
            .map(|(_, n)| n)
            .sum()
    };
    let late_plays_total: i64 = late_plays.values().sum();

    let mut rows = Vec::new();
    // Hourly view: a cell may have up to its (hour, country, device)'s too-late plays more in
    // batch, plus or minus the plays too-late impressions can move; and the differences of each
    // (hour, country, device) must add up to between 0 and its too-late plays (impressions move
    // plays, never add them), so differences that cancel out across cells are still caught.
    let diffs = differing(&rt, &batch);
    let mut group_sum: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
    for ((h, c, d, ..), r, b) in &diffs {
        *group_sum.entry((*h, c.as_str(), d.as_str())).or_default() += b - r;
    }
    for ((h, c, d, sop, sod, g, nl), r, b) in &diffs {
        let tl = late_plays
            .get(&(*h, c.clone(), d.clone()))
            .copied()
            .unwrap_or(0);
        let moved = late_imps_before(*h);
        let sum = group_sum
            .get(&(*h, c.as_str(), d.as_str()))
            .copied()
            .unwrap_or(0);
        rows.push(DriftRow {
            hour: Ts(*h),
            view: "hourly",
            cell: format!("{c} {d} sop={sop} sod={sod} genre={g} new_launch={nl}"),
            realtime: *r,
            batch: *b,
            explained: (-moved..=tl + moved).contains(&(b - r)) && (0..=tl).contains(&sum),
        });
    }
    // Per-video view: the same, with the day's too-late plays and the SoD lookback's impressions.
    let vdiffs = differing(&rt_video, &batch_video);
    let vsum: i64 = vdiffs.iter().map(|(_, r, b)| b - r).sum();
    let moved = late_imps.values().sum::<i64>();
    for ((v, sod), r, b) in vdiffs {
        rows.push(DriftRow {
            hour: day.start(),
            view: "video_daily",
            cell: format!("video={v} sod={sod}"),
            realtime: r,
            batch: b,
            explained: (-moved..=late_plays_total + moved).contains(&(b - r))
                && (0..=late_plays_total).contains(&vsum),
        });
    }
    // Versions in effect for part of the day that were loaded after that part began: the stream
    // counted those plays with the version before (batch is right).
    let catalog_notes = playsource_store::catalog::list_versions(pool)
        .await?
        .into_iter()
        .filter_map(|(v, file)| {
            let from = v.effective_from?;
            (from < day.plus(1).start() && v.loaded_at >= from && v.loaded_at > day.start()).then(|| {
                format!(
                    "catalog version {} ({file}) took effect at {from} and was loaded at {}: plays of the day from {from} that the stream counted before it saw the version (up to --catalog-ttl-secs after the load) keep the previous genre and new-launch flag in the realtime view, which shows as drift; the batch view has the right ones",
                    v.version, v.loaded_at
                )
            })
        })
        .collect();
    Ok(AuditReport {
        day,
        generation,
        catalog_notes,
        realtime_plays: rt.values().sum(),
        batch_plays: batch.values().sum(),
        too_late_plays: late_plays_total,
        too_late_impressions: late_imps.values().sum(),
        rows,
    })
}
