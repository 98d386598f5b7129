//! A batch run of one day, end to end: list the archive, compute on every core while staging the
//! enriched plays, publish the views in one transaction, then swap the enriched plays in. A range
//! of days ([`run_days`]) computes each day while the one before it is published.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use playsource_archive::layout::date_segment;
use playsource_archive::read::ReadStats;
use playsource_archive::ArchiveStore;
use playsource_domain::{AttributionConfig, Catalog, Day};
use sqlx::PgPool;

use crate::compute::{compute_day, plan_day, ComputeOptions, DayResult};
use crate::enriched::StagedDir;
use crate::error::Error;
use crate::metrics as m;
use crate::publish::{publish_day, DayRows, Published};

/// Everything a batch run needs besides the database.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// The archive (`--archive`): a local folder or an object store.
    pub archive: ArchiveStore,
    /// The impressions topic, which names its archive folder.
    pub impressions_topic: String,
    /// The plays topic, which names its archive folder and its `rt_too_late` rows.
    pub plays_topic: String,
    pub attribution: AttributionConfig,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Publish a day without plays instead of failing.
    pub allow_empty: bool,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Publish even when the archive is not complete for the day (see [`crate::gate`]).
    pub force: bool,
}

impl BatchOptions {
    /// Options with the default rules, every core and no progress bar.
    pub fn new(archive: impl Into<ArchiveStore>) -> BatchOptions {
        BatchOptions {
            archive: archive.into(),
            impressions_topic: "impressions".into(),
            plays_topic: "plays".into(),
            attribution: AttributionConfig::default(),
            threads: default_threads(),
            allow_empty: false,
            progress: false,
            force: false,
        }
    }
}

/// The number of cores available to this process.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a published day looks like.
#[derive(Clone, Debug)]
pub struct DaySummary {
    pub day: Day,
    pub generation: i64,
    /// Counted plays.
    pub plays: u64,
    /// Valid impressions of the day (rows, repeats included).
    pub impressions: u64,
    /// Plays the stream found too late on this day.
    pub too_late_plays: i64,
    /// Repeats of a play event_id left out.
    pub duplicate_plays: u64,
    pub plays_read: ReadStats,
    pub impressions_read: ReadStats,
    pub hourly_rows: usize,
    pub video_rows: usize,
    /// `--force` published the day although these partitions were behind (empty: complete).
    pub forced_past: Vec<playsource_store::progress::Behind>,
    /// Where the day's enriched plays now are (a local path, or the URL of the prefix).
    pub enriched_dir: PathBuf,
    pub elapsed: Duration,
}

/// Recomputes `day` from the archive and replaces it in the batch view.
pub async fn run_day(
    pool: &PgPool,
    catalog: Arc<Catalog>,
    opts: &BatchOptions,
    day: Day,
) -> Result<DaySummary, Error> {
    let mut summary = None;
    run_days(pool, catalog, opts, &[day], |s| summary = Some(s.clone()))
        .await
        .map_err(|(_, e)| e)?;
    summary.ok_or(Error::Worker { day })
}

/// Recomputes `days` in order and replaces each in the batch view, calling `each` after every
/// publish: the same as [`run_day`] for each day in turn, except that the next day is computed
/// while the previous one is published (Postgres and the enriched plays' swap then overlap the
/// next day's reading). Stops at the first failing day, returned with its error; the days before
/// it stay published. A day computed ahead of a failed publish is dropped, its staged enriched
/// plays deleted.
pub async fn run_days(
    pool: &PgPool,
    catalog: Arc<Catalog>,
    opts: &BatchOptions,
    days: &[Day],
    mut each: impl FnMut(&DaySummary),
) -> Result<(), (Day, Error)> {
    let ahead = |day: Day| {
        let (pool, catalog, opts) = (pool.clone(), Arc::clone(&catalog), opts.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            computed(&pool, catalog, &opts, day, started).await
        })
    };
    let mut next = days.first().map(|&d| ahead(d));
    for (i, &day) in days.iter().enumerate() {
        let Some(task) = next.take() else { break };
        let result = match task.await.map_err(|_| Error::Worker { day }) {
            Ok(Ok(c)) => {
                next = days.get(i + 1).map(|&d| ahead(d));
                published(pool, opts, c).await
            }
            Ok(Err(e)) | Err(e) => Err(e),
        };
        record_metrics(opts, &result);
        match result {
            Ok(s) => each(&s),
            Err(e) => {
                if let Some(t) = next.take() {
                    t.abort();
                }
                return Err((day, e));
            }
        }
    }
    Ok(())
}

fn record_metrics(opts: &BatchOptions, result: &Result<DaySummary, Error>) {
    match result {
        Ok(s) => {
            metrics::counter!(m::DAYS_PUBLISHED).increment(1);
            metrics::counter!(m::PLAYS_COUNTED).increment(s.plays);
            metrics::counter!(m::DUPLICATE_PLAYS).increment(s.duplicate_plays);
            for (topic, st) in [
                (&opts.plays_topic, &s.plays_read),
                (&opts.impressions_topic, &s.impressions_read),
            ] {
                metrics::counter!(m::ROWS_READ, "topic" => topic.clone()).increment(st.rows);
                metrics::counter!(m::INVALID_ROWS, "topic" => topic.clone()).increment(st.invalid);
            }
            metrics::histogram!(m::DAY_SECONDS).record(s.elapsed.as_secs_f64());
        }
        Err(_) => metrics::counter!(m::DAYS_FAILED).increment(1),
    }
}

