//! Bootstrap from the archive: a unit taken over without a usable checkpoint, whose topic-partitions
//! Kafka no longer holds from offset 0, rebuilds the engine state of the events retention dropped
//! from the raw archive before replaying Kafka from the earliest retained offsets
//! (docs/stream.md, "State across restarts"). Without it, a Kafka retention shorter than the
//! attribution lookback would silently attribute plays to the wrong Source of Discovery.
//!
//! Per topic, the archived rows of partition p whose `_offset` is below the earliest retained
//! offset are fed into the engine in `_offset` order with every output suppressed, as the silent
//! replay does (the engine's state depends only on each topic-partition's order). Days are read
//! newest first, from the clock's day back: the newest archived row below the earliest retained
//! offset gives that topic's event time W when Kafka's part begins, and nothing before
//! `impression_range(day of W - allowed lateness)` or `W - allowed lateness - dedup horizon` can
//! change what the engine does from there on, so days before the earlier of the two are not read.

use std::sync::Arc;

use playsource_archive::layout::stream_file_partition;
use playsource_archive::read::{ImpressionsWithProvenance, PlaysWithProvenance};
use playsource_archive::ArchiveStore;
use playsource_domain::{
    AttributionConfig, Catalog, Day, Engine, Impression, PerTopic, Play, Topic, Ts,
};

use super::state::Loop;
use crate::error::Error;
use crate::metrics as m;

/// Days walked back from the clock looking for an archived row below a topic's earliest retained
/// offset before concluding the archive has none.
pub const SEARCH_DAYS: i32 = 62;

