//! Positioning a topic-partition at an offset, and checking that the broker really starts there:
//! a broker quirk kept at the edge. The consumer loop calls three entry points and knows nothing
//! of step-backs: [`seek_and_resume`] (seek where a unit starts reading), [`check_first`] (judge
//! each message against the seek before it) and [`probe_at_end`] (before `--exit-when-idle`
//! calls a partition read to its end). A unit only stores its pending checks ([`Seeks`]).
//!
//! **Why** (tansu 0.6):
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
//! most one re-read message per seek. Each step back is counted in
//! `playsource_stream_seek_backs_total{topic}`.

use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;
use playsource_domain::{PerTopic, Topic};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::consumer::context::StreamKafka;
use crate::error::Error;

/// A unit's seeks whose first message is still to be checked, per topic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seeks(PerTopic<Option<SeekCheck>>);

impl Seeks {
    /// True while a seek at the end was repeated at the last message (a message is on its way).
    pub fn probing(&self) -> bool {
        self.0.values().flatten().any(SeekCheck::probed)
    }

    /// Records the seeks [`seek_and_resume`] started (topics it did not seek keep theirs).
    pub fn record(&mut self, started: Seeks) {
        for (k, check) in started.0.iter() {
            if check.is_some() {
                self.0[k] = *check;
            }
        }
    }
}

/// Seeks each topic-partition of partition `p` that `at` names to its offset (or to the earliest
/// retained offset `low` when that is later) and resumes them, on a blocking thread; returns the
/// checks to [`Seeks::record`] in the unit.
pub(crate) async fn seek_and_resume(
    consumer: Arc<StreamKafka>,
    topics: &PerTopic<String>,
    p: i32,
    at: PerTopic<Option<i64>>,
    low: PerTopic<i64>,
) -> Result<Seeks, Error> {
    let checks = at.map_with(|k, at| at.map(|want| SeekCheck::new(want, low[k])));
    let topics = topics.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Error> {
        let mut tpl = TopicPartitionList::new();
        for (k, check) in checks.iter() {
            let Some(check) = check else {
                continue;
            };
            seek_blocking(consumer.as_ref(), &topics[k], p, check.sought)
                .map_err(Error::kafka("seek to the committed offset"))?;
            tpl.add_partition(&topics[k], p);
        }
        consumer
            .resume(&tpl)
            .map_err(Error::kafka("resume a partition"))
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    Ok(Seeks(checks))
}

/// Judges a message of topic `k` (named `topic`) of partition `p` at `offset` against the seek
/// before it, if one is still to be checked. `Ok(true)`: the broker started after the offset
/// asked for; the topic-partition was sought back further (counted in `seek_backs`) and the
/// message must be dropped.
pub(crate) async fn check_first(
    consumer: &Arc<StreamKafka>,
    topic: &str,
    p: i32,
    k: Topic,
    offset: i64,
    seeks: &mut Seeks,
    seek_backs: &Counter,
) -> Result<bool, Error> {
    let Some(check) = seeks.0[k].take() else {
        return Ok(false);
    };
    let Some(again) = check.first_message(offset) else {
        return Ok(false);
    };
    seek_back(consumer, topic, p, again, seek_backs).await?;
    seeks.0[k] = Some(again);
    Ok(true)
}

/// Before a topic-partition is called read to its end (`--exit-when-idle`): nothing came since
/// the seek of topic `k` and its watermarks are `low`..`high`. When a broker may be hiding the
/// rest of its last batch, seeks to the last message (once). `Ok(true)`: sought; wait for it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn probe_at_end(
    consumer: &Arc<StreamKafka>,
    topic: &str,
    p: i32,
    k: Topic,
    low: i64,
    high: i64,
    seeks: &mut Seeks,
    seek_backs: &Counter,
) -> Result<bool, Error> {
    let Some(again) = seeks.0[k].and_then(|c| c.at_end(low, high)) else {
        return Ok(false);
    };
    seek_back(consumer, topic, p, again, seek_backs).await?;
    seeks.0[k] = Some(again);
    Ok(true)
}

/// The broker skipped past where the unit asked to start: seek back further.
async fn seek_back(
    consumer: &Arc<StreamKafka>,
    topic: &str,
    p: i32,
    check: SeekCheck,
    seek_backs: &Counter,
) -> Result<(), Error> {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    seek_backs.increment(1);
    tracing::debug!(topic = %topic, partition = p, want = check.want, sought = check.sought,
        "the broker started after the offset asked for; seeking back");
    tokio::task::spawn_blocking(move || seek_blocking(consumer.as_ref(), &topic, p, check.sought))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(Error::kafka("seek back to the committed offset"))
}

/// A seek still waiting for its first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeekCheck {
    /// The offset the unit wants to read from.
    want: i64,
    /// The offset sought.
    sought: i64,
    /// The earliest retained offset (as known to the unit).
    low: i64,
    /// Already sought back from the high watermark (see [`SeekCheck::at_end`]).
    probed: bool,
}

impl SeekCheck {
    /// A seek to `want` on a partition whose earliest retained offset is `low`.
    fn new(want: i64, low: i64) -> SeekCheck {
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
    fn first_message(&self, offset: i64) -> Option<SeekCheck> {
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
    fn probed(&self) -> bool {
        self.probed
    }

    /// Nothing came since the seek and the partition's watermarks are `low`..`high`: when
    /// `want` is at or past `high`, a broker that answers a fetch inside its last batch with
    /// nothing may be hiding the batch's rest, so seek to the last message (once). `None`: keep
    /// waiting.
    fn at_end(&self, low: i64, high: i64) -> Option<SeekCheck> {
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
fn seek_blocking<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
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
