//! Event-time alignment of a unit's two topics (like Flink's watermark alignment and Kafka
//! Streams' `max.task.idle.ms`).
//!
//! Results do not depend on how the two topics interleave (the engine's state depends only on
//! each topic-partition's order), but the work and memory do: while plays run ahead of
//! impressions, each play is first counted provisionally and corrected when its impressions
//! arrive (a retraction in the view and a re-published enriched play); while impressions run
//! ahead, the engine holds them until the plays catch up. So when one topic's event time runs
//! more than `max_drift` ahead of the other's, the unit *holds* it: the topic-partition is paused
//! and what was already fetched of it is dropped; it is read again from the unit's next offset
//! once the other topic has caught up to within the drift.
//!
//! Idle partitions: a topic that brought no message for a while (`idle_after`, like Flink's
//! `withIdleness`) has nothing to catch up with for now, so it holds nothing back until its next
//! message arrives — a topic produced minutes later, or never, cannot stall the other.

use std::time::{Duration, Instant};

use playsource_domain::Ts;

/// The alignment of one unit's two topics (index 0 impressions, 1 plays).
#[derive(Clone, Debug, Default)]
pub struct Alignment {
    max_drift_ms: Option<i64>,
    held: [bool; 2],
    idle: [bool; 2],
    /// When each topic's last message came.
    seen: [Option<Instant>; 2],
}

/// What the consumer must do after a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Pause this topic: it ran too far ahead.
    pub hold: Option<usize>,
    /// Seek this held topic back to the unit's next offset and resume it.
    pub release: Option<usize>,
}

impl Alignment {
    /// Alignment allowing `max_drift` of event time between the topics (`None`: off).
    pub fn new(max_drift: Option<Duration>) -> Alignment {
        Alignment {
            max_drift_ms: max_drift.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ..Alignment::default()
        }
    }

    /// True while topic `k` is held (its messages are dropped; it is read again on release).
    pub fn is_held(&self, k: usize) -> bool {
        self.held[k]
    }

    /// After a live message of topic `k`, with the unit's greatest event time per topic and
    /// which topics it is assigned.
    pub fn on_message(&mut self, k: usize, high: [Option<Ts>; 2], assigned: [bool; 2]) -> Change {
        let Some(drift) = self.max_drift_ms else {
            return Change::default();
        };
        let o = 1 - k;
        self.idle[k] = false;
        self.seen[k] = Some(Instant::now());
        let mut change = Change::default();
        if self.held[o] && !ahead(high[o], high[k], drift) {
            self.held[o] = false;
            change.release = Some(o);
        }
        if !self.held[o] && assigned[o] && !self.idle[o] && ahead(high[k], high[o], drift) {
            self.held[k] = true;
            change.hold = Some(k);
        }
        change
    }

    /// At `now`: when a topic is held and the other brought nothing for `idle_after`, the other
    /// is idle; returns the held topic (release it).
    pub fn release_if_idle(&mut self, now: Instant, idle_after: Duration) -> Option<usize> {
        let o = self.waiting_for()?;
        let quiet = self.seen[o].is_none_or(|t| now.saturating_duration_since(t) >= idle_after);
        if quiet {
            self.on_caught_up(o)
        } else {
            None
        }
    }

    /// Topic `o` has nothing to give for now: it holds nothing back until its next message.
    /// Returns the other topic when that was held (release it).
    pub fn on_caught_up(&mut self, o: usize) -> Option<usize> {
        self.idle[o] = true;
        let k = 1 - o;
        std::mem::take(&mut self.held[k]).then_some(k)
    }

    /// The topic waiting for topic `o` to catch up, if any (check whether `o` is read to its end).
    pub fn waiting_for(&self) -> Option<usize> {
        (0..2).find(|&k| self.held[k]).map(|k| 1 - k)
    }

    /// Forgets holds (the unit seeks both topics itself, e.g. when going live).
    pub fn reset(&mut self) {
        self.held = [false; 2];
        self.idle = [false; 2];
    }
}

/// True when `a` is more than `drift` ms ahead of `b` (a topic that has seen nothing is behind).
fn ahead(a: Option<Ts>, b: Option<Ts>, drift: i64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.0.saturating_sub(b.0) > drift,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const BOTH: [bool; 2] = [true, true];

    fn t(min: i64) -> Option<Ts> {
        Some(Ts(min * MIN))
    }

    fn two_minutes() -> Alignment {
        Alignment::new(Some(Duration::from_secs(120)))
    }

    #[test]
    fn within_the_drift_nothing_is_held() {
        let mut a = two_minutes();
        assert_eq!(a.on_message(1, [t(10), t(12)], BOTH), Change::default());
        assert_eq!(a.on_message(0, [t(14), t(12)], BOTH), Change::default());
    }

    #[test]
    fn a_topic_ahead_is_held_until_the_other_catches_up() {
        let mut a = two_minutes();
        let c = a.on_message(1, [t(10), t(13)], BOTH);
        assert_eq!(c.hold, Some(1));
        assert!(a.is_held(1));
        assert_eq!(a.waiting_for(), Some(0));
        // Impressions move on, still more than two minutes behind: plays stay held.
        assert_eq!(a.on_message(0, [t(10), t(13)], BOTH), Change::default());
        // Within the drift: released.
        let c = a.on_message(0, [t(11), t(13)], BOTH);
        assert_eq!(c.release, Some(1));
        assert!(!a.is_held(1));
    }

    #[test]
    fn a_topic_read_to_its_end_holds_nothing_back() {
        let mut a = two_minutes();
        assert_eq!(a.on_message(0, [t(30), t(1)], BOTH).hold, Some(0));
        assert_eq!(a.on_caught_up(1), Some(0));
        // Idle until its next message: impressions go on however far ahead.
        assert_eq!(a.on_message(0, [t(90), t(1)], BOTH), Change::default());
        // A new play: no longer idle, and far behind, so impressions are held again.
        assert_eq!(a.on_message(1, [t(90), t(2)], BOTH), Change::default());
        assert_eq!(a.on_message(0, [t(91), t(2)], BOTH).hold, Some(0));
    }

    #[test]
    fn a_quiet_topic_is_idle_after_a_while() {
        let mut a = two_minutes();
        assert_eq!(a.on_message(0, [t(30), t(1)], BOTH).hold, Some(0));
        let quiet = Duration::from_secs(1);
        let now = Instant::now();
        // Plays never came: idle at once.
        assert_eq!(a.release_if_idle(now, quiet), Some(0));
        assert_eq!(a.on_message(1, [t(30), t(2)], BOTH), Change::default());
        assert_eq!(a.on_message(0, [t(31), t(2)], BOTH).hold, Some(0));
        // A play just came: not idle yet; a second later it is.
        assert_eq!(a.release_if_idle(Instant::now(), quiet), None);
        assert_eq!(a.release_if_idle(Instant::now() + quiet, quiet), Some(0));
    }

    #[test]
    fn a_topic_that_saw_nothing_is_behind_and_an_unassigned_one_is_ignored() {
        let mut a = two_minutes();
        assert_eq!(a.on_message(1, [None, t(5)], BOTH).hold, Some(1));
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(1, [None, t(5)], [false, true]),
            Change::default()
        );
    }

    #[test]
    fn off_holds_nothing() {
        let mut a = Alignment::new(None);
        assert_eq!(a.on_message(1, [t(0), t(1000)], BOTH), Change::default());
        assert_eq!(a.waiting_for(), None);
    }
}