/// What a bootstrap read from the archive, per topic.
#[derive(Default)]
struct Found {
    impressions: Vec<(i64, Impression<'static>)>,
    plays: Vec<(i64, Play<'static>)>,
    /// Greatest event time among the rows found, per topic.
    high: PerTopic<Option<Ts>>,
    files: u64,
    /// Files with rows lacking `_partition`/`_offset`, whose rows were skipped.
    foreign: PerTopic<u64>,
    /// The oldest day read.
    oldest: Option<Day>,
}

impl Loop {
    /// Feeds into `engine` (fresh: no checkpoint was usable) the archived events of partition `p`
    /// below the earliest retained offsets `low`, when Kafka no longer holds a topic-partition
    /// from its beginning; returns the engine. Does nothing when a checkpoint was restored or
    /// Kafka holds everything.
    pub(super) async fn bootstrap_from_archive(
        &self,
        p: i32,
        assigned: PerTopic<bool>,
        low: PerTopic<i64>,
        engine: Engine,
    ) -> Result<Engine, Error> {
        let restored =
            engine.impressions_high_water().is_some() || engine.plays_high_water().is_some();
        let need = PerTopic::from_fn(|k| assigned[k] && low[k] > 0);
        if restored || !need.any() {
            return Ok(engine);
        }
        let s = &self.shared;
        let store = s.cfg.archive.clone();
        let topics = s.topics.clone();
        let catalog = Arc::clone(&self.catalog);
        let top = Ts(clock_ms() + i64::try_from(s.cfg.max_future.as_millis()).unwrap_or(0)).day();
        let started = std::time::Instant::now();
        let (engine, found, fed) = tokio::task::spawn_blocking(move || {
            let found = read_below(&store, &topics, p, need, low, top, engine.config())?;
            let mut engine = engine;
            let fed = feed(&mut engine, &found, &catalog);
            Ok::<_, Error>((engine, found, fed))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        for k in Topic::ALL {
            let topic = &s.topics[k];
            ::metrics::counter!(m::BOOTSTRAP_EVENTS, "topic" => topic.clone()).increment(fed[k]);
            if found.foreign[k] > 0 {
                ::metrics::counter!(m::BOOTSTRAP_SKIPPED_FILES, "topic" => topic.clone())
                    .increment(found.foreign[k]);
            }
            if need[k] && found.high[k].is_none() {
                ::metrics::counter!(m::BOOTSTRAP_MISSING, "topic" => topic.clone()).increment(1);
                tracing::warn!(topic = %topic, partition = p, earliest = low[k], archive = %s.cfg.archive.display(),
                    searched_from = %top, "Kafka no longer holds this topic-partition from offset 0 and the archive has none of its events below the earliest retained offset; attribution may miss what retention dropped (restore the archive, or accept it)");
            }
        }
        tracing::info!(partition = p, impressions = fed.impressions, plays = fed.plays, files = found.files,
            oldest_day = ?found.oldest.map(|d| d.to_string()), below = ?low, ms = started.elapsed().as_millis() as u64,
            "engine state rebuilt from the archive for what Kafka retention dropped");
        Ok(engine)
    }
}

/// Reads, per needed topic, the archived rows of partition `p` with `_offset` below `low`, days
/// from `top` back to where the lookback can still need them.
fn read_below(
    store: &ArchiveStore,
    topics: &PerTopic<String>,
    p: i32,
    need: PerTopic<bool>,
    low: PerTopic<i64>,
    top: Day,
    cfg: &AttributionConfig,
) -> Result<Found, Error> {
    let mut found = Found::default();
    let mut day = top;
    loop {
        let floor = found
            .high
            .values()
            .flatten()
            .min()
            .map(|w| oldest_needed(cfg, *w));
        match floor {
            Some(f) if day < f => break,
            None if day.0 < top.0 - SEARCH_DAYS => break,
            _ => {}
        }
        for k in Topic::ALL.into_iter().filter(|&k| need[k]) {
            for rel in store.list_data_files(&topics[k], day..=day)? {
                let name = rel.rsplit('/').next().unwrap_or_default();
                if stream_file_partition(name).is_some_and(|q| i64::from(q) != i64::from(p)) {
                    continue;
                }
                if let Some((_, first, _)) = playsource_archive::layout::stream_file_range(name) {
                    if first >= low[k] {
                        continue;
                    }
                }
                let unknown = read_file(store, &rel, k, p, low[k], &mut found)?;
                found.files += 1;
                found.oldest = Some(day);
                if unknown > 0 {
                    found.foreign[k] += 1;
                    tracing::warn!(file = %store.describe(&rel).display(), rows = unknown, partition = p,
                        "archive rows without _partition/_offset (not written by the stream) skipped by the bootstrap: their partition and order in Kafka are unknown");
                }
            }
        }
        day = day.plus(-1);
    }
    Ok(found)
}

/// Reads the rows of partition `p` with `_offset` below `below` of one file into `found`; returns
/// how many rows it skipped for lacking a provenance (a file without the `_partition`/`_offset`
/// columns, or rows where they are null: written by another tool).
fn read_file(
    store: &ArchiveStore,
    rel: &str,
    k: Topic,
    p: i32,
    below: i64,
    found: &mut Found,
) -> Result<u64, Error> {
    let mut stats = playsource_archive::read::ReadStats::default();
    let mut unknown = 0u64;
    let mut high = found.high[k];
    // The offset of a row to keep, counting rows without provenance.
    let mut keep = |prov: Option<(i32, i64)>, ts: Ts| match prov {
        None => {
            unknown += 1;
            None
        }
        Some((q, o)) if q == p && o < below => {
            if high.is_none_or(|h| ts > h) {
                high = Some(ts);
            }
            Some(o)
        }
        Some(_) => None,
    };
    match k {
        Topic::Impressions => {
            let reader = ImpressionsWithProvenance::open_in(store, rel)?;
            if !reader.has_provenance() {
                return Ok(reader.total_rows());
            }
            for batch in reader {
                let (batch, prov) = batch?;
                batch.for_each(None, &mut stats, |row, imp| {
                    if let Some(o) = keep(prov.get(row), imp.ts) {
                        found.impressions.push((o, imp.into_owned()));
                    }
                });
            }
        }
        Topic::Plays => {
            let reader = PlaysWithProvenance::open_in(store, rel)?;
            if !reader.has_provenance() {
                return Ok(reader.total_rows());
            }
            for batch in reader {
                let (batch, prov) = batch?;
                batch.for_each(None, &mut stats, |row, play| {
                    if let Some(o) = keep(prov.get(row), play.ts) {
                        found.plays.push((o, play.into_owned()));
                    }
                });
            }
        }
    }
    found.high[k] = high;
    Ok(unknown)
}

/// The oldest day whose events can still change what the engine does once its topic-partition
/// stands at event time `w`: impressions a play of (`w` - allowed lateness)'s day can use, and
/// plays within the de-duplication horizon.
fn oldest_needed(cfg: &AttributionConfig, w: Ts) -> Day {
    let earliest_play = w.minus(cfg.allowed_lateness_ms);
    let imps = cfg.impression_range(earliest_play.day()).start;
    let dedup = earliest_play.minus(cfg.dedup_horizon_ms);
    imps.min(dedup).day()
}

/// Feeds what was found into the engine, each topic in `_offset` order (an offset archived
/// twice counts once), every output dropped; the events fed per topic.
fn feed(engine: &mut Engine, found: &Found, catalog: &Catalog) -> PerTopic<u64> {
    let mut outs = Vec::new();
    let mut fed = PerTopic::<u64>::default();
    let mut imps: Vec<_> = found.impressions.iter().collect();
    imps.sort_by_key(|(o, _)| *o);
    imps.dedup_by_key(|(o, _)| *o);
    for (_, imp) in imps {
        engine.on_impression(imp, &mut outs);
        outs.clear();
        fed.impressions += 1;
    }
    let mut plays: Vec<_> = found.plays.iter().collect();
    plays.sort_by_key(|(o, _)| *o);
    plays.dedup_by_key(|(o, _)| *o);
    for (_, play) in plays {
        let e = catalog.enrich(play.video_id, play.ts);
        engine.on_play_counted_as(play, e.genre, e.is_new_launch, &mut outs);
        outs.clear();
        fed.plays += 1;
    }
    fed
}

fn clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
