//! One day of the batch view, computed from the archive on every core.
//!
//! Three passes over the files, each spread over worker threads file by file:
//!
//! 1. **plays of D**: the (member, video) pairs that have a play, and for every play event_id the
//!    position (file, row) of its first copy, so repeats count once whatever thread reads them;
//! 2. **impressions of D−lookback..D**: the impressions of those pairs go into one
//!    [`Bulk`] per member shard (impressions of pairs without a play cannot matter and are not
//!    kept, which bounds memory by the day's plays rather than by the week's impressions); the
//!    lookback days' files are read through a [`PairFilter`], so only `member_id` and `video_id`
//!    are decoded for the rows of other pairs;
//! 3. **plays of D again**: each first copy is attributed by its shard's [`Bulk`] (the domain's
//!    rules, never re-implemented here), enriched from the catalog, counted, and written to the
//!    enriched plays file of its input file.
//!
//! Files are read a row group at a time, so memory stays bounded by the state above.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use playsource_archive::layout::parse_date_segment;
use playsource_archive::read::{ImpressionReader, PairFilter, PlayReader, ReadStats};
use playsource_archive::ArchiveStore;
use playsource_domain::aggregate::{Counts, PlayFacts};
use playsource_domain::attribution::bulk::Bulk;
use playsource_domain::{AttributionConfig, Catalog, Day, EventKey, Impression, MemberId, Play};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::enriched::StagedDir;
use crate::error::Error;

/// Member shards: each has its own [`Bulk`] behind a lock, so threads rarely wait for each other.
const SHARDS: usize = 64;
/// A play's position in the day's input: file index in the high bits, row in the low 40.
const ROW_BITS: u32 = 40;

/// One input file of a day: its path relative to the archive root, as
/// [`ArchiveStore::list_data_files`] gives it, and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub rel: String,
    pub size: u64,
}

impl InputFile {
    /// The file's name (its last path segment).
    pub fn name(&self) -> &str {
        self.rel.rsplit('/').next().unwrap_or(&self.rel)
    }
}

/// The files of one day, in the archive they are read from.
#[derive(Clone, Debug)]
pub struct DayPlan {
    pub day: Day,
    /// The archive (a local folder or an object store).
    pub store: ArchiveStore,
    /// `plays` files of the day, sorted (their order decides which copy of a repeat counts).
    pub plays_files: Vec<InputFile>,
    /// `impressions` files of the lookback days through the day.
    pub impression_files: Vec<InputFile>,
}

/// How to compute.
#[derive(Clone, Debug)]
pub struct ComputeOptions {
    pub attribution: AttributionConfig,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Draw a progress bar on stderr (only shown when stderr is a terminal).
    pub progress: bool,
    /// Keep only the rows of this shard's members (`--shard I/N` over files that do not say
    /// their partition); `None` keeps every row.
    pub members: Option<crate::shard::Shard>,
}

/// What a day's computation produced.
#[derive(Debug)]
pub struct DayResult {
    pub day: Day,
    /// Both views of the day's counted plays.
    pub counts: Counts,
    /// Plays counted (first copies of valid plays of the day).
    pub plays_counted: u64,
    /// Valid plays of the day left out as repeats of an event_id.
    pub duplicate_plays: u64,
    /// Valid impressions of the day (rows, repeats included).
    pub impressions_of_day: u64,
    /// (member, video) pairs with a play.
    pub pairs: usize,
    /// Impressions kept for attribution (those of pairs with a play).
    pub impressions_used: u64,
    /// What reading the plays files gave (last pass).
    pub plays_read: ReadStats,
    /// What reading the impressions files gave.
    pub impressions_read: ReadStats,
    /// Rows written to the staged enriched plays.
    pub enriched_rows: u64,
}