/// A day computed and its enriched plays staged, not yet published.
struct Computed {
    day: Day,
    result: DayResult,
    staged: StagedDir,
    forced_past: Vec<playsource_store::progress::Behind>,
    started: Instant,
}

/// The completeness gate, then the computation on every core (off the async runtime).
async fn computed(
    pool: &PgPool,
    catalog: Arc<Catalog>,
    opts: &BatchOptions,
    day: Day,
    started: Instant,
) -> Result<Computed, Error> {
    let today = playsource_domain::Ts(chrono::Utc::now().timestamp_millis()).day();
    if day >= today {
        tracing::warn!(%day, "the day is not over yet (UTC): the batch view will miss what is still to come; re-run it tomorrow");
    }
    let forced_past = crate::gate::check(pool, opts, day).await?;
    let store = opts.archive.clone();
    let compute_opts = ComputeOptions {
        attribution: opts.attribution,
        threads: opts.threads,
        progress: opts.progress,
        members: None,
    };
    let (imp_topic, plays_topic, allow_empty) = (
        opts.impressions_topic.clone(),
        opts.plays_topic.clone(),
        opts.allow_empty,
    );
    let cfg = opts.attribution;
    let (result, staged) = tokio::task::spawn_blocking(move || -> Result<(DayResult, StagedDir), Error> {
        let plan = plan_day(&store, &imp_topic, &plays_topic, day, &cfg)?;
        let plays_dir = store.describe(&format!("{plays_topic}/{}", date_segment(day)));
        if plan.plays_files.is_empty() && !allow_empty {
            return Err(Error::MissingDay {
                day,
                looked_in: plays_dir,
            });
        }
        if plan.impression_files.is_empty() {
            tracing::warn!(%day, folder = %store.describe(&imp_topic).display(), "no impressions archived for the lookback days: every play will be unattributed");
        }
        let staged = StagedDir::create(&store, day)?;
        let result = compute_day(&plan, &catalog, &compute_opts, Some(&staged))?;
        if result.plays_counted == 0 && !allow_empty && !plan.plays_files.is_empty() {
            return Err(Error::EmptyDay {
                day,
                looked_in: plays_dir,
                files: plan.plays_files.len(),
                invalid: result.plays_read.invalid,
                out_of_range: result.plays_read.out_of_range,
            });
        }
        Ok((result, staged))
    })
    .await
    .map_err(|_| Error::Worker { day })??;

    Ok(Computed {
        day,
        result,
        staged,
        forced_past,
        started,
    })
}

/// Publishes a computed day: the views in one transaction, then the enriched plays swapped in.
async fn published(pool: &PgPool, opts: &BatchOptions, c: Computed) -> Result<DaySummary, Error> {
    let Computed {
        day,
        result,
        staged,
        forced_past,
        started,
    } = c;
    report_skipped(day, "plays", &result.plays_read);
    report_skipped(day, "impressions", &result.impressions_read);
    let hourly = result.counts.hourly_rows();
    let video = result.counts.video_rows();
    let rows = DayRows {
        day,
        hourly: &hourly,
        video_daily: &video,
        plays: i64::try_from(result.plays_counted).unwrap_or(i64::MAX),
        impressions: i64::try_from(result.impressions_of_day).unwrap_or(i64::MAX),
    };
    let Published {
        generation,
        too_late_plays,
    } = publish_day(pool, &rows, &opts.plays_topic).await?;
    tracing::debug!(%day, generation, "views published; committing the enriched plays");
    let enriched_dir = tokio::task::spawn_blocking(move || staged.commit())
        .await
        .map_err(|_| Error::Worker { day })??;
    let summary = DaySummary {
        day,
        generation,
        plays: result.plays_counted,
        impressions: result.impressions_of_day,
        too_late_plays,
        duplicate_plays: result.duplicate_plays,
        plays_read: result.plays_read,
        impressions_read: result.impressions_read,
        hourly_rows: hourly.len(),
        video_rows: video.len(),
        forced_past,
        enriched_dir,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        %day,
        generation,
        plays = summary.plays,
        impressions = summary.impressions,
        duplicate_plays = summary.duplicate_plays,
        too_late_plays,
        pairs = result.pairs,
        impressions_used = result.impressions_used,
        secs = summary.elapsed.as_secs_f64(),
        "batch view published"
    );
    Ok(summary)
}

fn report_skipped(day: Day, topic: &str, st: &ReadStats) {
    if st.invalid > 0 {
        tracing::warn!(
            %day,
            topic,
            skipped = st.invalid,
            by_field = ?st.invalid_by_field,
            first = st.first_invalid.as_deref().unwrap_or(""),
            "archive rows that break a rule of docs/reference.md §1 were skipped"
        );
    }
}

/// The temporal catalog as Postgres holds it, every version (read once per run: each play takes
/// the version in effect at its ts, as in the stream).
pub async fn load_catalog(pool: &PgPool) -> Result<Catalog, Error> {
    Ok(playsource_store::catalog::fetch_catalog(pool).await?)
}
