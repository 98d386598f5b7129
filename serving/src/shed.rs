//! The bound on distinct uncached queries in flight.
//!
//! A cache hit costs microseconds; a miss reads Postgres (or waits for a replica reload). A
//! client sending many *distinct* uncached queries at once (say, every filter value over every
//! range) would otherwise queue them all on the database pool and time everyone out. Each
//! computation of an answer that is not in the cache holds one slot; concurrent requests for
//! the same cached key share one computation (and one slot). When every slot is taken, a new
//! uncached query is answered at once with `429 Too Many Requests` and `Retry-After` (a
//! problem+json body), never a 5xx; cache hits are always served.

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::Problem;
use crate::metrics as m;

/// Slots for uncached computations.
pub struct UncachedLimit {
    slots: Semaphore,
    max: usize,
}

impl UncachedLimit {
    /// A bound of `max` (at least 1) uncached queries in flight.
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        UncachedLimit {
            slots: Semaphore::new(max),
            max,
        }
    }

    /// Takes a slot for one uncached computation (released when the permit drops), or the 429
    /// problem when all are taken.
    pub fn enter(&self) -> Result<SemaphorePermit<'_>, Problem> {
        self.slots.try_acquire().map_err(|_| {
            metrics::counter!(m::QUERIES_SHED).increment(1);
            Problem::too_many_requests(self.max)
        })
    }
}
