//! Metric names of the archive crate (Prometheus, via the `metrics` facade).

/// Parquet files written to the archive (counter; label `topic`).
pub const FILES_WRITTEN: &str = "playsource_archive_files_written_total";
/// Rows written to the archive (counter; label `topic`).
pub const ROWS_WRITTEN: &str = "playsource_archive_rows_written_total";
/// Bytes of Parquet written to the archive (counter; label `topic`).
pub const BYTES_WRITTEN: &str = "playsource_archive_bytes_written_total";
/// Failed archive writes (counter; label `topic`).
pub const WRITE_ERRORS: &str = "playsource_archive_write_errors_total";
