//! What `playsource stream` is told ([`StreamConfig`]) and what a run reports ([`RunSummary`]).

use std::time::Duration;

use playsource_domain::AttributionConfig;
use playsource_kafka::partitioner::Partitioner;
use playsource_kafka::Topics;

/// Default consumer group (`--group-id`).
pub const DEFAULT_GROUP_ID: &str = "playsource-stream";

/// Everything `playsource stream` is told.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Topic names; the archive's folders follow them.
    pub topics: Topics,
    /// Consumer group; also the key of offsets, leases and snapshots in Postgres.
    pub group_id: String,
    /// Archive root: a local folder or an object store (`s3://bucket/prefix`).
    pub archive: playsource_archive::ArchiveStore,
    /// How often buffered results are committed. [`StreamConfig::new`] sets 1 s, which the test
    /// suites are tuned for; `playsource stream` defaults to 250 ms (`--flush-interval-ms`), which
    /// keeps a play's way to the API under a second.
    pub flush_interval: Duration,
    /// How often each unit's engine is checkpointed (a layer written with a flush).
    pub checkpoint_interval: Duration,
    /// How long a cached catalog is used before it is reloaded.
    pub catalog_ttl: Duration,
    /// Exit 0 once every partition is read to its end and nothing arrived for this long.
    pub exit_when_idle: Option<Duration>,
    /// The attribution rules' knobs.
    pub attribution: AttributionConfig,
    /// Names this process in `stream_leases`.
    pub owner: String,
    /// Publish enriched plays to the enriched topic.
    pub publish_enriched: bool,
    /// How long one operation may keep failing because Postgres or the broker is unavailable
    /// before the stream stops with its error (see [`retry`]).
    pub retry_timeout: Duration,
    /// Consumer-group session timeout: how long a silent member keeps its partitions.
    pub session_timeout: Duration,
    /// Event-time alignment: a topic running more than this ahead of the other is held
    /// (`None`: off; default one minute). See [`align`].
    pub max_drift: Option<Duration>,
    /// Bytes of held messages kept in memory, all units together, before a held
    /// topic-partition is also paused at the broker. See [`align`].
    pub align_buffer_bytes: usize,
    /// How far an event's `ts` may run ahead of both its message timestamp and the clock before
    /// it is rejected (`--max-future-secs`, docs/reference.md §1).
    pub max_future: Duration,
    /// `--take-over`: when another consumer group feeds the realtime view, hand it to this group
    /// (continuing from the old group's offsets, fencing its members) instead of refusing to
    /// start. See [`playsource_store::feeder`].
    pub take_over: bool,
    /// Static group membership (`group.instance.id`): a restarted member with the same id takes
    /// its partitions back at once where the broker supports it. `None`: dynamic membership.
    pub instance_id: Option<String>,
    /// This replica's stable name: its consumer's client id, and before joining, the members of
    /// the group with that client id (its crashed predecessor) are removed (LeaveGroup).
    pub replica_name: Option<String>,
    /// The partitioner the input topics' producers use (`--archive-partitioner`): how the
    /// bootstrap from the archive places rows without `_partition`/`_offset` by their key.
    pub archive_partitioner: Partitioner,
}

/// Default of [`StreamConfig::max_drift`].
pub const DEFAULT_MAX_DRIFT: Duration = Duration::from_secs(60);
/// Default of [`StreamConfig::align_buffer_bytes`] (256 MiB).
pub const DEFAULT_ALIGN_BUFFER_BYTES: usize = 256 << 20;
/// Default of [`StreamConfig::max_future`]: 5 minutes.
pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(300);

impl StreamConfig {
    /// A configuration with the contract's defaults.
    pub fn new(
        brokers: impl Into<String>,
        archive: impl Into<playsource_archive::ArchiveStore>,
    ) -> StreamConfig {
        StreamConfig {
            brokers: brokers.into(),
            topics: Topics::default(),
            group_id: DEFAULT_GROUP_ID.to_owned(),
            archive: archive.into(),
            flush_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(60),
            catalog_ttl: Duration::from_secs(60),
            exit_when_idle: None,
            attribution: AttributionConfig::default(),
            owner: default_owner(),
            publish_enriched: true,
            retry_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(45),
            instance_id: None,
            replica_name: None,
            max_drift: Some(DEFAULT_MAX_DRIFT),
            align_buffer_bytes: DEFAULT_ALIGN_BUFFER_BYTES,
            max_future: DEFAULT_MAX_FUTURE,
            take_over: false,
            archive_partitioner: Partitioner::default(),
        }
    }
}

/// `host-pid-random`: unique per process.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &id[..8])
}

/// Why the stream stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExitReason {
    /// Shutdown was requested (Ctrl-C, SIGTERM, or the caller's token).
    #[default]
    Shutdown,
    /// `--exit-when-idle`: everything was read and flushed.
    Idle,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Messages processed live (not counting replays).
    pub consumed: u64,
    /// Messages re-read to rebuild partition state after an assignment.
    pub replayed: u64,
    /// Provisional attributions corrected (live).
    pub corrections: u64,
    /// Times a topic-partition was held because it ran ahead of the other topic in event time.
    pub holds: u64,
    /// Times a held topic-partition was also paused at the broker: the messages kept for
    /// alignment passed `align_buffer_bytes`.
    pub align_pauses: u64,
    /// Flushes completed.
    pub flushes: u64,
    /// Units dropped because another owner took them.
    pub fenced: Vec<i32>,
    /// Units rebuilt because a catalog version loaded after the cache's refresh applied to plays
    /// they had counted (their flush was withheld).
    pub catalog_rebuilds: u64,
    /// Why it stopped.
    pub exit: ExitReason,
}
