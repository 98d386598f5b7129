//! What the flush task and the catalog check share: the run's configuration, the pool, the
//! dead-letter/enriched publisher, the topics and the retry policy.

use sqlx::PgPool;

use crate::config::StreamConfig;
use crate::dlq::Publisher;
use crate::retry::RetryPolicy;

/// Things the flush task needs.
pub struct Shared {
    pub cfg: StreamConfig,
    pub pool: PgPool,
    pub publisher: Publisher,
    pub topics: playsource_domain::PerTopic<String>,
    /// How long Postgres and broker outages are ridden through.
    pub retry: RetryPolicy,
    /// The archive hours waiting to be compacted (`crate::compact`).
    pub compaction: crate::compact::tracker::Tracker,
}
