//! A day's batch split into N shards that run independently (`playsource batch --date D --shard
//! I/N`), on as many machines as the orchestrator gives them (docs/batch.md).
//!
//! Shards are independent because attribution joins on (member, video): every play and
//! impression of a member goes to one shard, so each shard computes exact counts for its members
//! and the day's view is the sum of the N parts.
//!
//! - **Which rows are a shard's.** When every file the day needs was written by the stream
//!   (`p<partition>-o<first>-<last>.parquet`), shard I reads only the files of the partitions
//!   `p` with `p mod N = I − 1`: the input topics are keyed by member and co-partitioned
//!   (docs/reference.md §1), so a member's plays and impressions share a partition number. Otherwise
//!   (some file written by another tool, whose partition is unknown) every shard reads every file
//!   and keeps the rows of members with [`MemberId::batch_shard`]`(N) = I − 1`. The choice is made
//!   from the day's listing, the same for all N shards.
//! - **Parts.** A shard records its counts in `batch_shard_*` (migration 0010) keyed by
//!   (day, N, I) — a re-run replaces its own part — with a fingerprint of the day's listing, and
//!   keeps its enriched plays in its own staging folder.
//! - **Publish.** In the same transaction, under the day's advisory lock, it counts the parts of
//!   (day, N) with its fingerprint; the shard that completes the set sums them into the batch view
//!   and marks the day complete, exactly like a one-machine publish, then swaps the day's enriched
//!   plays in. A shard that fails or never runs leaves the previous view in place.
//!
//! `--shard 1/1` is the one-machine run ([`crate::run_day`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use playsource_archive::layout::{date_segment, stream_file_partition};
use playsource_archive::read::ReadStats;
use playsource_domain::{Catalog, Day, MemberId};
use sqlx::PgPool;

use crate::compute::{compute_day, plan_day, ComputeOptions, DayPlan, InputFile};
use crate::enriched::StagedDir;
use crate::error::Error;
use crate::metrics as m;
use crate::parts::{record_part, PartRows, Recorded};
use crate::run::BatchOptions;

