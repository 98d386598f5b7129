//! Event-time alignment of a unit's two topics (like Flink's watermark alignment and Kafka
//! Streams' `max.task.idle.ms`).
//!
//! Results do not depend on how the two topics interleave (the engine's state depends only on
//! each topic-partition's order), but the work and memory do: while plays run ahead of
//! impressions, each play is first counted provisionally and corrected when its impressions
//! arrive (a retraction in the view and a re-published enriched play); while impressions run
//! ahead, the engine holds them until the plays catch up. So when one topic's event time runs
//! more than `max_drift` ahead of the other's, the unit *holds* it: its messages are kept in
//! memory, in order and unprocessed, and processed once the other topic has caught up to within
//! the drift. Nothing is sought or fetched again for that. Only when the kept messages of all
//! units pass the process's budget (`--align-buffer-mb`) is the held topic-partition also paused
//! at the broker; what was fetched of it past the kept ones is dropped and, once the kept ones
//! are processed, it is read again from the unit's next offset (a checked seek, `seek.rs`).
//!
//! Idle partitions: a topic that brought no message for a while (`idle_after`, like Flink's
//! `withIdleness`) has nothing to catch up with for now, so it holds nothing back until its next
//! message arrives — a topic produced minutes later, or never, cannot stall the other.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use playsource_domain::{PerTopic, Topic, Ts};

/// The alignment of one unit's two topics.
#[derive(Clone, Debug, Default)]
pub struct Alignment {
    max_drift_ms: Option<i64>,
    held: PerTopic<bool>,
    idle: PerTopic<bool>,
    /// When each topic's last message came.
    seen: PerTopic<Option<Instant>>,
    /// Messages of a held topic, kept until it is released.
    kept: PerTopic<Kept>,
}

/// The messages kept of one held topic, in offset order.
#[derive(Clone, Debug, Default)]
struct Kept {
    messages: VecDeque<KeptMessage>,
    bytes: usize,
    /// Paused at the broker (over the budget): later messages are dropped and read again.
    paused: bool,
}

/// A message of a held topic, kept unprocessed.
#[derive(Clone, Debug)]
pub struct KeptMessage {
    pub offset: i64,
    /// The Kafka message timestamp, Unix ms.
    pub timestamp: Option<i64>,
    pub key: Option<Box<[u8]>>,
    pub payload: Option<Box<[u8]>>,
}

impl KeptMessage {
    /// Memory it takes, allocator overhead estimated.
    fn bytes(&self) -> usize {
        let boxed = |b: &Option<Box<[u8]>>| b.as_ref().map_or(0, |b| b.len() + 16);
        std::mem::size_of::<KeptMessage>() + boxed(&self.key) + boxed(&self.payload)
    }
}

/// What the consumer must do after a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Keep this topic's messages from now on: it ran too far ahead.
    pub hold: Option<Topic>,
    /// Process this held topic's kept messages and go on with it.
    pub release: Option<Topic>,
}

impl Alignment {
    /// Alignment allowing `max_drift` of event time between the topics (`None`: off).
    pub fn new(max_drift: Option<Duration>) -> Alignment {
        Alignment {
            max_drift_ms: max_drift.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ..Alignment::default()
        }
    }

    /// True while topic `k` is held.
    pub fn is_held(&self, k: Topic) -> bool {
        self.held[k]
    }

    /// True while messages of topic `k` must be kept rather than processed: it is held, or
    /// messages kept earlier are still to be processed first.
    pub fn must_keep(&self, k: Topic) -> bool {
        self.held[k] || self.kept[k].paused || !self.kept[k].messages.is_empty()
    }

