//! Reading an event-time range of the archive back in event-time order (`playsource replay`).
//!
//! [`plan`] finds the Hive partitions of one or both topics that overlap a half-open range
//! `[from, to)`: `date=YYYY-MM-DD/hour=HH` folders give one hour each; files directly in a
//! `date=` folder, or in a sub-folder that is not `hour=HH`, cover their whole day. Listing goes
//! through [`list_files`], so hidden and `_`-prefixed files and folders (`_staging`, `_SUCCESS`)
//! are skipped exactly as the batch layer skips them.
//!
//! [`EventTimeMerge`] then reads the partitions in order of their start, both topics
//! interleaved, through the batch layer's readers ([`ImpressionReader`], [`PlayReader`]: same
//! decoding, same validation, invalid rows counted in [`ReadStats`]), and hands out the events
//! of the range re-encoded as the contract's JSON, in `(ts, topic)` order (impressions before
//! plays at the same instant; file and row order after that). Memory holds about one
//! partition's events: an event is handed out once no partition left to read can hold an
//! earlier one. A row filed in a partition later than its own `ts` (a misplaced row, which the
//! writers of docs/reference.md §5 never produce) is still handed out, late, and counted in
//! [`EventTimeMerge::out_of_order`].

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};

use playsource_domain::{Day, MemberId, PerTopic, Ts, HOUR_MS};

use crate::error::Error;
use crate::layout::{date_segment, parse_date_segment, parse_hour_segment, ArchiveLayout};
use crate::read::{list_files, ImpressionReader, PlayReader, ReadStats};
use crate::store::ArchiveStore;

/// One of the two input topics (impressions sort first: at the same instant an impression is
/// handed out before a play).
pub use playsource_domain::Topic;

/// The files of one partition of one topic and the event-time window the layout gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub topic: Topic,
    /// `[hour, hour + 1 h)` for `hour=HH` folders, the whole UTC day otherwise.
    pub window: Range<Ts>,
    /// The data files, sorted by path.
    pub files: Vec<PathBuf>,
}

/// One archived event, re-encoded for Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayEvent {
    pub topic: Topic,
    pub ts: Ts,
    /// The member (the Kafka key is its decimal string).
    pub member_id: MemberId,
    /// The contract's JSON encoding (the same bytes `playsource gen` produces for the event).
    pub json: String,
}

impl ReplayEvent {
    /// The Kafka key: the member id as a decimal string.
    pub fn key(&self) -> String {
        self.member_id.0.to_string()
    }
}

/// The partitions of `topics` (role and folder name, i.e. the topic's name) under `layout`
/// whose window overlaps `range`, sorted by window start, then end, then topic. A missing topic
/// folder has no partitions.
pub fn plan(
    layout: &ArchiveLayout,
    topics: &[(Topic, &str)],
    range: &Range<Ts>,
) -> Result<Vec<Partition>, Error> {
    let mut out = Vec::new();
    for &(topic, dir) in topics {
        for day in days_in(&layout.topic_dir(dir), range)? {
            let day_dir = layout.day_dir(dir, day);
            let mut windows: BTreeMap<(Ts, Ts), Vec<PathBuf>> = BTreeMap::new();
            for file in list_files(layout, dir, day..=day)? {
                let w = window_of(&day_dir, &file, day);
                if w.start < range.end && range.start < w.end {
                    windows.entry((w.start, w.end)).or_default().push(file);
                }
            }
            out.extend(windows.into_iter().map(|((start, end), files)| Partition {
                topic,
                window: start..end,
                files,
            }));
        }
    }
    out.sort_by(|a, b| {
        (a.window.start, a.window.end, a.topic).cmp(&(b.window.start, b.window.end, b.topic))
    });
    Ok(out)
}

/// Like [`plan`], for an archive that may be an object store: the partitions of `topics` whose
/// window overlaps `range`, with files relative to the store's root (read them with
/// [`EventTimeMerge::in_store`]). Looks only at the days the range covers (one listing each).
pub fn plan_in(
    store: &ArchiveStore,
    topics: &[(Topic, &str)],
    range: &Range<Ts>,
) -> Result<Vec<Partition>, Error> {
    let mut out = Vec::new();
    if range.start >= range.end {
        return Ok(out);
    }
    let (first, last) = (range.start.day(), Ts(range.end.0 - 1).day());
    for &(topic, dir) in topics {
        let mut day = first;
        while day <= last {
            let day_dir = Path::new(dir).join(date_segment(day));
            let mut windows: BTreeMap<(Ts, Ts), Vec<PathBuf>> = BTreeMap::new();
            for rel in store.list_data_files(dir, day..=day)? {
                let file = PathBuf::from(rel);
                let w = window_of(&day_dir, &file, day);
                if w.start < range.end && range.start < w.end {
                    windows.entry((w.start, w.end)).or_default().push(file);
                }
            }
            out.extend(windows.into_iter().map(|((start, end), files)| Partition {
                topic,
                window: start..end,
                files,
            }));
            day = day.plus(1);
        }
    }
    out.sort_by(|a, b| {
        (a.window.start, a.window.end, a.topic).cmp(&(b.window.start, b.window.end, b.topic))
    });
    Ok(out)
}

/// The days of the `date=` folders under `topic_dir` that overlap `range`, ascending.
fn days_in(topic_dir: &Path, range: &Range<Ts>) -> Result<Vec<Day>, Error> {
    let io = |cause| Error::Io {
        action: "list the archive folder",
        path: topic_dir.to_path_buf(),
        cause,
    };
    let entries = match std::fs::read_dir(topic_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut days = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let Some(day) = entry.file_name().to_str().and_then(parse_date_segment) else {
            continue;
        };
        if day.start() < range.end && range.start < day.plus(1).start() {
            days.push(day);
        }
    }
    days.sort();
    days.dedup();
    Ok(days)
}