fn shard_of(member: u64) -> usize {
    // Fibonacci hashing spreads sequential ids over the shards.
    (member.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS
}

fn position(file: usize, row: u64) -> u64 {
    ((file as u64) << ROW_BITS) | row
}

/// Computes `plan.day`; when `staged` is given, the enriched plays are written into it.
pub fn compute_day(
    plan: &DayPlan,
    catalog: &Catalog,
    opts: &ComputeOptions,
    staged: Option<&StagedDir>,
) -> Result<DayResult, Error> {
    let day = plan.day;
    let plays_range = day.start()..day.plus(1).start();
    let imp_range = opts.attribution.impression_range(day);
    let plays_bytes = total_bytes(&plan.plays_files);
    let imp_bytes = total_bytes(&plan.impression_files);
    let bar = progress_bar(opts.progress, day, 2 * plays_bytes + imp_bytes);
    let threads = opts.threads.max(1);
    let store = &plan.store;
    let members = opts.members;
    let mine = move |m: MemberId| members.is_none_or(|s| s.owns_member(m));

    // Pass 1: pairs with a play, and the first copy of every play event_id.
    bar.set_message(format!("{day}: plays (1/3)"));
    let firsts = for_each_file(
        &plan.plays_files,
        threads,
        &bar,
        day,
        Firsts::default,
        |st, i, file| {
            for batch in PlayReader::open_in(store, &file.rel)? {
                let batch = batch?;
                let base = batch.first_row();
                let Firsts {
                    pairs,
                    first,
                    stats,
                } = st;
                batch.for_each(Some(&plays_range), stats, |row, p| {
                    if !mine(p.member_id) {
                        return;
                    }
                    pairs.insert((p.member_id.0, p.video_id.0));
                    let pos = position(i, base + row as u64);
                    first
                        .entry(EventKey::hash128(&p.event_id))
                        .and_modify(|v| *v = (*v).min(pos))
                        .or_insert(pos);
                });
            }
            Ok(())
        },
    )?;
    let Firsts {
        pairs,
        first,
        stats: pass1_stats,
    } = merge_firsts(firsts);
    tracing::debug!(%day, pairs = pairs.len(), plays = first.len(), valid = pass1_stats.accepted, "plays indexed");

    // Pass 2: impressions of those pairs, into their member shard's Bulk.
    let shards: Vec<Mutex<Bulk>> = (0..SHARDS)
        .map(|_| Mutex::new(Bulk::new(opts.attribution)))
        .collect();
    bar.set_message(format!("{day}: impressions (2/3)"));
    let imp_files: &[InputFile] = if pairs.is_empty() {
        bar.inc(imp_bytes);
        &[]
    } else {
        &plan.impression_files
    };
    let day_range = day.start()..day.plus(1).start();
    // The lookback days' files are read for the pairs only: their other columns are decoded just
    // for the rows of a pair with a play (the day's own files are read whole, to count and
    // validate the day's impressions).
    let pairs = Arc::new(pairs);
    let keep: PairFilter = {
        let pairs = Arc::clone(&pairs);
        Arc::new(move |m, v| mine(MemberId(m)) && pairs.contains(&(m, v)))
    };
    let imp_states = for_each_file(
        imp_files,
        threads,
        &bar,
        day,
        ImpState::default,
        |st, _, file| {
            let of_day = file.rel.split('/').find_map(parse_date_segment) == Some(day);
            let mut reader = if of_day {
                ImpressionReader::open_in(store, &file.rel)?
            } else {
                ImpressionReader::open_in_where(store, &file.rel, &keep)?
            };
            for batch in reader.by_ref() {
                let batch = batch?;
                let mut per_shard: Vec<Vec<Impression<'_>>> = vec![Vec::new(); SHARDS];
                batch.for_each(Some(&imp_range), &mut st.stats, |_, imp| {
                    if !mine(imp.member_id) {
                        return;
                    }
                    if day_range.contains(&imp.ts) {
                        st.of_day += 1;
                    }
                    if pairs.contains(&(imp.member_id.0, imp.video_id.0)) {
                        per_shard[shard_of(imp.member_id.0)].push(imp);
                    }
                });
                for (s, imps) in per_shard.iter().enumerate() {
                    if imps.is_empty() {
                        continue;
                    }
                    let mut bulk = shards[s].lock().map_err(|_| Error::Worker { day })?;
                    for imp in imps {
                        bulk.add_impression(imp);
                    }
                    st.used += imps.len() as u64;
                }
            }
            st.stats.add_filtered(reader.filtered_out());
            Ok(())
        },
    )?;
    let mut impressions_read = ReadStats::default();
    let (mut impressions_of_day, mut impressions_used) = (0, 0);
    for st in &imp_states {
        impressions_read.merge(&st.stats);
        impressions_of_day += st.of_day;
        impressions_used += st.used;
    }
    tracing::debug!(%day, rows = impressions_read.rows, filtered = impressions_read.filtered, used = impressions_used, "impressions read");

    // Pass 3: attribute, enrich, count and write every first copy.
    bar.set_message(format!("{day}: attribution (3/3)"));
    let done = for_each_file(
        &plan.plays_files,
        threads,
        &bar,
        day,
        PlayState::default,
        |st, i, file| {
            let mut out = staged.map(|s| s.part_writer(i));
            for batch in PlayReader::open_in(store, &file.rel)? {
                let batch = batch?;
                let base = batch.first_row();
                let mut per_shard: Vec<Vec<Play<'_>>> = vec![Vec::new(); SHARDS];
                batch.for_each(Some(&plays_range), &mut st.stats, |row, p| {
                    if !mine(p.member_id) {
                        return;
                    }
                    let pos = position(i, base + row as u64);
                    if first.get(&EventKey::hash128(&p.event_id)) == Some(&pos) {
                        per_shard[shard_of(p.member_id.0)].push(p);
                    } else {
                        st.duplicates += 1;
                    }
                });
                for (s, plays) in per_shard.iter().enumerate() {
                    if plays.is_empty() {
                        continue;
                    }
                    let mut bulk = shards[s].lock().map_err(|_| Error::Worker { day })?;
                    for p in plays {
                        let Some((rec, att)) = bulk.attribute(p) else {
                            st.duplicates += 1;
                            continue;
                        };
                        let e = catalog.enrich(rec.video_id, rec.ts);
                        let names = bulk.names();
                        let facts = PlayFacts::of(names, &rec, &att, e.genre, e.is_new_launch);
                        st.counts.add(&facts, 1);
                        if let Some(w) = out.as_mut() {
                            w.push(names, &rec, &att, &e)?;
                        }
                    }
                }
            }
            if let Some(w) = out {
                st.enriched_rows += w.close(false)?;
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    tracing::debug!(%day, "plays attributed");

    let mut counts = Counts::default();
    let mut plays_read = ReadStats::default();
    let (mut duplicate_plays, mut enriched_rows) = (0, 0);
    for st in &done {
        counts.merge(&st.counts);
        plays_read.merge(&st.stats);
        duplicate_plays += st.duplicates;
        enriched_rows += st.enriched_rows;
    }
    let plays_counted = u64::try_from(counts.total()).unwrap_or(0);
    if let Some(s) = staged {
        if enriched_rows == 0 {
            // An empty day still gets one (empty) file, so readers find the schema.
            s.part_writer(0).close(true)?;
        }
    }
    Ok(DayResult {
        day,
        counts,
        plays_counted,
        duplicate_plays,
        impressions_of_day,
        pairs: pairs.len(),
        impressions_used,
        plays_read,
        impressions_read,
        enriched_rows,
    })
}

#[derive(Default)]
struct Firsts {
    pairs: FxHashSet<(u64, u64)>,
    first: FxHashMap<u128, u64>,
    stats: ReadStats,
}

fn merge_firsts(parts: Vec<Firsts>) -> Firsts {
    let mut parts = parts;
    // Merge into the largest part.
    parts.sort_by_key(|p| std::cmp::Reverse(p.first.len()));
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for p in it {
        acc.pairs.extend(p.pairs);
        for (h, pos) in p.first {
            acc.first
                .entry(h)
                .and_modify(|v| *v = (*v).min(pos))
                .or_insert(pos);
        }
        acc.stats.merge(&p.stats);
    }
    acc
}

#[derive(Default)]
struct ImpState {
    stats: ReadStats,
    of_day: u64,
    used: u64,
}

#[derive(Default)]
struct PlayState {
    counts: Counts,
    stats: ReadStats,
    duplicates: u64,
    enriched_rows: u64,
}

/// Runs `work(state, file_index, path)` for every file on `threads` scoped threads (each with its
/// own state from `init`), files handed out one at a time. The first error stops the others.
fn for_each_file<T, I, W>(
    files: &[InputFile],
    threads: usize,
    bar: &ProgressBar,
    day: Day,
    init: I,
    work: W,
) -> Result<Vec<T>, Error>
where
    T: Send,
    I: Fn() -> T + Sync,
    W: Fn(&mut T, usize, &InputFile) -> Result<(), Error> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = threads.min(files.len()).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        if let Err(e) = work(&mut state, i, file) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        bar.inc(file.size);
                    }
                    Ok(state)
                })
            })
            .collect();
        let mut states = Vec::with_capacity(handles.len());
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(s)) => states.push(s),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::Worker { day });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(states),
        }
    })
}

fn total_bytes(files: &[InputFile]) -> u64 {
    files.iter().map(|f| f.size).sum()
}

fn progress_bar(enabled: bool, day: Day, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:<32} [{bar:30}] {binary_bytes}/{binary_total_bytes} {elapsed_precise} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("{day}"));
    bar
}

/// The plays and impressions files a day needs, as the archive lists them
/// ([`ArchiveStore::list_data_files`]), with their sizes.
pub fn plan_day(
    store: &ArchiveStore,
    impressions_topic: &str,
    plays_topic: &str,
    day: Day,
    cfg: &AttributionConfig,
) -> Result<DayPlan, Error> {
    let range = cfg.impression_range(day);
    let first_day = range.start.day();
    let with_sizes = |rels: Vec<String>| -> Result<Vec<InputFile>, Error> {
        let sizes = store.sizes(&rels)?;
        Ok(rels
            .into_iter()
            .zip(sizes)
            .map(|(rel, size)| InputFile { rel, size })
            .collect())
    };
    Ok(DayPlan {
        day,
        store: store.clone(),
        plays_files: with_sizes(store.list_data_files(plays_topic, day..=day)?)?,
        impression_files: with_sizes(store.list_data_files(impressions_topic, first_day..=day)?)?,
    })
}