    /// Keeps a message of topic `k` at `offset` (the unit's next offset being `next`); false
    /// when it is not kept: processed already, kept already (fetched again after a seek), or
    /// fetched after the topic was paused (read again once the kept ones are processed).
    pub fn keep(
        &mut self,
        k: Topic,
        next: i64,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> bool {
        let kept = &mut self.kept[k];
        let after = kept.messages.back().map_or(next, |m| m.offset + 1);
        if kept.paused || offset < after {
            return false;
        }
        let m = KeptMessage {
            offset,
            timestamp,
            key: key.map(Box::from),
            payload: payload.map(Box::from),
        };
        kept.bytes += m.bytes();
        kept.messages.push_back(m);
        true
    }

    /// Bytes of the messages kept.
    pub fn kept_bytes(&self) -> usize {
        self.kept.values().map(|k| k.bytes).sum()
    }

    /// Whether topic `k` is paused at the broker (see [`Alignment::pause`]).
    pub fn is_paused(&self, k: Topic) -> bool {
        self.kept[k].paused
    }

    /// Marks topic `k` paused at the broker (the kept messages passed the budget).
    pub fn pause(&mut self, k: Topic) {
        self.kept[k].paused = true;
    }

    /// The next kept message of topic `k` to process, unless it is held (again).
    pub fn next_kept(&mut self, k: Topic) -> Option<KeptMessage> {
        if self.held[k] {
            return None;
        }
        let kept = &mut self.kept[k];
        let m = kept.messages.pop_front()?;
        kept.bytes -= m.bytes();
        Some(m)
    }

    /// True once topic `k`, paused at the broker, is released and its kept messages are all
    /// processed: read it again from the unit's next offset and resume it (clears the pause).
    pub fn take_resume(&mut self, k: Topic) -> bool {
        let kept = &mut self.kept[k];
        if self.held[k] || !kept.paused || !kept.messages.is_empty() {
            return false;
        }
        kept.paused = false;
        true
    }

    /// After a live message of topic `k`, with the unit's greatest event time per topic and
    /// which topics it is assigned.
    pub fn on_message(
        &mut self,
        k: Topic,
        high: PerTopic<Option<Ts>>,
        assigned: PerTopic<bool>,
    ) -> Change {
        let Some(drift) = self.max_drift_ms else {
            return Change::default();
        };
        let o = k.other();
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
    pub fn release_if_idle(&mut self, now: Instant, idle_after: Duration) -> Option<Topic> {
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
    pub fn on_caught_up(&mut self, o: Topic) -> Option<Topic> {
        self.idle[o] = true;
        let k = o.other();
        std::mem::take(&mut self.held[k]).then_some(k)
    }

    /// The topic waiting for topic `o` to catch up, if any (check whether `o` is read to its end).
    pub fn waiting_for(&self) -> Option<Topic> {
        self.held.topics().next().map(Topic::other)
    }

    /// Forgets holds and kept messages (the unit seeks both topics itself, e.g. when going
    /// live).
    pub fn reset(&mut self) {
        self.held = PerTopic::default();
        self.idle = PerTopic::default();
        self.kept = PerTopic::default();
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
    const BOTH: PerTopic<bool> = PerTopic::new(true, true);
    const I: Topic = Topic::Impressions;
    const P: Topic = Topic::Plays;

    fn t(min: i64) -> Option<Ts> {
        Some(Ts(min * MIN))
    }

    fn two_minutes() -> Alignment {
        Alignment::new(Some(Duration::from_secs(120)))
    }

    #[test]
    fn within_the_drift_nothing_is_held() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(P, PerTopic::new(t(10), t(12)), BOTH),
            Change::default()
        );
        assert_eq!(
            a.on_message(I, PerTopic::new(t(14), t(12)), BOTH),
            Change::default()
        );
    }

    #[test]
    fn a_topic_ahead_is_held_until_the_other_catches_up() {
        let mut a = two_minutes();
        let c = a.on_message(P, PerTopic::new(t(10), t(13)), BOTH);
        assert_eq!(c.hold, Some(P));
        assert!(a.is_held(P));
        assert_eq!(a.waiting_for(), Some(I));
        // Impressions move on, still more than two minutes behind: plays stay held.
        assert_eq!(
            a.on_message(I, PerTopic::new(t(10), t(13)), BOTH),
            Change::default()
        );
        // Within the drift: released.
        let c = a.on_message(I, PerTopic::new(t(11), t(13)), BOTH);
        assert_eq!(c.release, Some(P));
        assert!(!a.is_held(P));
    }

    #[test]
    fn a_topic_read_to_its_end_holds_nothing_back() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(I, PerTopic::new(t(30), t(1)), BOTH).hold,
            Some(I)
        );
        assert_eq!(a.on_caught_up(P), Some(I));
        // Idle until its next message: impressions go on however far ahead.
        assert_eq!(
            a.on_message(I, PerTopic::new(t(90), t(1)), BOTH),
            Change::default()
        );
        // A new play: no longer idle, and far behind, so impressions are held again.
        assert_eq!(
            a.on_message(P, PerTopic::new(t(90), t(2)), BOTH),
            Change::default()
        );
        assert_eq!(
            a.on_message(I, PerTopic::new(t(91), t(2)), BOTH).hold,
            Some(I)
        );
    }

