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
//!
//! Rows without `_partition`/`_offset` (files written by another tool) are placed by their
//! member's key and cut at an event-time bound below what Kafka still holds ([`foreign`]); they
//! are merged into the offset-ordered rows by event time.

mod foreign;

use std::sync::Arc;

use playsource_archive::layout::stream_file_partition;
use playsource_archive::read::{ImpressionsWithProvenance, PlaysWithProvenance, ReadStats};
use playsource_archive::ArchiveStore;
use playsource_domain::{
    AttributionConfig, Catalog, Day, Engine, Impression, MemberId, PerTopic, Play, Topic, Ts,
};

use self::foreign::{Facts, FactsConfig, Known, Place};
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
    /// Rows without provenance placed in the partition, below the bound.
    foreign_impressions: Vec<Impression<'static>>,
    foreign_plays: Vec<Play<'static>>,
    /// Greatest event time among the rows found, per topic.
    high: PerTopic<Option<Ts>>,
    files: u64,
    /// Files with rows lacking `_partition`/`_offset`.
    foreign_files: PerTopic<u64>,
    /// Rows without provenance of the partition at or after the bound: not fed.
    cut: PerTopic<u64>,
    /// Files with rows without provenance that could not be placed (breaking a rule of
    /// docs/reference.md §1, such as a null `member_id`): those rows were skipped.
    skipped: PerTopic<u64>,
    /// The facts foreign rows were placed with, per topic (when there were any).
    known: PerTopic<Option<Known>>,
    /// The oldest day read.
    oldest: Option<Day>,
}

/// Events fed, per topic: all of them, and those from rows without provenance.
#[derive(Default)]
struct Fed {
    events: PerTopic<u64>,
    foreign: PerTopic<u64>,
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
        let facts = FactsConfig {
            brokers: s.cfg.brokers.clone(),
            topics: topics.clone(),
            partitioner: s.cfg.archive_partitioner,
            allowed_lateness_ms: engine.config().allowed_lateness_ms,
            max_future_ms: i64::try_from(s.cfg.max_future.as_millis()).unwrap_or(i64::MAX),
            patience: s.cfg.retry_timeout,
        };
        let started = std::time::Instant::now();
        let (engine, found, fed) = tokio::task::spawn_blocking(move || {
            // Read from the broker only if foreign rows turn up; dropped on this thread.
            let mut facts = Facts::new(facts, p, low);
            let found = read_below(
                &store,
                &topics,
                p,
                need,
                low,
                top,
                engine.config(),
                &mut facts,
            )?;
            let mut engine = engine;
            let fed = feed(&mut engine, &found, &catalog);
            Ok::<_, Error>((engine, found, fed))
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        for k in Topic::ALL {
            let topic = &s.topics[k];
            ::metrics::counter!(m::BOOTSTRAP_EVENTS, "topic" => topic.clone())
                .increment(fed.events[k]);
            if fed.foreign[k] > 0 {
                ::metrics::counter!(m::BOOTSTRAP_FOREIGN_EVENTS, "topic" => topic.clone())
                    .increment(fed.foreign[k]);
            }
            if found.skipped[k] > 0 {
                ::metrics::counter!(m::BOOTSTRAP_SKIPPED_FILES, "topic" => topic.clone())
                    .increment(found.skipped[k]);
            }
            if found.cut[k] > 0 {
                tracing::info!(topic = %topic, partition = p, rows = found.cut[k],
                    bound = ?found.known[k].and_then(|f| f.bound).map(|b| b.to_string()),
                    "archive rows without _partition/_offset at or after the bound not fed: Kafka may still hold them");
            }
            if need[k] && found.high[k].is_none() {
                ::metrics::counter!(m::BOOTSTRAP_MISSING, "topic" => topic.clone()).increment(1);
                tracing::warn!(topic = %topic, partition = p, earliest = low[k], archive = %s.cfg.archive.display(),
                    searched_from = %top, "Kafka no longer holds this topic-partition from offset 0 and the archive has none of its events below the earliest retained offset; attribution may miss what retention dropped (restore the archive, or accept it)");
            }
        }
        tracing::info!(partition = p, impressions = fed.events.impressions, plays = fed.events.plays,
            foreign_impressions = fed.foreign.impressions, foreign_plays = fed.foreign.plays,
            files = found.files, foreign_files = ?found.foreign_files,
            oldest_day = ?found.oldest.map(|d| d.to_string()), below = ?low, ms = started.elapsed().as_millis() as u64,
            "engine state rebuilt from the archive for what Kafka retention dropped");
        Ok(engine)
    }
}

/// Reads, per needed topic, the archived rows of partition `p` with `_offset` below `low` (and
/// the rows without provenance `facts` place there), days from `top` back to where the lookback
/// can still need them.
#[allow(clippy::too_many_arguments)]
fn read_below(
    store: &ArchiveStore,
    topics: &PerTopic<String>,
    p: i32,
    need: PerTopic<bool>,
    low: PerTopic<i64>,
    top: Day,
    cfg: &AttributionConfig,
    facts: &mut Facts,
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
                let read = read_file(store, &rel, k, p, low[k], day, facts, &mut found)?;
                found.files += 1;
                found.oldest = Some(day);
                if read.foreign > 0 {
                    found.foreign_files[k] += 1;
                    found.cut[k] += read.cut;
                }
                if read.unplaced > 0 {
                    found.skipped[k] += 1;
                    tracing::warn!(file = %store.describe(&rel).display(), rows = read.unplaced, partition = p,
                        "archive rows without _partition/_offset skipped by the bootstrap: they break a rule of docs/reference.md §1 (a null member_id, say), so their partition is unknown");
                }
            }
        }
        day = day.plus(-1);
    }
    found.known = PerTopic::from_fn(|k| facts.known(k));
    Ok(found)
}

