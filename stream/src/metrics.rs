//! Metric names of the streaming layer, declared once. Labels: `topic` (the input topic's
//! configured name), `partition` (the unit), `source` (`sop`/`sod`), `outcome`.

use metrics::Counter;
use playsource_domain::PerTopic;

/// Messages read from an input topic (counter; `topic`).
pub const CONSUMED: &str = "playsource_stream_consumed_total";
/// Messages rejected to the dead-letter topic (counter; `topic`).
pub const REJECTED: &str = "playsource_stream_rejected_total";
/// Events rejected because their `ts` ran more than `--max-future-secs` ahead of both their message
/// timestamp and the clock; also counted in [`REJECTED`] (counter; `topic`).
pub const FUTURE_REJECTED: &str = "playsource_stream_future_rejected_total";
/// Dead letters cut to fit the dead-letter topic's `max.message.bytes` (counter).
pub const DLQ_TRUNCATED: &str = "playsource_stream_dlq_truncated_total";
/// Events more than the allowed lateness behind their topic-partition (counter; `topic`).
pub const TOO_LATE: &str = "playsource_stream_too_late_total";
/// Redelivered plays left out (counter; `topic`).
pub const DUPLICATES: &str = "playsource_stream_duplicates_total";
/// First attributions of plays (counter; `source` = sop|sod, `outcome` = attributed|unattributed).
pub const ATTRIBUTIONS: &str = "playsource_stream_attributions_total";
/// Corrections of provisional attributions (counter).
pub const CORRECTIONS: &str = "playsource_stream_corrections_total";
/// Events re-read after an assignment to rebuild state (counter; `topic`).
pub const REPLAYED: &str = "playsource_stream_replayed_total";
/// Events fed into a unit's engine from the archive because Kafka no longer held them and no
/// snapshot was usable (counter; `topic`; docs/stream.md, "State across restarts").
pub const BOOTSTRAP_EVENTS: &str = "playsource_stream_bootstrap_events_total";
/// Of [`BOOTSTRAP_EVENTS`], the events from archive rows without `_partition`/`_offset` (written by
/// another tool), placed by their member's key (counter; `topic`).
pub const BOOTSTRAP_FOREIGN_EVENTS: &str = "playsource_stream_bootstrap_foreign_events_total";
/// Archive files with rows without `_partition`/`_offset` that the bootstrap could not place (they
/// break a rule of docs/reference.md §1, e.g. a null `member_id`) and skipped (counter; `topic`).
pub const BOOTSTRAP_SKIPPED_FILES: &str = "playsource_stream_bootstrap_skipped_files_total";
/// Bootstraps that found no archived event below a topic-partition's earliest retained offset
/// (counter; `topic`): what retention dropped is missing from the engine's state.
pub const BOOTSTRAP_MISSING: &str = "playsource_stream_bootstrap_missing_total";
/// Greatest event time so far, Unix ms (gauge; `topic`, `partition`).
pub const WATERMARK_MS: &str = "playsource_stream_high_water_ms";
/// Messages not yet read: high watermark minus position (gauge; `topic`, `partition`).
pub const LAG: &str = "playsource_stream_lag_messages";
/// Duration of a flush's Postgres transaction (histogram, seconds).
pub const FLUSH_SECONDS: &str = "playsource_stream_flush_transaction_seconds";
/// Flushes committed (counter).
pub const FLUSHES: &str = "playsource_stream_flushes_total";
/// Flushes refused because another owner holds the partition (counter).
pub const FENCED: &str = "playsource_stream_fenced_total";
/// Units rebuilt because a catalog version loaded after the cache's last refresh applies to plays
/// they counted (counter).
pub const CATALOG_REBUILDS: &str = "playsource_stream_catalog_rebuilds_total";
/// Engine state: (member, video) keys (gauge; `partition`).
pub const STATE_KEYS: &str = "playsource_stream_state_keys";
/// Engine state: estimated bytes (gauge; `partition`).
pub const STATE_BYTES: &str = "playsource_stream_state_bytes";
/// Engine state: plays still open to correction (gauge; `partition`).
pub const PENDING_PLAYS: &str = "playsource_stream_pending_plays";
/// Checkpoint layers written (counter; `kind` = full|incremental).
pub const CHECKPOINTS: &str = "playsource_stream_checkpoints_total";
/// Bytes of the latest checkpoint layer written (gauge; `partition`, `kind`).
pub const CHECKPOINT_LAYER_BYTES: &str = "playsource_stream_checkpoint_layer_bytes";
/// Bytes of the unit's committed checkpoint, all its layers (gauge; `partition`).
pub const CHECKPOINT_BYTES: &str = "playsource_stream_checkpoint_bytes";
/// Each time the consumer loop held on to take part of a checkpoint layer: its beginning, and
/// each slice of its pairs copied (histogram, seconds; sorting, encoding and writing run off the
/// loop).
pub const CHECKPOINT_TAKE_SECONDS: &str = "playsource_stream_checkpoint_take_seconds";
/// From a checkpoint layer's beginning to its last pair copied, slices and the messages between
/// them included (histogram, seconds).
pub const CHECKPOINT_COPY_SECONDS: &str = "playsource_stream_checkpoint_copy_seconds";
/// Checkpoint layers that could not be written or merged (counter; `stage` = write|merge). The
/// unit's next layer is then a full one; nothing else is affected.
pub const CHECKPOINT_FAILURES: &str = "playsource_stream_checkpoint_failures_total";
/// Members removed from the group at start-up because they ran under this replica's name
/// (`--replica-name`; counter).
pub const PREDECESSORS_REMOVED: &str = "playsource_stream_predecessors_removed_total";
/// Chains of layers merged into one full layer in the background (counter).
pub const CHECKPOINT_MERGES: &str = "playsource_stream_checkpoint_merges_total";
/// Catalog lookups (counter; `outcome` = hit|miss).
pub const CATALOG_LOOKUPS: &str = "playsource_stream_catalog_lookups_total";
/// Videos in the cached catalog (gauge).
pub const CATALOG_VIDEOS: &str = "playsource_stream_catalog_videos";
/// Archive rows written (counter; `topic`).
pub const ARCHIVED_ROWS: &str = "playsource_stream_archived_rows_total";
/// Archive hours compacted into their one published file per topic-partition (counter; `topic`).
pub const COMPACTIONS: &str = "playsource_stream_archive_compactions_total";
/// Archive compactions that failed (counter); their files stay pending and readable.
pub const COMPACTION_FAILURES: &str = "playsource_stream_archive_compaction_failures_total";
/// Enriched plays published (counter).
pub const ENRICHED: &str = "playsource_stream_enriched_published_total";