    #[test]
    fn a_quiet_topic_is_idle_after_a_while() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(I, PerTopic::new(t(30), t(1)), BOTH).hold,
            Some(I)
        );
        let quiet = Duration::from_secs(1);
        let now = Instant::now();
        // Plays never came: idle at once.
        assert_eq!(a.release_if_idle(now, quiet), Some(I));
        assert_eq!(
            a.on_message(P, PerTopic::new(t(30), t(2)), BOTH),
            Change::default()
        );
        assert_eq!(
            a.on_message(I, PerTopic::new(t(31), t(2)), BOTH).hold,
            Some(I)
        );
        // A play just came: not idle yet; a second later it is.
        assert_eq!(a.release_if_idle(Instant::now(), quiet), None);
        assert_eq!(a.release_if_idle(Instant::now() + quiet, quiet), Some(I));
    }

    #[test]
    fn a_topic_that_saw_nothing_is_behind_and_an_unassigned_one_is_ignored() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(P, PerTopic::new(None, t(5)), BOTH).hold,
            Some(P)
        );
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(P, PerTopic::new(None, t(5)), PerTopic::new(false, true)),
            Change::default()
        );
    }

    #[test]
    fn kept_messages_come_back_in_order_once_released_and_never_twice() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(I, PerTopic::new(t(30), t(1)), BOTH).hold,
            Some(I)
        );
        assert!(a.must_keep(I) && !a.must_keep(P));
        assert!(
            !a.keep(I, 10, 9, None, None, Some(b"old")),
            "processed already"
        );
        assert!(a.keep(I, 10, 10, None, Some(b"k"), Some(b"a")));
        assert!(a.keep(I, 10, 12, None, None, Some(b"b")));
        assert!(
            !a.keep(I, 10, 11, None, None, Some(b"again")),
            "fetched again after a seek"
        );
        assert!(a.kept_bytes() > 2);
        assert_eq!(a.next_kept(I).map(|m| m.offset), None, "held");
        assert_eq!(
            a.on_message(P, PerTopic::new(t(30), t(29)), BOTH).release,
            Some(I)
        );
        assert!(a.must_keep(I), "kept ones go first");
        let m = a.next_kept(I).unwrap();
        assert_eq!(
            (m.offset, m.key.as_deref(), m.payload.as_deref()),
            (10, Some(&b"k"[..]), Some(&b"a"[..]))
        );
        assert_eq!(a.next_kept(I).map(|m| m.offset), Some(12));
        assert_eq!(a.next_kept(I).map(|m| m.offset), None);
        assert_eq!(a.kept_bytes(), 0);
        assert!(!a.must_keep(I));
        assert!(!a.take_resume(I), "never paused");
    }

    #[test]
    fn a_paused_topic_drops_later_messages_and_resumes_once_its_kept_ones_are_done() {
        let mut a = two_minutes();
        assert_eq!(
            a.on_message(I, PerTopic::new(t(30), t(1)), BOTH).hold,
            Some(I)
        );
        assert!(a.keep(I, 0, 0, None, None, Some(b"a")));
        a.pause(I);
        assert!(
            !a.keep(I, 0, 1, None, None, Some(b"b")),
            "read again after the resume"
        );
        assert!(!a.take_resume(I), "still held");
        assert_eq!(a.on_caught_up(P), Some(I));
        assert!(!a.take_resume(I), "a kept message is still to be processed");
        assert_eq!(a.next_kept(I).map(|m| m.offset), Some(0));
        assert!(a.must_keep(I), "paused until resumed");
        assert!(a.take_resume(I));
        assert!(!a.take_resume(I), "once");
        assert!(!a.must_keep(I));
    }

    #[test]
    fn off_holds_nothing() {
        let mut a = Alignment::new(None);
        assert_eq!(
            a.on_message(P, PerTopic::new(t(0), t(1000)), BOTH),
            Change::default()
        );
        assert_eq!(a.waiting_for(), None);
    }
}
