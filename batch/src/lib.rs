//! The batch layer of playsource (docs/reference.md §3–§5): recomputes a day of the views from the raw
//! Parquet archive (plays of D, impressions of D−lookback..D) with the domain's bulk attribution,
//! writes the day's enriched plays as Parquet, and replaces the day in the batch view atomically.
//! Also `playsource audit` (realtime against batch) and pruning of realtime rows of
//! batch-complete days.
//!
//! - [`run`]: one day end to end ([`run_day`]), or a range, pipelined ([`run_days`]);
//! - [`compute`]: the multi-threaded computation of a day from its files;
//! - [`enriched`]: the enriched plays files and their atomic swap into place;
//! - [`gate`]: the archive completeness check before a day is published;
//! - [`publish`]: the one-transaction replace of a day in `batch_*`;
//! - [`shard`], [`parts`]: a day split into N independent shards, published by the last one;
//! - [`audit`]: the drift report;
//! - [`prune`]: deleting realtime rows of days long batch-complete.

pub mod audit;
pub mod compute;
pub mod enriched;
pub mod error;
pub mod gate;
pub mod metrics;
pub mod parts;
pub mod prune;
pub mod publish;
pub mod run;
pub mod shard;

pub use audit::{audit_day, AuditReport, DriftRow};
pub use error::Error;
pub use prune::{prune_realtime, Pruned};
pub use run::{default_threads, load_catalog, run_day, run_days, BatchOptions, DaySummary};
pub use shard::{run_shard, Shard, ShardSummary};
