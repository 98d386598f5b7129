//! Metric names of the batch layer (Prometheus, via the `metrics` facade).

/// Days published to the batch view (counter).
pub const DAYS_PUBLISHED: &str = "playsource_batch_days_published_total";
/// Batch runs of a day that failed (counter).
pub const DAYS_FAILED: &str = "playsource_batch_days_failed_total";
/// Plays counted by the batch layer (counter).
pub const PLAYS_COUNTED: &str = "playsource_batch_plays_counted_total";
/// Repeats of a play event_id left out (counter).
pub const DUPLICATE_PLAYS: &str = "playsource_batch_duplicate_plays_total";
/// Archive rows skipped for breaking a rule of docs/reference.md §1 (counter; label `topic`).
pub const INVALID_ROWS: &str = "playsource_batch_invalid_rows_total";
/// Archive rows read (counter; label `topic`).
pub const ROWS_READ: &str = "playsource_batch_rows_read_total";
/// Seconds a day took from reading to publishing (histogram).
pub const DAY_SECONDS: &str = "playsource_batch_day_seconds";
/// Rows deleted from the realtime view by `--prune-realtime` (counter; label `table`).
pub const REALTIME_ROWS_PRUNED: &str = "playsource_batch_realtime_rows_pruned_total";
