//! One view's rows held in memory: dictionary-coded facts per hour, plus pre-aggregated sums
//! ("slices") per hour × view × row for no filter and for every single-filter value. Each slice
//! also keeps its hourly bucket rendered as JSON, so an hourly answer with at most one filter is
//! its labels and copies (the hour sums, sorting and share formatting were most of an uncached
//! answer's time).

use std::collections::{BTreeMap, HashMap};

use playsource_domain::HOUR_MS;
use rustc_hash::FxHashMap;

use crate::params::{Filters, View};
use crate::series_json::{bucket_rest, EMPTY_BUCKET_REST};

/// Interned strings of a part (every dimension shares one dictionary).
#[derive(Default, Debug)]
pub(crate) struct Dict {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    /// Per id, the name as a JSON string literal (filled by [`Dict::seal`]).
    json: Vec<Box<[u8]>>,
    /// Per id, the name's place in byte order (filled by [`Dict::seal`]).
    order: Vec<u32>,
}

impl Dict {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// Computes every name's JSON literal and byte-order rank, once all are interned.
    fn seal(&mut self) {
        self.json = self
            .names
            .iter()
            .map(|n| {
                let mut out = Vec::with_capacity(n.len() + 2);
                crate::series_json::push_json_str(&mut out, n);
                out.into_boxed_slice()
            })
            .collect();
        let mut by_name: Vec<u32> = (0..self.names.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        by_name.sort_unstable_by(|a, b| self.name(*a).cmp(self.name(*b)));
        self.order = vec![0; self.names.len()];
        for (rank, id) in by_name.into_iter().enumerate() {
            if let Some(o) = self.order.get_mut(id as usize) {
                *o = u32::try_from(rank).unwrap_or(u32::MAX);
            }
        }
    }

    /// The string of an id.
    pub(crate) fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    /// The string of an id as a JSON string literal.
    pub(crate) fn json_name(&self, id: u32) -> &[u8] {
        self.json.get(id as usize).map_or(b"\"\"", |s| s)
    }

    /// Where the string of an id comes in byte order among all of them.
    pub(crate) fn order(&self, id: u32) -> u32 {
        self.order.get(id as usize).copied().unwrap_or(u32::MAX)
    }

    fn bytes(&self) -> usize {
        self.names.iter().map(|s| 3 * s.len() + 76).sum()
    }
}

/// One row of an hourly view, dictionary-coded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fact {
    country: u32,
    device: u32,
    sop: u32,
    sod: u32,
    genre: u32,
    new_launch: bool,
    plays: i64,
}

/// Which pre-aggregated sums answer a query with at most one filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SliceKey {
    All,
    Country(u32),
    Device(u32),
    Genre(u32),
    NewLaunch(bool),
    PlayRow(u32),
}

/// One hour's sums for one view and slice.
#[derive(Debug)]
struct Slice {
    /// (row id, plays), plays not zero, in answer order (plays descending, then row type).
    rows: Box<[(u32, i64)]>,
    /// The hour as a bucket of an hourly answer, after its label ([`bucket_rest`]).
    rest: Box<[u8]>,
}

/// Per view: slice key → its sums.
type Slices = FxHashMap<SliceKey, Slice>;

#[derive(Default, Debug)]
struct Hour {
    facts: Box<[Fact]>,
    sop: Slices,
    sod: Slices,
}

/// How a query reads a part: nothing matches, one slice, or a scan of the facts.
pub(crate) enum Selector {
    /// A filter value this part has never seen: every bucket is empty.
    Nothing,
    /// No filter or one filter: pre-aggregated sums.
    Slice(View, SliceKey),
    /// Several filters: every fact of the hour is tested.
    Scan(View, Wanted),
}

/// The dictionary ids several filters ask for.
pub(crate) struct Wanted {
    country: Option<u32>,
    device: Option<u32>,
    genre: Option<u32>,
    new_launch: Option<bool>,
    play_row: Option<u32>,
}

/// The rows of one view (batch or realtime) over a run of hours.
#[derive(Default, Debug)]
pub(crate) struct Part {
    pub(crate) dict: Dict,
    /// Hour index (ms / HOUR_MS) of `hours[0]`.
    base: i64,
    hours: Vec<Hour>,
    rows: usize,
}

