//! Positioning a topic-partition at an offset, and checking that the broker really starts there.
//!
//! Kafka answers a fetch at an offset inside a record batch with the whole batch, and the client
//! drops the records before the offset. Some Kafka-protocol brokers (tansu 0.6) answer it with the
//! *next* batch instead, or with nothing when the offset is inside the last batch, so a unit
//! resuming at a committed offset that falls inside a batch would silently skip events. So every
//! seek is checked: the first message fetched after it must be at or before the offset asked for
//! (earlier messages are already processed and dropped by the unit). When it is later, the unit
//! seeks back further (1, 2, 4, … offsets before, down to the earliest retained offset) and drops
//! that message. A broker that answers a fetch inside its *last* batch with nothing shows the
//! skip only when the next batch arrives (then handled as above); before `--exit-when-idle` calls
//! a partition read to its end, a seek that brought nothing while at or past the high watermark
//! is repeated once at the last message. On a broker that starts where it is asked, this costs at
//! most one re-read message per seek.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// A seek still waiting for its first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeekCheck {
    /// The offset the unit wants to read from.
    pub want: i64,
    /// The offset sought.
    pub sought: i64,
    /// The earliest retained offset (as known to the unit).
    pub low: i64,
    /// Already sought back from the high watermark (see [`SeekCheck::at_end`]).
    probed: bool,
}

impl SeekCheck {
    /// A seek to `want` on a partition whose earliest retained offset is `low`.
    pub fn new(want: i64, low: i64) -> SeekCheck {
        SeekCheck {
            want,
            sought: want.max(low),
            low,
            probed: false,
        }
    }

    /// Judges the first message fetched after the seek, at `offset`: `None` accepts it; `Some`
    /// is the next check when the broker skipped past `want` — seek to its `sought` and drop
    /// the message.
    pub fn first_message(&self, offset: i64) -> Option<SeekCheck> {
        if offset <= self.want || self.sought <= self.low {
            return None;
        }
        let back = (self.want - self.sought).max(1).saturating_mul(2);
        Some(SeekCheck {
            sought: (self.want - back).max(self.low),
            ..*self
        })
    }

    /// True once repeated at the last message: a message is on its way.
    pub fn probed(&self) -> bool {
        self.probed
    }

    /// Nothing came since the seek and the partition's watermarks are `low`..`high`: when
    /// `want` is at or past `high`, a broker that answers a fetch inside its last batch with
    /// nothing may be hiding the batch's rest, so seek to the last message (once). `None`: keep
    /// waiting.
    pub fn at_end(&self, low: i64, high: i64) -> Option<SeekCheck> {
        if self.probed || high <= low || self.want < high || self.sought < high {
            return None;
        }
        Some(SeekCheck {
            sought: (high - 1).max(low),
            probed: true,
            ..*self
        })
    }
}

/// Seeks `topic`/`p` to `offset`, blocking; retries while the partition has no fetch position
/// yet (right after an assignment).
pub fn seek_blocking<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    topic: &str,
    p: i32,
    offset: i64,
) -> Result<(), KafkaError> {
    let mut last = None;
    for attempt in 0..500 {
        match consumer.seek(topic, p, Offset::Offset(offset), Duration::from_secs(5)) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, attempt, "seek not possible yet; retrying");
                last = Some(e);
                if attempt == 10 {
                    // A partition paused before its fetcher learnt a position cannot be sought:
                    // let it start fetching. Whatever it fetches before the seek applies is
                    // discarded by librdkafka, and the unit ignores offsets it has already
                    // processed.
                    let mut one = TopicPartitionList::new();
                    one.add_partition(topic, p);
                    if let Err(e) = consumer.resume(&one) {
                        tracing::warn!(error = %e, partition = p, "cannot resume a partition to position it");
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Err(last.unwrap_or(KafkaError::Seek("no attempt".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_that_starts_where_asked_needs_one_seek() {
        let c = SeekCheck::new(40, 0);
        assert_eq!(c.sought, 40);
        assert_eq!(c.first_message(40), None);
        // Below the earliest retained offset: the earliest.
        assert_eq!(SeekCheck::new(3, 10).sought, 10);
    }

    #[test]
    fn a_silent_seek_at_the_end_goes_to_the_last_message_once() {
        // Batches at 0 and 10..20; the broker reports 11 as its high watermark and returns
        // nothing for a fetch at 13.
        let c = SeekCheck::new(13, 0);
        let c = c.at_end(0, 11).unwrap();
        assert_eq!(c.sought, 10);
        assert_eq!(c.at_end(0, 11), None, "once");
        assert_eq!(c.first_message(10), None);
        // Before the end, or on an empty partition: keep waiting.
        assert_eq!(SeekCheck::new(5, 0).at_end(0, 11), None);
        assert_eq!(SeekCheck::new(7, 7).at_end(7, 7), None);
    }

    #[test]
    fn a_skipped_batch_steps_back_doubling_down_to_the_earliest() {
        // Batches start at 0, 10, 20; the broker answers inside a batch with the next one.
        let batch_after = |o: i64| (o + 9) / 10 * 10;
        let mut c = SeekCheck::new(13, 0);
        let mut seeks = vec![c.sought];
        while let Some(next) = c.first_message(batch_after(c.sought)) {
            c = next;
            seeks.push(c.sought);
        }
        assert_eq!(seeks, [13, 11, 9]);
        assert!(batch_after(c.sought) <= 13);
        // With a later earliest offset the steps stop there, and what comes is accepted.
        let c = SeekCheck::new(13, 12);
        let c = c.first_message(20).unwrap();
        assert_eq!(c.sought, 12);
        assert_eq!(c.first_message(20), None);
    }

    #[test]
    fn a_real_gap_is_accepted_after_one_step_back() {
        // Offset 50 is a transaction marker; 49 is a message.
        let c = SeekCheck::new(50, 0).first_message(51).unwrap();
        assert_eq!(c.sought, 48);
        assert_eq!(c.first_message(48), None);
    }
}