/// Shard I of N (1 ≤ I ≤ N).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole day: `1/1`.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether this is the whole day (`1/1`).
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether the member's rows are this shard's (files that do not say their partition).
    pub fn owns_member(self, m: MemberId) -> bool {
        m.batch_shard(self.count) == self.index - 1
    }

    /// Whether a stream-written file of Kafka partition `p` is this shard's.
    pub fn owns_partition(self, p: u32) -> bool {
        p % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Shard, Error> {
        let bad = || Error::ShardSpec { given: s.into() };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        // i32 in Postgres.
        if index == 0 || index > count || count > i32::MAX as u32 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// How a shard takes its share of a day's files.
#[derive(Clone, Debug)]
pub struct Share {
    /// The files the shard reads.
    pub plan: DayPlan,
    /// `Some`: rows are filtered by member hash (some file does not say its partition).
    pub members: Option<Shard>,
}

/// The shard's share of `plan` (see the module documentation).
pub fn share_of(plan: &DayPlan, shard: Shard) -> Share {
    if shard.is_whole() {
        return Share {
            plan: plan.clone(),
            members: None,
        };
    }
    let partition = |f: &InputFile| stream_file_partition(f.name());
    let all_stream = plan
        .plays_files
        .iter()
        .chain(&plan.impression_files)
        .all(|p| partition(p).is_some());
    if !all_stream {
        return Share {
            plan: plan.clone(),
            members: Some(shard),
        };
    }
    let mine = |files: &[InputFile]| -> Vec<InputFile> {
        files
            .iter()
            .filter(|p| partition(p).is_some_and(|n| shard.owns_partition(n)))
            .cloned()
            .collect()
    };
    Share {
        plan: DayPlan {
            day: plan.day,
            store: plan.store.clone(),
            plays_files: mine(&plan.plays_files),
            impression_files: mine(&plan.impression_files),
        },
        members: None,
    }
}

/// A fingerprint of a day's listing (each file's path under the archive root and size, FNV-1a
/// 64): shards that saw the same files agree on it, and only their parts are merged.
pub fn listing_fingerprint(plan: &DayPlan) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (tag, files) in [(b"P", &plan.plays_files), (b"I", &plan.impression_files)] {
        eat(tag);
        for f in files {
            eat(f.rel.as_bytes());
            eat(&[0]);
            eat(&f.size.to_le_bytes());
        }
    }
    format!(
        "{:016x}-{}-{}",
        h,
        plan.plays_files.len(),
        plan.impression_files.len()
    )
}

/// What one shard did.
#[derive(Clone, Debug)]
pub struct ShardSummary {
    pub day: Day,
    pub shard: Shard,
    /// Plays counted in this shard's part.
    pub plays: u64,
    /// Impressions of the day in this shard's part.
    pub impressions: u64,
    pub duplicate_plays: u64,
    pub plays_read: ReadStats,
    pub impressions_read: ReadStats,
    /// Files this shard read (plays, impressions).
    pub files: (usize, usize),
    /// Whether rows were filtered by member hash (some file did not say its partition).
    pub member_filter: bool,
    /// Parts of (day, N) recorded with the same fingerprint, this one included.
    pub parts_recorded: u32,
    /// `Some` when this shard completed the set and published the day.
    pub published: Option<crate::parts::DayPublished>,
    /// `--force` ran the shard although these partitions were behind (empty: complete).
    pub forced_past: Vec<playsource_store::progress::Behind>,
    pub elapsed: Duration,
}

/// Computes shard `shard` of `day` and records its part; publishes the day if it is the last.
pub async fn run_shard(
    pool: &PgPool,
    catalog: Arc<Catalog>,
    opts: &BatchOptions,
    day: Day,
    shard: Shard,
) -> Result<ShardSummary, Error> {
    let result = run_shard_inner(pool, catalog, opts, day, shard).await;
    match &result {
        Ok(s) => {
            metrics::counter!(m::PLAYS_COUNTED).increment(s.plays);
            metrics::counter!(m::DUPLICATE_PLAYS).increment(s.duplicate_plays);
            if s.published.is_some() {
                metrics::counter!(m::DAYS_PUBLISHED).increment(1);
            }
        }
        Err(_) => metrics::counter!(m::DAYS_FAILED).increment(1),
    }
    result
}

async fn run_shard_inner(
    pool: &PgPool,
    catalog: Arc<Catalog>,
    opts: &BatchOptions,
    day: Day,
    shard: Shard,
) -> Result<ShardSummary, Error> {
    let started = Instant::now();
    let forced_past = crate::gate::check(pool, opts, day).await?;
    let store = opts.archive.clone();
    let (imp_topic, plays_topic, allow_empty) = (
        opts.impressions_topic.clone(),
        opts.plays_topic.clone(),
        opts.allow_empty,
    );
    let cfg = opts.attribution;
    let (threads, progress) = (opts.threads, opts.progress);
    let (share, inputs, result, staged) = tokio::task::spawn_blocking(move || {
        let plan = plan_day(&store, &imp_topic, &plays_topic, day, &cfg)?;
        if plan.plays_files.is_empty() && !allow_empty {
            return Err(Error::MissingDay {
                day,
                looked_in: store.describe(&format!("{plays_topic}/{}", date_segment(day))),
            });
        }
        let inputs = listing_fingerprint(&plan);
        let share = share_of(&plan, shard);
        let staged = StagedDir::create(&store, day)?;
        let compute_opts = ComputeOptions {
            attribution: cfg,
            threads,
            progress,
            members: share.members,
        };
        let result = compute_day(&share.plan, &catalog, &compute_opts, Some(&staged))?;
        Ok((share, inputs, result, staged.keep()))
    })
    .await
    .map_err(|_| Error::Worker { day })??;

    let hourly = result.counts.hourly_rows();
    let video = result.counts.video_rows();
    let rows = PartRows {
        day,
        shard,
        inputs: &inputs,
        hourly: &hourly,
        video_daily: &video,
        plays: i64::try_from(result.plays_counted).unwrap_or(i64::MAX),
        impressions: i64::try_from(result.impressions_of_day).unwrap_or(i64::MAX),
        enriched_dir: &staged,
    };
    let recorded =
        match record_part(pool, &opts.archive, &rows, &opts.plays_topic, allow_empty).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(rel) = opts.archive.rel_of(&staged) {
                    let _ = opts.archive.delete_dir(&rel);
                }
                return Err(e);
            }
        };
    let (parts_recorded, published) = match recorded {
        Recorded::Waiting { parts } => (parts, None),
        Recorded::Published(p) => (shard.count, Some(p)),
    };
    let summary = ShardSummary {
        day,
        shard,
        plays: result.plays_counted,
        impressions: result.impressions_of_day,
        duplicate_plays: result.duplicate_plays,
        plays_read: result.plays_read,
        impressions_read: result.impressions_read,
        files: (
            share.plan.plays_files.len(),
            share.plan.impression_files.len(),
        ),
        member_filter: share.members.is_some(),
        parts_recorded,
        published,
        forced_past,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        %day,
        %shard,
        plays = summary.plays,
        parts = summary.parts_recorded,
        published = summary.published.is_some(),
        secs = summary.elapsed.as_secs_f64(),
        "batch shard part recorded"
    );
    Ok(summary)
}
