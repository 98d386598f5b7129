//! Archive rows without Kafka provenance ("foreign": written by another tool, no `_partition` /
//! `_offset`) in the bootstrap from the archive (docs/stream.md, "State across restarts").
//!
//! **Which partition.** Both input topics are keyed by `member_id` as a decimal string
//! (docs/reference.md §1), so a row belongs to the partition the producers' partitioner
//! (`--archive-partitioner`) gives its member's key among the topic's current partition count.
//!
//! **Which rows.** A foreign row has no offset to compare with the earliest retained offset, so it
//! cannot be told apart from an event Kafka still holds, and feeding one of those would change
//! what the unit does with it when it is read again (a play is then a duplicate and leaves the
//! live count; an impression too far ahead would make retained ones too late). So rows are cut at
//! an event-time bound below every event Kafka still holds that the engine would use. With `t0`
//! the `ts` of the first event the unit will take from Kafka (the first message at or after the
//! earliest retained offset that decodes and is not from the future, as the replay judges it),
//! the topic-partition's greatest `ts` is at least `t0` from then on, so every retained event the
//! engine accepts has `ts >= t0 - allowed lateness`:
//!
//! - plays are fed when `ts < t0 - allowed lateness` (none of them is a retained play the engine
//!   would count);
//! - impressions when `ts < t0`: a repeated impression changes nothing (the engine keeps one
//!   copy), and feeding ones before `t0` never raises the greatest `ts` past what it is once `t0`
//!   is read, so no retained impression becomes too late.
//!
//! When Kafka holds no such message (the topic-partition is empty from the earliest retained
//! offset), there is nothing to repeat and every foreign row of the partition is fed.
//!
//! The facts are read from the broker with a short-lived consumer of its own (no group), only for
//! a topic that has foreign rows, once per bootstrap.

use std::time::{Duration, Instant};

use playsource_domain::{
    check_not_future, decode_impression, decode_play, MemberId, PerTopic, Topic, Ts,
};
use playsource_kafka::partitioner::{member_key, Partitioner};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Error;

/// How long one metadata request may take.
const REQUEST: Duration = Duration::from_secs(10);

/// What the bootstrap needs to place one topic's foreign rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Known {
    partitioner: Partitioner,
    /// The unit's partition.
    p: i32,
    /// The topic's partition count.
    partitions: i32,
    /// Rows at or after this `ts` are not fed (`None`: no bound).
    pub(super) bound: Option<Ts>,
    /// The first event Kafka still holds: its offset and `ts`.
    pub(super) first: Option<(i64, Ts)>,
}

/// Where a foreign row goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// The unit's partition, before the bound: fed.
    Fed,
    /// The unit's partition, at or after the bound: cut.
    Cut,
    /// Another partition's.
    Elsewhere,
    /// No partition: the broker reported none for the topic.
    Unplaced,
}

impl Known {
    /// Where a row of `member` at `ts` goes.
    pub(super) fn place(&self, member: MemberId, ts: Ts) -> Place {
        let key = member_key(member.0);
        match self.partitioner.partition(key.as_bytes(), self.partitions) {
            None => Place::Unplaced,
            Some(q) if q != self.p => Place::Elsewhere,
            Some(_) if self.bound.is_some_and(|b| ts >= b) => Place::Cut,
            Some(_) => Place::Fed,
        }
    }
}

/// The broker-side facts of partition `p`'s topics, read on first need (blocking).
pub(super) struct Facts {
    brokers: String,
    topics: PerTopic<String>,
    p: i32,
    low: PerTopic<i64>,
    partitioner: Partitioner,
    allowed_lateness_ms: i64,
    max_future_ms: i64,
    /// How long reading the first retained message may take before the bootstrap fails.
    patience: Duration,
    known: PerTopic<Option<Known>>,
    consumer: Option<BaseConsumer>,
}

/// The settings [`Facts`] read the broker with.
pub(super) struct FactsConfig {
    pub(super) brokers: String,
    pub(super) topics: PerTopic<String>,
    pub(super) partitioner: Partitioner,
    pub(super) allowed_lateness_ms: i64,
    pub(super) max_future_ms: i64,
    pub(super) patience: Duration,
}

impl Facts {
    /// Facts of partition `p`, whose earliest retained offsets are `low`; nothing is read yet.
    pub(super) fn new(cfg: FactsConfig, p: i32, low: PerTopic<i64>) -> Facts {
        Facts {
            brokers: cfg.brokers,
            topics: cfg.topics,
            p,
            low,
            partitioner: cfg.partitioner,
            allowed_lateness_ms: cfg.allowed_lateness_ms,
            max_future_ms: cfg.max_future_ms,
            patience: cfg.patience,
            known: PerTopic::default(),
            consumer: None,
        }
    }

    /// Topic `k`'s facts if already read.
    pub(super) fn known(&self, k: Topic) -> Option<Known> {
        self.known[k]
    }

    /// Topic `k`'s facts, read from the broker the first time (blocking).
    pub(super) fn get(&mut self, k: Topic) -> Result<Known, Error> {
        if let Some(known) = self.known[k] {
            return Ok(known);
        }
        let known = self.read(k)?;
        tracing::info!(topic = %self.topics[k], partition = self.p, partitions = known.partitions,
            partitioner = %self.partitioner, first_retained = ?known.first.map(|(o, t)| (o, t.to_string())),
            bound = ?known.bound.map(|b| b.to_string()),
            "archive rows without _partition/_offset are placed by key and fed below the bound");
        self.known[k] = Some(known);
        Ok(known)
    }

