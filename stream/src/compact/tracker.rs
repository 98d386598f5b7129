//! Which archive hours of the owned partitions wait in the pending area, and which of them are
//! closed (the unit's event time of that topic passed the hour by `allowed_lateness`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use playsource_domain::{Day, PerTopic, Topic, Ts, HOUR_MS};

/// One hour of one topic of a partition: (topic, day, hour).
pub type Hour = (Topic, Day, u32);

/// The hours with pending files, per owned partition.
#[derive(Default)]
pub struct Tracker {
    units: Mutex<BTreeMap<i32, Pending>>,
}

#[derive(Default)]
struct Pending {
    epoch: i64,
    /// Greatest event time archived per topic (from the flushes' offsets).
    high_water: PerTopic<Option<Ts>>,
    hours: BTreeSet<Hour>,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Pending>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes pending hours of partition `p` owned with `epoch` (and its event time per topic).
    pub fn note(&self, p: i32, epoch: i64, high_water: PerTopic<Option<Ts>>, hours: &[Hour]) {
        let mut units = self.lock();
        let u = units.entry(p).or_default();
        if u.epoch != epoch {
            u.epoch = epoch;
        }
        for (k, hw) in high_water.iter() {
            if *hw > u.high_water[k] {
                u.high_water[k] = *hw;
            }
        }
        u.hours.extend(hours.iter().copied());
    }

    /// Whether any hour waits to be compacted.
    pub fn has_work(&self) -> bool {
        self.lock().values().any(|u| !u.hours.is_empty())
    }

    /// Up to `max` hours to compact: closed ones only, or all of them.
    pub(crate) fn due(&self, lateness_ms: i64, all: bool, max: usize) -> Vec<(i32, i64, Hour)> {
        let units = self.lock();
        let mut out = Vec::new();
        for (&p, u) in units.iter() {
            for &(k, day, hour) in &u.hours {
                let end = day.start().0 + i64::from(hour + 1) * HOUR_MS;
                let closed = u.high_water[k].is_some_and(|hw| hw.0 >= end + lateness_ms);
                if all || closed {
                    out.push((p, u.epoch, (k, day, hour)));
                    if out.len() >= max {
                        return out;
                    }
                }
            }
        }
        out
    }

    pub(crate) fn done(&self, p: i32, hour: Hour) {
        if let Some(u) = self.lock().get_mut(&p) {
            u.hours.remove(&hour);
        }
    }

    pub(crate) fn forget(&self, p: i32, epoch: i64) {
        let mut units = self.lock();
        if units.get(&p).is_some_and(|u| u.epoch == epoch) {
            units.remove(&p);
        }
    }
}