/// Seeks repeated further back because the broker started after the offset asked for
/// (counter; `topic`). See `seek.rs`.
pub const SEEK_BACKS: &str = "playsource_stream_seek_backs_total";

/// Times a topic-partition was held because it ran more than the allowed drift ahead of the
/// other topic in event time (counter; `topic`). See `align.rs`.
pub const HOLDS: &str = "playsource_stream_alignment_holds_total";
/// Bytes of held messages kept in memory for alignment, all units (gauge). See `align.rs`.
pub const ALIGN_KEPT_BYTES: &str = "playsource_stream_alignment_kept_bytes";

/// Input partitions with unread messages whose committed offset has not moved for over twice the
/// session timeout: nobody processes them (gauge; `topic`). See `consumer/unprocessed.rs`.
pub const UNPROCESSED: &str = "playsource_stream_partitions_unprocessed";
/// Messages the broker no longer retained when the stream came to read them: the committed
/// offset was below the partition's earliest offset (counter; `topic`, `partition`).
pub const RETENTION_LOST: &str = "playsource_stream_retention_lost_messages_total";
/// 1 while every assigned partition is paused at the broker because a flush is taking long
/// (Postgres or the broker down); reading resumes when it finishes (gauge).
pub const BACKPRESSURE_PAUSED: &str = "playsource_stream_backpressure_paused";

/// Failed attempts of an operation that was then retried (counter; `operation`).
pub const RETRIES: &str = "playsource_stream_retries_total";

/// The per-event counters, registered once (a `counter!` with labels per event would build and
/// look up its key every time).
#[derive(Clone)]
pub struct EventMeters {
    pub consumed: PerTopic<Counter>,
    pub replayed: PerTopic<Counter>,
    pub rejected: PerTopic<Counter>,
    pub future_rejected: PerTopic<Counter>,
    pub too_late: PerTopic<Counter>,
    pub duplicates: PerTopic<Counter>,
    pub seek_backs: PerTopic<Counter>,
    pub holds: PerTopic<Counter>,
    /// `[sop, sod][attributed, unattributed]`.
    pub attributions: [[Counter; 2]; 2],
    pub corrections: Counter,
    /// `[hit, miss]`.
    pub catalog_lookups: [Counter; 2],
}

impl EventMeters {
    /// Registers the counters of the two input topics.
    pub fn new(topics: &PerTopic<String>) -> EventMeters {
        let per_topic = |name: &'static str| {
            topics
                .as_ref()
                .map(|t| metrics::counter!(name, "topic" => t.clone()))
        };
        let attributed = |source: &'static str| {
            ["attributed", "unattributed"]
                .map(|o| metrics::counter!(ATTRIBUTIONS, "source" => source, "outcome" => o))
        };
        EventMeters {
            consumed: per_topic(CONSUMED),
            replayed: per_topic(REPLAYED),
            rejected: per_topic(REJECTED),
            future_rejected: per_topic(FUTURE_REJECTED),
            too_late: per_topic(TOO_LATE),
            duplicates: per_topic(DUPLICATES),
            seek_backs: per_topic(SEEK_BACKS),
            holds: per_topic(HOLDS),
            attributions: [attributed("sop"), attributed("sod")],
            corrections: metrics::counter!(CORRECTIONS),
            catalog_lookups: ["hit", "miss"]
                .map(|o| metrics::counter!(CATALOG_LOOKUPS, "outcome" => o)),
        }
    }

    /// Counts a catalog lookup.
    pub fn lookup(&self, hit: bool) {
        self.catalog_lookups[usize::from(!hit)].increment(1);
    }
}

