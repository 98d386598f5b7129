//! The Parquet raw-event archive of docs/reference.md §5.
//!
//! Raw events are kept Hive-style, partitioned by event time:
//! `<archive>/<topic>/date=YYYY-MM-DD/hour=HH/<file>.parquet`, with the field names of
//! docs/reference.md §1 as columns, `ts` as a UTC millisecond timestamp and ids as 64-bit integers, so Spark, DuckDB
//! and pyarrow read the files as they are. The batch layer also writes each day's enriched plays
//! to `<archive>/enriched_plays/date=YYYY-MM-DD/`.
//!
//! - [`layout`]: where files go ([`ArchiveLayout`]);
//! - [`schema`]: the Arrow schemas of the two topics;
//! - [`builders`]: turn domain events into Arrow record batches;
//! - [`store`]: where the archive lives, a local folder or an object store (`s3://...`);
//! - [`write`]: crash-safe Parquet writes and the [`PartitionedWriter`] that buffers one topic
//!   by (day, hour);
//! - [`compact`]: the pending area and the compaction of an hour into one file per
//!   topic-partition;
//! - [`read`]: reading the archive back, including files written by other tools;
//! - [`replay`]: an event-time range of both topics back in event-time order, hour by hour
//!   (`playsource replay`).

pub mod builders;
pub mod compact;
pub mod error;
pub mod layout;
pub mod metrics;
pub mod read;
pub mod replay;
pub mod schema;
pub mod store;
pub mod write;

pub use builders::{EventBuilder, ImpressionsBuilder, PlaysBuilder};
/// The byte buffer [`ArchiveStore::get`] returns.
pub use bytes::Bytes;
pub use error::Error;
pub use layout::ArchiveLayout;
pub use store::ArchiveStore;
pub use write::{
    write_parquet_atomic, ImpressionsWriter, PartitionedWriter, PlaysWriter, WrittenFile,
};