/// What reading one file gave beyond the rows kept.
#[derive(Clone, Copy, Debug, Default)]
struct FileRead {
    /// Rows without provenance (all partitions').
    foreign: u64,
    /// Of them, the partition's at or after the bound.
    cut: u64,
    /// Rows without provenance that could not be placed.
    unplaced: u64,
}

/// An archived event, whichever its topic.
trait Event: Sized {
    type Owned: Event<Owned = Self::Owned>;
    fn ts(&self) -> Ts;
    fn member(&self) -> MemberId;
    fn id(&self) -> &str;
    fn owned(self) -> Self::Owned;
}

impl Event for Impression<'_> {
    type Owned = Impression<'static>;
    fn ts(&self) -> Ts {
        self.ts
    }
    fn member(&self) -> MemberId {
        self.member_id
    }
    fn id(&self) -> &str {
        &self.event_id
    }
    fn owned(self) -> Impression<'static> {
        self.into_owned()
    }
}

impl Event for Play<'_> {
    type Owned = Play<'static>;
    fn ts(&self) -> Ts {
        self.ts
    }
    fn member(&self) -> MemberId {
        self.member_id
    }
    fn id(&self) -> &str {
        &self.event_id
    }
    fn owned(self) -> Play<'static> {
        self.into_owned()
    }
}

/// The rows of one file a topic keeps: those of partition `p` below offset `below`, and those
/// without provenance placed in `p` below the bound.
struct Take<O> {
    p: i32,
    below: i64,
    high: Option<Ts>,
    known: Option<Known>,
    own: Vec<(i64, O)>,
    foreign: Vec<O>,
    /// Rows without provenance met before the facts were read (placed after their batch).
    stash: Vec<O>,
    read: FileRead,
}

impl<O: Event<Owned = O>> Take<O> {
    fn new(p: i32, below: i64, high: Option<Ts>, known: Option<Known>) -> Take<O> {
        Take {
            p,
            below,
            high,
            known,
            own: Vec::new(),
            foreign: Vec::new(),
            stash: Vec::new(),
            read: FileRead::default(),
        }
    }

    fn row<E: Event<Owned = O>>(&mut self, prov: Option<(i32, i64)>, e: E) {
        match prov {
            Some((q, o)) if q == self.p && o < self.below => {
                self.raise(e.ts());
                self.own.push((o, e.owned()));
            }
            Some(_) => {}
            None => {
                self.read.foreign += 1;
                match self.known {
                    Some(known) => {
                        let (ts, member) = (e.ts(), e.member());
                        self.place(&known, ts, member, move || e.owned());
                    }
                    None => self.stash.push(e.owned()),
                }
            }
        }
    }