/// Collects rows, then builds a [`Part`].
#[derive(Default)]
pub(crate) struct PartBuilder {
    dict: Dict,
    hours: BTreeMap<i64, Vec<Fact>>,
    rows: usize,
}

/// One row as read from Postgres.
pub(crate) struct RawRow<'a> {
    pub hour_ms: i64,
    pub country: &'a str,
    pub device: &'a str,
    pub sop: &'a str,
    pub sod: &'a str,
    pub genre: &'a str,
    pub new_launch: bool,
    pub plays: i64,
}

impl PartBuilder {
    /// Adds one row.
    pub(crate) fn push(&mut self, r: &RawRow<'_>) {
        let fact = Fact {
            country: self.dict.intern(r.country),
            device: self.dict.intern(r.device),
            sop: self.dict.intern(r.sop),
            sod: self.dict.intern(r.sod),
            genre: self.dict.intern(r.genre),
            new_launch: r.new_launch,
            plays: r.plays,
        };
        self.hours
            .entry(r.hour_ms.div_euclid(HOUR_MS))
            .or_default()
            .push(fact);
        self.rows += 1;
    }

    /// Builds the part: dense hours and their slices.
    pub(crate) fn build(mut self) -> Part {
        self.dict.seal();
        let (Some(&first), Some(&last)) = (self.hours.keys().next(), self.hours.keys().next_back())
        else {
            return Part {
                dict: self.dict,
                ..Part::default()
            };
        };
        let mut hours: Vec<Hour> = (first..=last).map(|_| Hour::default()).collect();
        for (h, facts) in self.hours {
            let Some(slot) = usize::try_from(h - first)
                .ok()
                .and_then(|i| hours.get_mut(i))
            else {
                continue;
            };
            *slot = hour_of(facts, &self.dict);
        }
        Part {
            dict: self.dict,
            base: first,
            hours,
            rows: self.rows,
        }
    }
}

fn add(map: &mut HashMap<SliceKey, HashMap<u32, i64>>, key: SliceKey, row: u32, plays: i64) {
    let e = map.entry(key).or_default().entry(row).or_insert(0);
    *e = e.wrapping_add(plays);
}

fn hour_of(facts: Vec<Fact>, dict: &Dict) -> Hour {
    let mut sop: HashMap<SliceKey, HashMap<u32, i64>> = HashMap::new();
    let mut sod: HashMap<SliceKey, HashMap<u32, i64>> = HashMap::new();
    for f in &facts {
        for (map, row) in [(&mut sop, f.sop), (&mut sod, f.sod)] {
            add(map, SliceKey::All, row, f.plays);
            add(map, SliceKey::Country(f.country), row, f.plays);
            add(map, SliceKey::Device(f.device), row, f.plays);
            add(map, SliceKey::Genre(f.genre), row, f.plays);
            add(map, SliceKey::NewLaunch(f.new_launch), row, f.plays);
        }
        add(&mut sod, SliceKey::PlayRow(f.sop), f.sod, f.plays);
    }
    let freeze = |m: HashMap<SliceKey, HashMap<u32, i64>>| -> Slices {
        m.into_iter()
            .map(|(k, rows)| {
                let mut rows: Vec<(u32, i64)> = rows.into_iter().collect();
                let total = answer_rows(&mut rows, dict);
                let rest = bucket_rest(total, rows.iter().map(|&(r, p)| (dict.json_name(r), p)));
                let rows = rows.into_boxed_slice();
                (k, Slice { rows, rest })
            })
            .collect()
    };
    Hour {
        facts: facts.into_boxed_slice(),
        sop: freeze(sop),
        sod: freeze(sod),
    }
}

