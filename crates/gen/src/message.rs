//! The messages a workload is made of, in production order.

use playsource_domain::{Impression, MemberId, Play, Ts};

/// Which input topic a message goes to.
pub use playsource_domain::Topic;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    /// The first delivery of a valid event, within the configured disorder.
    Valid,
    /// A redelivery: the same bytes as an earlier message, up to a minute later.
    Duplicate,
    /// The first delivery of a valid event, held back 10 to 60 minutes of event time (too late
    /// for the stream's allowed lateness; the batch layer counts it).
    Late,
    /// Bytes that break a rule of docs/reference.md §1 (they belong in the dead-letter topic).
    Malformed,
}

impl MessageKind {
    /// Lower-case name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Valid => "valid",
            MessageKind::Duplicate => "duplicate",
            MessageKind::Late => "late",
            MessageKind::Malformed => "malformed",
        }
    }
}

/// A valid event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Impression(Impression<'static>),
    Play(Play<'static>),
}

impl Event {
    /// The event time.
    pub fn ts(&self) -> Ts {
        match self {
            Event::Impression(i) => i.ts,
            Event::Play(p) => p.ts,
        }
    }

    /// The member.
    pub fn member_id(&self) -> MemberId {
        match self {
            Event::Impression(i) => i.member_id,
            Event::Play(p) => p.member_id,
        }
    }

    /// The topic it belongs to.
    pub fn topic(&self) -> Topic {
        match self {
            Event::Impression(_) => Topic::Impressions,
            Event::Play(_) => Topic::Plays,
        }
    }

    /// The contract's JSON encoding.
    pub fn to_json(&self) -> String {
        match self {
            Event::Impression(i) => i.to_json(),
            Event::Play(p) => p.to_json(),
        }
    }
}

/// One Kafka message: topic, key (the member), value bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: Topic,
    /// The key's member; the Kafka key is its decimal string.
    pub key: MemberId,
    pub kind: MessageKind,
    /// The value bytes.
    pub payload: Vec<u8>,
    /// The event, for every kind but [`MessageKind::Malformed`].
    pub event: Option<Event>,
}

impl Message {
    /// The Kafka key: the member id as a decimal string.
    pub fn key_string(&self) -> String {
        self.key.0.to_string()
    }
}

/// Counts of what was produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Impression messages that carry a valid event (first deliveries, late ones included).
    pub impressions: u64,
    /// Play messages that carry a valid event (first deliveries, late ones included).
    pub plays: u64,
    /// Redeliveries (not included above).
    pub duplicates: u64,
    /// First deliveries held back too late (included in `impressions`/`plays`).
    pub late: u64,
    /// Malformed messages.
    pub malformed: u64,
}

impl Counts {
    /// Counts one message.
    pub fn add(&mut self, m: &Message) {
        match m.kind {
            MessageKind::Duplicate => self.duplicates += 1,
            MessageKind::Malformed => self.malformed += 1,
            MessageKind::Valid | MessageKind::Late => {
                if m.kind == MessageKind::Late {
                    self.late += 1;
                }
                match m.topic {
                    Topic::Impressions => self.impressions += 1,
                    Topic::Plays => self.plays += 1,
                }
            }
        }
    }

    /// Every message counted.
    pub fn messages(&self) -> u64 {
        self.impressions + self.plays + self.duplicates + self.malformed
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages: {} impressions, {} plays, {} duplicates, {} late, {} malformed",
            self.messages(),
            self.impressions,
            self.plays,
            self.duplicates,
            self.late,
            self.malformed
        )
    }
}