    fn place(&mut self, known: &Known, ts: Ts, member: MemberId, owned: impl FnOnce() -> O) {
        match known.place(member, ts) {
            Place::Fed => {
                self.raise(ts);
                self.foreign.push(owned());
            }
            Place::Cut => self.read.cut += 1,
            Place::Elsewhere => {}
            Place::Unplaced => self.read.unplaced += 1,
        }
    }

    /// Places the rows stashed while the facts were unknown, reading them now.
    fn settle(&mut self, facts: &mut Facts, k: Topic) -> Result<(), Error> {
        if self.stash.is_empty() {
            return Ok(());
        }
        let known = facts.get(k)?;
        self.known = Some(known);
        for e in std::mem::take(&mut self.stash) {
            let (ts, member) = (e.ts(), e.member());
            self.place(&known, ts, member, move || e);
        }
        Ok(())
    }

    /// Rows without provenance that broke a rule of §1 (`stats` counts them, of the whole file):
    /// a row the stream wrote never does, so they count as unplaced when the file has foreign
    /// rows or no provenance at all.
    fn finish(&mut self, stats: &ReadStats, whole_foreign: bool) {
        if whole_foreign || self.read.foreign > 0 {
            self.read.unplaced += stats.invalid;
        }
    }

    fn raise(&mut self, ts: Ts) {
        if self.high.is_none_or(|h| ts > h) {
            self.high = Some(ts);
        }
    }
}

/// Reads the rows of partition `p` with `_offset` below `below` of one file of `day` into
/// `found`, and its rows without provenance (a file without the `_partition`/`_offset` columns,
/// or rows where they are null: written by another tool) that `facts` place in `p` before the
/// bound. A file without provenance on a day wholly at or after the bound is not read.
#[allow(clippy::too_many_arguments)]
fn read_file(
    store: &ArchiveStore,
    rel: &str,
    k: Topic,
    p: i32,
    below: i64,
    day: Day,
    facts: &mut Facts,
    found: &mut Found,
) -> Result<FileRead, Error> {
    let mut stats = ReadStats::default();
    // Facts are read up front for a file without provenance; lazily for one with null rows.
    let up_front = |whole_foreign: bool, facts: &mut Facts| -> Result<Option<Known>, Error> {
        if whole_foreign {
            facts.get(k).map(Some)
        } else {
            Ok(facts.known(k))
        }
    };
    let past = |known: Option<Known>| {
        known
            .and_then(|f| f.bound)
            .is_some_and(|b| day.start() >= b)
    };
    match k {
        Topic::Impressions => {
            let reader = ImpressionsWithProvenance::open_in(store, rel)?;
            let whole = !reader.has_provenance();
            let known = up_front(whole, facts)?;
            if whole && past(known) {
                return Ok(FileRead {
                    foreign: reader.total_rows(),
                    ..FileRead::default()
                });
            }
            let mut take = Take::new(p, below, found.high[k], known);
            for batch in reader {
                let (batch, prov) = batch?;
                batch.for_each(None, &mut stats, |row, imp| take.row(prov.get(row), imp));
                take.settle(facts, k)?;
            }
            take.finish(&stats, whole);
            found.high[k] = take.high;
            found.impressions.append(&mut take.own);
            found.foreign_impressions.append(&mut take.foreign);
            Ok(take.read)
        }
        Topic::Plays => {
            let reader = PlaysWithProvenance::open_in(store, rel)?;
            let whole = !reader.has_provenance();
            let known = up_front(whole, facts)?;
            if whole && past(known) {
                return Ok(FileRead {
                    foreign: reader.total_rows(),
                    ..FileRead::default()
                });
            }
            let mut take = Take::new(p, below, found.high[k], known);
            for batch in reader {
                let (batch, prov) = batch?;
                batch.for_each(None, &mut stats, |row, play| take.row(prov.get(row), play));
                take.settle(facts, k)?;
            }
            take.finish(&stats, whole);
            found.high[k] = take.high;
            found.plays.append(&mut take.own);
            found.foreign_plays.append(&mut take.foreign);
            Ok(take.read)
        }
    }
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

/// Feeds what was found into the engine, every output dropped; the events fed per topic.
fn feed(engine: &mut Engine, found: &Found, catalog: &Catalog) -> Fed {
    let mut outs = Vec::new();
    let mut fed = Fed::default();
    for (imp, foreign) in in_order(&found.impressions, &found.foreign_impressions) {
        engine.on_impression(imp, &mut outs);
        outs.clear();
        fed.events.impressions += 1;
        fed.foreign.impressions += u64::from(foreign);
    }
    for (play, foreign) in in_order(&found.plays, &found.foreign_plays) {
        let e = catalog.enrich(play.video_id, play.ts);
        engine.on_play_counted_as(play, e.genre, e.is_new_launch, &mut outs);
        outs.clear();
        fed.events.plays += 1;
        fed.foreign.plays += u64::from(foreign);
    }
    fed
}

/// One topic's rows in feeding order, each with whether it came without provenance: the rows
/// with provenance in `_offset` order (an offset archived twice counts once), and the others
/// merged in by event time (by `ts`, then event id), each before the first row with provenance
/// of a later `ts`. A merged row never raises the greatest `ts` past what the next row with
/// provenance raises it to, so it never makes one of those too late; without foreign rows this
/// is the `_offset` order alone.
fn in_order<'a, E: Event>(own: &'a [(i64, E)], foreign: &'a [E]) -> Vec<(&'a E, bool)> {
    let mut own: Vec<_> = own.iter().collect();
    own.sort_by_key(|(o, _)| *o);
    own.dedup_by_key(|(o, _)| *o);
    let mut others: Vec<&E> = foreign.iter().collect();
    others.sort_by(|a, b| (a.ts(), a.id()).cmp(&(b.ts(), b.id())));
    let mut others = others.into_iter().peekable();
    let mut out = Vec::with_capacity(own.len() + foreign.len());
    for (_, e) in own {
        while let Some(x) = others.next_if(|x| x.ts() < e.ts()) {
            out.push((x, true));
        }
        out.push((e, false));
    }
    out.extend(others.map(|x| (x, true)));
    out
}

