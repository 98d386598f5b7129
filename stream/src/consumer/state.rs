//! The consumer loop's state, shared by the loop (`consumer.rs`) and the modules that act on it
//! (taking over, positioning, idleness, back-pressure, rebuilds), which add methods to it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use playsource_domain::{Catalog, PerTopic, Topic};
use tokio::task::JoinHandle;

use super::context::StreamKafka;
use super::unprocessed;
use crate::catalog_cache::CatalogCache;
use crate::config::RunSummary;
use crate::error::Error;
use crate::flush::{FlushDone, Shared};
use crate::metrics as m;
use crate::unit::Unit;

pub(super) type InFlight = Option<JoinHandle<Result<FlushDone, Error>>>;

pub(super) struct Loop {
    pub(super) shared: Arc<Shared>,
    pub(super) consumer: Arc<StreamKafka>,
    pub(super) units: BTreeMap<i32, Unit>,
    pub(super) catalog: Arc<Catalog>,
    /// The highest catalog version id `catalog` holds.
    pub(super) catalog_version: i64,
    pub(super) cache: CatalogCache,
    /// Units withheld from a flush for a newer catalog version, to rebuild (partition, topics).
    pub(super) rebuild: Vec<(i32, PerTopic<bool>)>,
    pub(super) meters: m::EventMeters,
    pub(super) summary: RunSummary,
    pub(super) last_message: Instant,
    pub(super) started: Instant,
    pub(super) ever_assigned: bool,
    /// The latest check for partitions nobody processes.
    pub(super) unprocessed: unprocessed::Unprocessed,
    /// When the flush in flight started.
    pub(super) flush_started: Option<Instant>,
    /// Topic-partitions (unit, topic) paused because a flush is taking long.
    pub(super) backpressure: Vec<(i32, Topic)>,
}