/// The window of a file of `day`: its `hour=HH` folder's hour, else the whole day.
fn window_of(day_dir: &Path, file: &Path, day: Day) -> Range<Ts> {
    let hour = file
        .strip_prefix(day_dir)
        .ok()
        .and_then(|rel| {
            let mut parts = rel.components();
            let first = parts.next()?;
            // A file directly in the day folder has no hour.
            parts.next()?;
            first.as_os_str().to_str()
        })
        .and_then(parse_hour_segment);
    match hour {
        Some(h) => {
            let start = Ts(day.start().0 + i64::from(h) * HOUR_MS);
            start..Ts(start.0 + HOUR_MS)
        }
        None => day.start()..day.plus(1).start(),
    }
}

/// Reads planned partitions and hands out the events of a range in event-time order, a chunk
/// (about one partition's worth) at a time. Iterate it, or call [`EventTimeMerge::next_chunk`].
#[derive(Debug)]
pub struct EventTimeMerge {
    range: Range<Ts>,
    pending: VecDeque<Partition>,
    /// Events read but not handed out yet, with their read sequence number (the tie-break).
    buffer: Vec<(ReplayEvent, u64)>,
    seq: u64,
    latest: Option<Ts>,
    out_of_order: u64,
    stats: PerTopic<ReadStats>,
    files: u64,
    /// Where relative file paths are read from ([`EventTimeMerge::in_store`]).
    store: Option<ArchiveStore>,
}

impl EventTimeMerge {
    /// A merge of `partitions` (as [`plan`] gives them; sorted again here) over `range`.
    pub fn new(mut partitions: Vec<Partition>, range: Range<Ts>) -> EventTimeMerge {
        partitions.sort_by(|a, b| {
            (a.window.start, a.window.end, a.topic).cmp(&(b.window.start, b.window.end, b.topic))
        });
        EventTimeMerge {
            range,
            pending: partitions.into(),
            buffer: Vec::new(),
            seq: 0,
            latest: None,
            out_of_order: 0,
            stats: Default::default(),
            files: 0,
            store: None,
        }
    }

    /// A merge of partitions planned by [`plan_in`] (files relative to `store`'s root).
    pub fn in_store(
        store: ArchiveStore,
        partitions: Vec<Partition>,
        range: Range<Ts>,
    ) -> EventTimeMerge {
        EventTimeMerge {
            store: Some(store),
            ..EventTimeMerge::new(partitions, range)
        }
    }

    /// The next events in event-time order (never an empty chunk), or `None` once everything was
    /// handed out. A file that cannot be read is an error naming it; the events handed out
    /// before it are all earlier than any event not handed out yet.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<ReplayEvent>>, Error> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                self.read(&p)?;
            } else if self.buffer.is_empty() {
                return Ok(None);
            }
            // No partition left starts before `bound`, so nothing earlier can still come.
            let bound = self
                .pending
                .front()
                .map_or(Ts(i64::MAX), |p| p.window.start);
            self.buffer
                .sort_unstable_by_key(|(e, seq)| (e.ts, e.topic, *seq));
            let n = self.buffer.partition_point(|(e, _)| e.ts < bound);
            if n == 0 {
                continue;
            }
            let chunk: Vec<ReplayEvent> = self.buffer.drain(..n).map(|(e, _)| e).collect();
            for e in &chunk {
                match self.latest {
                    Some(l) if e.ts < l => self.out_of_order += 1,
                    _ => self.latest = Some(e.ts),
                }
            }
            return Ok(Some(chunk));
        }
    }

    fn read(&mut self, p: &Partition) -> Result<(), Error> {
        let range = self.range.clone();
        let buffer = &mut self.buffer;
        let seq = &mut self.seq;
        let stats = &mut self.stats[p.topic];
        let mut push = |topic, ts, member_id, json| {
            buffer.push((
                ReplayEvent {
                    topic,
                    ts,
                    member_id,
                    json,
                },
                *seq,
            ));
            *seq += 1;
        };
        for path in &p.files {
            self.files += 1;
            match p.topic {
                Topic::Impressions => {
                    let reader = match &self.store {
                        Some(store) => ImpressionReader::open_in(store, &path.to_string_lossy())?,
                        None => ImpressionReader::open(path)?,
                    };
                    for batch in reader {
                        batch?.for_each(Some(&range), stats, |_, i| {
                            push(p.topic, i.ts, i.member_id, i.to_json());
                        });
                    }
                }
                Topic::Plays => {
                    let reader = match &self.store {
                        Some(store) => PlayReader::open_in(store, &path.to_string_lossy())?,
                        None => PlayReader::open(path)?,
                    };
                    for batch in reader {
                        batch?.for_each(Some(&range), stats, |_, e| {
                            push(p.topic, e.ts, e.member_id, e.to_json());
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// What reading `topic`'s files gave so far (rows, in range, invalid rows skipped).
    pub fn stats(&self, topic: Topic) -> &ReadStats {
        &self.stats[topic]
    }

    /// Events handed out after an event with a later `ts` (rows filed in a later partition
    /// than their own `ts` gives).
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Files read so far.
    pub fn files_read(&self) -> u64 {
        self.files
    }

    /// Partitions not read yet.
    pub fn partitions_left(&self) -> usize {
        self.pending.len()
    }
}

impl Iterator for EventTimeMerge {
    type Item = Result<Vec<ReplayEvent>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}