impl Part {
    /// Rows held.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// An estimate of the memory held, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        let per_slice = std::mem::size_of::<SliceKey>() + 16 + 24;
        self.dict.bytes()
            + self
                .hours
                .iter()
                .map(|h| {
                    std::mem::size_of::<Hour>()
                        + h.facts.len() * std::mem::size_of::<Fact>()
                        + (h.sop.len() + h.sod.len()) * per_slice
                        + h.sop
                            .values()
                            .chain(h.sod.values())
                            .map(|v| v.rows.len() * 16 + v.rest.len() + 16)
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// How to read this part for a view and filters.
    pub(crate) fn selector(&self, view: View, f: &Filters) -> Selector {
        let id = |v: &Option<String>| -> Result<Option<u32>, ()> {
            match v {
                None => Ok(None),
                Some(s) => self.dict.get(s).map(Some).ok_or(()),
            }
        };
        let (Ok(country), Ok(device), Ok(genre), Ok(play_row)) =
            (id(&f.country), id(&f.device), id(&f.genre), id(&f.play_row))
        else {
            return Selector::Nothing;
        };
        let w = Wanted {
            country,
            device,
            genre,
            new_launch: f.new_launch,
            play_row,
        };
        let given = [
            w.country.is_some(),
            w.device.is_some(),
            w.genre.is_some(),
            w.new_launch.is_some(),
            w.play_row.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if given > 1 {
            return Selector::Scan(view, w);
        }
        let key = if let Some(c) = w.country {
            SliceKey::Country(c)
        } else if let Some(d) = w.device {
            SliceKey::Device(d)
        } else if let Some(g) = w.genre {
            SliceKey::Genre(g)
        } else if let Some(n) = w.new_launch {
            SliceKey::NewLaunch(n)
        } else if let Some(r) = w.play_row {
            SliceKey::PlayRow(r)
        } else {
            SliceKey::All
        };
        Selector::Slice(view, key)
    }

    fn hour(&self, hour_idx: i64) -> Option<&Hour> {
        usize::try_from(hour_idx - self.base)
            .ok()
            .and_then(|i| self.hours.get(i))
    }

    /// Hour `hour_idx` (ms / HOUR_MS) as an hourly bucket after its label, when a slice answers
    /// it (`None` for several filters: sum it with [`Part::add_hour`]).
    pub(crate) fn hour_rest(&self, hour_idx: i64, sel: &Selector) -> Option<&[u8]> {
        match sel {
            Selector::Nothing => Some(EMPTY_BUCKET_REST),
            Selector::Slice(view, key) => Some(
                self.hour(hour_idx)
                    .and_then(|hour| match view {
                        View::SourceOfPlay => hour.sop.get(key),
                        View::SourceOfDiscovery => hour.sod.get(key),
                    })
                    .map_or(EMPTY_BUCKET_REST, |slice| &slice.rest),
            ),
            Selector::Scan(..) => None,
        }
    }

    /// Adds the plays per row of hour `hour_idx` (ms / HOUR_MS) to `acc`.
    pub(crate) fn add_hour(&self, hour_idx: i64, sel: &Selector, acc: &mut Vec<(u32, i64)>) {
        let Some(hour) = self.hour(hour_idx) else {
            return;
        };
        match sel {
            Selector::Nothing => {}
            Selector::Slice(view, key) => {
                let slices = match view {
                    View::SourceOfPlay => &hour.sop,
                    View::SourceOfDiscovery => &hour.sod,
                };
                if let Some(slice) = slices.get(key) {
                    for &(row, plays) in slice.rows.iter() {
                        accumulate(acc, row, plays);
                    }
                }
            }
            Selector::Scan(view, w) => {
                for f in hour.facts.iter() {
                    if w.country.is_some_and(|c| c != f.country)
                        || w.device.is_some_and(|d| d != f.device)
                        || w.genre.is_some_and(|g| g != f.genre)
                        || w.new_launch.is_some_and(|n| n != f.new_launch)
                        || w.play_row.is_some_and(|r| r != f.sop)
                    {
                        continue;
                    }
                    let row = match view {
                        View::SourceOfPlay => f.sop,
                        View::SourceOfDiscovery => f.sod,
                    };
                    accumulate(acc, row, f.plays);
                }
            }
        }
    }
}

/// Makes summed rows a bucket's rows, as `model::rows_with_shares` gives them: rows summing to
/// zero dropped, plays descending, then row type in byte order. Returns their total.
pub(crate) fn answer_rows(rows: &mut Vec<(u32, i64)>, dict: &Dict) -> i64 {
    rows.retain(|(_, plays)| *plays != 0);
    rows.sort_unstable_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| dict.order(a.0).cmp(&dict.order(b.0)))
    });
    rows.iter().fold(0i64, |t, (_, p)| t.wrapping_add(*p))
}

fn accumulate(acc: &mut Vec<(u32, i64)>, row: u32, plays: i64) {
    match acc.iter_mut().find(|(r, _)| *r == row) {
        Some((_, p)) => *p = p.wrapping_add(plays),
        None => acc.push((row, plays)),
    }
}