    fn read(&mut self, k: Topic) -> Result<Known, Error> {
        let topic = self.topics[k].clone();
        let (p, low) = (self.p, self.low[k]);
        let c = self.consumer()?;
        let md = c
            .fetch_metadata(Some(&topic), REQUEST)
            .map_err(Error::kafka("read the topic's metadata"))?;
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| {
                i32::try_from(t.partitions().len()).unwrap_or(i32::MAX)
            });
        let (_, high) = c
            .fetch_watermarks(&topic, p, REQUEST)
            .map_err(Error::kafka("read the partition's offsets"))?;
        let first = if high > low {
            self.first_event(k, low, high)?
        } else {
            None
        };
        let bound = first.map(|(_, t0)| match k {
            Topic::Impressions => t0,
            Topic::Plays => t0.minus(self.allowed_lateness_ms),
        });
        Ok(Known {
            partitioner: self.partitioner,
            p,
            partitions,
            bound,
            first,
        })
    }

    /// The offset and `ts` of the first message of topic `k` at or after `low` that the replay
    /// would feed (decodes, not from the future); `None` when none is below `high`.
    fn first_event(&mut self, k: Topic, low: i64, high: i64) -> Result<Option<(i64, Ts)>, Error> {
        let topic = self.topics[k].clone();
        let (p, mf, patience) = (self.p, self.max_future_ms, self.patience);
        let c = self.consumer()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, p, Offset::Offset(low))
            .map_err(Error::kafka(
                "position the probe of the first retained message",
            ))?;
        c.assign(&tpl).map_err(Error::kafka(
            "position the probe of the first retained message",
        ))?;
        let started = Instant::now();
        let mut last_error = None;
        while started.elapsed() < patience {
            let Some(msg) = c.poll(Duration::from_millis(200)) else {
                continue;
            };
            let msg = match msg {
                Ok(m) => m,
                Err(KafkaError::PartitionEOF(_)) => return Ok(None),
                Err(e) => {
                    tracing::debug!(error = %e, "probe of the first retained message: retrying");
                    last_error = Some(e);
                    continue;
                }
            };
            if msg.offset() < low {
                continue;
            }
            let msg_ts = msg.timestamp().to_millis().map(Ts);
            let clock = msg_ts.unwrap_or_else(now);
            let payload = msg.payload().unwrap_or_default();
            let ts = match k {
                Topic::Impressions => decode_impression(payload).ok().map(|i| i.ts),
                Topic::Plays => decode_play(payload).ok().map(|p| p.ts),
            };
            if let Some(ts) = ts.filter(|&ts| check_not_future(ts, msg_ts, clock, mf).is_ok()) {
                return Ok(Some((msg.offset(), ts)));
            }
            if msg.offset() + 1 >= high {
                return Ok(None);
            }
        }
        Err(Error::Kafka {
            action: "read the first message it still holds of a topic-partition (the bound of the archive's rows without _partition/_offset)",
            cause: last_error
                .unwrap_or(KafkaError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut)),
        })
    }

    fn consumer(&mut self) -> Result<&BaseConsumer, Error> {
        if self.consumer.is_none() {
            // librdkafka assigns only with a group id; without subscribing, it never joins the
            // group nor commits.
            let c: BaseConsumer = playsource_kafka::client_config(&self.brokers)
                .set("group.id", "playsource-stream-bootstrap-probe")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "true")
                // Retention moving past `low` meanwhile: start at the new earliest, as the unit.
                .set("auto.offset.reset", "earliest")
                .create()
                .map_err(Error::kafka(
                    "create the probe of the first retained messages",
                ))?;
            self.consumer = Some(c);
        }
        self.consumer
            .as_ref()
            .ok_or(Error::Task("the probe consumer vanished".into()))
    }
}

fn now() -> Ts {
    Ts(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(bound: Option<Ts>) -> Known {
        Known {
            partitioner: Partitioner::ConsistentRandom,
            p: 2,
            partitions: 5,
            bound,
            first: None,
        }
    }

    #[test]
    fn rows_go_to_their_members_partition_and_stop_at_the_bound() {
        let k = known(Some(Ts(1_000)));
        let ours = (1..200u64)
            .map(MemberId)
            .find(|m| {
                Partitioner::ConsistentRandom.partition(member_key(m.0).as_bytes(), 5) == Some(2)
            })
            .unwrap();
        let theirs = (1..200u64)
            .map(MemberId)
            .find(|m| {
                Partitioner::ConsistentRandom.partition(member_key(m.0).as_bytes(), 5) != Some(2)
            })
            .unwrap();
        assert_eq!(k.place(ours, Ts(999)), Place::Fed);
        assert_eq!(k.place(ours, Ts(1_000)), Place::Cut);
        assert_eq!(k.place(theirs, Ts(0)), Place::Elsewhere);
        assert_eq!(known(None).place(ours, Ts(i64::MAX)), Place::Fed);
        let none = Known {
            partitions: 0,
            ..known(None)
        };
        assert_eq!(none.place(ours, Ts(0)), Place::Unplaced);
    }
}