/// Counts a dead letter cut to fit.
pub fn dlq_truncated() {
    metrics::counter!(DLQ_TRUNCATED).increment(1);
}

/// Describes every metric to the installed recorder (call once at start).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CONSUMED, "Messages read from an input topic.");
    describe_counter!(REJECTED, "Messages rejected to the dead-letter topic.");
    describe_counter!(
        FUTURE_REJECTED,
        "Events rejected for a ts too far ahead of their message timestamp and the clock."
    );
    describe_counter!(
        DLQ_TRUNCATED,
        "Dead letters cut to fit the dead-letter topic's max.message.bytes."
    );
    describe_counter!(
        TOO_LATE,
        "Events more than the allowed lateness behind their topic-partition."
    );
    describe_counter!(DUPLICATES, "Redelivered plays left out.");
    describe_counter!(
        COMPACTIONS,
        "Archive hours rewritten as their one published file per topic-partition."
    );
    describe_counter!(
        COMPACTION_FAILURES,
        "Archive compactions that failed; their files stay pending and readable."
    );
    describe_counter!(
        ATTRIBUTIONS,
        "First attributions of plays, by source and outcome."
    );
    describe_counter!(CORRECTIONS, "Corrections of provisional attributions.");
    describe_counter!(
        REPLAYED,
        "Events re-read after an assignment to rebuild state."
    );
    describe_counter!(
        BOOTSTRAP_EVENTS,
        "Events fed into a unit's engine from the archive for what Kafka retention dropped."
    );
    describe_counter!(
        BOOTSTRAP_FOREIGN_EVENTS,
        "Of the bootstrap's events, those from archive rows without _partition/_offset, placed by key."
    );
    describe_counter!(
        BOOTSTRAP_SKIPPED_FILES,
        "Archive files whose rows without _partition/_offset the bootstrap could not place."
    );
    describe_counter!(
        BOOTSTRAP_MISSING,
        "Bootstraps that found nothing in the archive of what Kafka retention dropped."
    );
    describe_gauge!(
        WATERMARK_MS,
        Unit::Milliseconds,
        "Greatest event time so far (Unix ms)."
    );
    describe_gauge!(LAG, "Messages not yet read per topic-partition.");
    describe_histogram!(
        FLUSH_SECONDS,
        Unit::Seconds,
        "Duration of a flush transaction."
    );
    describe_counter!(FLUSHES, "Flushes committed.");
    describe_counter!(
        FENCED,
        "Flushes refused because another owner holds the partition."
    );
    describe_counter!(
        CATALOG_REBUILDS,
        "Units whose flush was withheld and that were rebuilt because a catalog version newer than the cache applies to plays they counted."
    );
    describe_gauge!(STATE_KEYS, "(member, video) keys held by the engine.");
    describe_gauge!(
        STATE_BYTES,
        Unit::Bytes,
        "Estimated bytes held by the engine."
    );
    describe_gauge!(PENDING_PLAYS, "Plays still open to correction.");
    describe_counter!(CHECKPOINTS, "Checkpoint layers written, by kind.");
    describe_gauge!(
        CHECKPOINT_LAYER_BYTES,
        Unit::Bytes,
        "Bytes of the latest checkpoint layer written."
    );
    describe_gauge!(
        CHECKPOINT_BYTES,
        Unit::Bytes,
        "Bytes of the unit's committed checkpoint (all its layers)."
    );
    describe_histogram!(
        CHECKPOINT_TAKE_SECONDS,
        Unit::Seconds,
        "Each time the consumer loop held on to take part of a checkpoint layer (its beginning, or one slice of its pairs)."
    );
    describe_histogram!(
        CHECKPOINT_COPY_SECONDS,
        Unit::Seconds,
        "From a checkpoint layer's beginning to its last pair copied, messages in between included."
    );
    describe_counter!(
        CHECKPOINT_FAILURES,
        "Checkpoint layers that could not be written or merged."
    );
    describe_counter!(
        PREDECESSORS_REMOVED,
        "Group members removed at start-up as this replica's predecessors."
    );
    describe_counter!(
        CHECKPOINT_MERGES,
        "Checkpoint chains merged into one full layer."
    );
    describe_counter!(CATALOG_LOOKUPS, "Catalog cache lookups, by hit or miss.");
    describe_gauge!(CATALOG_VIDEOS, "Videos in the cached catalog.");
    describe_counter!(ARCHIVED_ROWS, "Raw events written to the Parquet archive.");
    describe_counter!(ENRICHED, "Enriched plays published.");
    describe_counter!(
        SEEK_BACKS,
        "Seeks repeated further back because the broker started after the offset asked for."
    );
    describe_counter!(
        HOLDS,
        "Times a topic-partition was held: it ran ahead of the other topic in event time."
    );
    describe_gauge!(
        ALIGN_KEPT_BYTES,
        Unit::Bytes,
        "Bytes of held messages kept in memory until the other topic catches up."
    );
    describe_counter!(
        RETRIES,
        "Failed attempts of an operation that was retried (Postgres or broker unavailable)."
    );
}