fn clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use playsource_domain::{Impression, MemberId, Ts, VideoId};

    use super::*;

    fn imp(id: &str, ts: i64) -> Impression<'static> {
        Impression {
            event_id: Cow::Owned(id.to_owned()),
            ts: Ts(ts),
            member_id: MemberId(3),
            video_id: VideoId(7),
            page: Cow::Borrowed("home"),
            row_type: Cow::Borrowed("top_picks"),
            row_index: 2,
            rank: 5,
            country: Cow::Borrowed("BR"),
            device: Cow::Borrowed("tv"),
        }
    }

    fn ids(rows: &[(&Impression<'static>, bool)]) -> Vec<(String, bool)> {
        rows.iter()
            .map(|(i, f)| (i.event_id.to_string(), *f))
            .collect()
    }

    #[test]
    fn without_foreign_rows_the_order_is_the_offsets() {
        // Offsets out of order, one archived twice, a late event (ts 5 after ts 30).
        let own = vec![
            (12, imp("c", 5)),
            (10, imp("a", 20)),
            (11, imp("b", 30)),
            (10, imp("a", 20)),
        ];
        let got = in_order(&own, &[]);
        assert_eq!(
            ids(&got),
            [
                ("a".into(), false),
                ("b".into(), false),
                ("c".into(), false)
            ]
        );
    }

    #[test]
    fn foreign_rows_go_by_event_time_before_the_next_later_row_with_provenance() {
        let own = vec![(1, imp("a", 20)), (2, imp("b", 30)), (3, imp("late", 5))];
        let foreign = vec![
            imp("y", 25),
            imp("x", 25),
            imp("first", 1),
            imp("tie", 30),
            imp("last", 40),
        ];
        let got = in_order(&own, &foreign);
        let want: Vec<(String, bool)> = [
            ("first", true),
            ("a", false),
            ("x", true),
            ("y", true),
            ("b", false),
            ("late", false),
            ("tie", true),
            ("last", true),
        ]
        .iter()
        .map(|(i, f)| ((*i).to_owned(), *f))
        .collect();
        assert_eq!(ids(&got), want);
        // The greatest ts before each row with provenance is what it is without the foreign
        // rows, so none of them becomes too late.
        let mut high = i64::MIN;
        let mut high_own = i64::MIN;
        for (e, f) in &got {
            if !f {
                assert!(high <= high_own.max(e.ts.0), "{}", e.event_id);
                high_own = high_own.max(e.ts.0);
            }
            high = high.max(e.ts.0);
        }
    }
}
