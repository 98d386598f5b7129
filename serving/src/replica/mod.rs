//! An in-memory replica of the hourly views, so a series request does no per-row SQL.
//!
//! The replica holds, for the UTC days from `today - memory_days` on, the `batch_hourly` rows of
//! every batch-complete day and the `rt_hourly` rows of every other day, read in **one**
//! `REPEATABLE READ` snapshot together with the freshness and the snapshot's identity
//! (`pg_current_snapshot()`). The batch rows only change with a publish, which moves the batch
//! version, so a reload keeps them and re-reads the realtime rows alone unless the version moved.
//!
//! A request uses the replica only when it is provably the current state: it reads
//! `pg_current_snapshot()` (one short statement, shared by the requests that arrive while it
//! runs: see `check.rs`) and compares it with the replica's. Equal
//! snapshots mean no transaction committed in between, so the replica's answer is exactly what
//! the SQL path ([`crate::merge::series`]) would read at that moment — realtime rows included,
//! at once. Otherwise (something committed) the request waits for a reload that starts after it
//! arrived (one at a time, at most one every [`MIN_RELOAD_INTERVAL`]; the requests waiting share
//! it) and answers from it — or takes the SQL path if the reload fails or takes longer than
//! [`RELOAD_WAIT`]. A range starting before the window always takes the SQL path.

mod check;
mod load;
mod part;
mod state;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::metrics as m;
use crate::params::SeriesQuery;

use check::Checker;
pub use state::{ReplicaAnswer, ReplicaState};

/// Least time between the starts of two reloads.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(50);

/// How long a request waits for a reload before taking the SQL path.
pub const RELOAD_WAIT: Duration = Duration::from_secs(2);

/// The outcome of reload number `.0` (the new state, or `None` if it failed).
type Reloaded = (u64, Option<Arc<ReplicaState>>);

/// The replica and its reloading (see the module docs).
pub struct Replica {
    memory_days: u32,
    current: RwLock<Option<Arc<ReplicaState>>>,
    /// A reload task is running.
    reloading: AtomicBool,
    /// A reload was asked for since the running one started.
    pending: AtomicBool,
    started: AtomicU64,
    done: watch::Sender<Reloaded>,
    last_start: Mutex<Option<Instant>>,
    checker: Arc<Checker>,
}

impl Replica {
    /// A replica of the last `memory_days` days (and today); 0 disables it.
    pub fn new(memory_days: u32) -> Self {
        Replica {
            memory_days,
            current: RwLock::new(None),
            reloading: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            started: AtomicU64::new(0),
            done: watch::Sender::new((0, None)),
            last_start: Mutex::new(None),
            checker: Arc::default(),
        }
    }

    /// False when `memory_days` is 0.
    pub fn enabled(&self) -> bool {
        self.memory_days > 0
    }

    /// The state loaded last, if any.
    pub fn current(&self) -> Option<Arc<ReplicaState>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    /// Reads a new state (keeping the batch rows when the batch version did not move) and
    /// installs it.
    pub async fn reload(&self, pool: &PgPool) -> Result<Arc<ReplicaState>, sqlx::Error> {
        let today = chrono::Utc::now().date_naive();
        let first_day = today
            .checked_sub_days(chrono::Days::new(u64::from(self.memory_days)))
            .unwrap_or(today);
        let state = Arc::new(load::load(pool, self.current(), first_day).await?);
        record_replica(&state);
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::clone(&state));
        }
        Ok(state)
    }

    /// Answers a series from the replica when it is the current state of the database (see the
    /// module docs); `None` means "use the SQL path".
    pub async fn series(self: &Arc<Self>, pool: &PgPool, q: &SeriesQuery) -> Option<ReplicaAnswer> {
        if !self.enabled() {
            return None;
        }
        let current = self.current();
        if let Some(c) = &current {
            if !c.covers(q) {
                metrics::counter!(m::REPLICA_FALLBACKS, "reason" => "outside_window").increment(1);
                return None;
            }
        }
        let snap = match self.checker.current(pool).await {
            Ok(snap) => snap,
            Err(e) => {
                // The SQL path answers (or reports the database's trouble as a 503).
                tracing::debug!(error = %e, "snapshot check failed");
                metrics::counter!(m::REPLICA_FALLBACKS, "reason" => "check_failed").increment(1);
                return None;
            }
        };
        if let Some(c) = current.as_ref().filter(|c| *c.snapshot == *snap) {
            metrics::counter!(m::REPLICA_ANSWERS).increment(1);
            return c.series(q);
        }
        // Something committed since the replica was read: wait for a reload that starts now
        // (its snapshot is later than this request's arrival), rather than sending a burst of
        // requests to Postgres; if it fails or is slow, the SQL path answers.
        let need = self.started.load(Ordering::SeqCst) + 1;
        let mut rx = self.done.subscribe();
        self.request_reload(pool);
        let waited = tokio::time::timeout(RELOAD_WAIT, async {
            loop {
                {
                    let got = rx.borrow_and_update();
                    if got.0 >= need {
                        return got.1.clone();
                    }
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match waited.ok().flatten().filter(|s| s.covers(q)) {
            Some(state) => {
                metrics::counter!(m::REPLICA_ANSWERS).increment(1);
                state.series(q)
            }
            None => {
                let reason = if current.is_some() {
                    "stale"
                } else {
                    "not_loaded"
                };
                metrics::counter!(m::REPLICA_FALLBACKS, "reason" => reason).increment(1);
                None
            }
        }
    }

    /// Makes sure a reload starts after this call: starts the reload task, or tells the running
    /// one to go round once more.
    fn request_reload(self: &Arc<Self>, pool: &PgPool) {
        self.pending.store(true, Ordering::SeqCst);
        if self.reloading.swap(true, Ordering::SeqCst) {
            return;
        }
        let (me, pool) = (Arc::clone(self), pool.clone());
        tokio::spawn(async move {
            loop {
                let since = me
                    .last_start
                    .lock()
                    .ok()
                    .and_then(|g| g.map(|t| t.elapsed()));
                if let Some(since) = since.filter(|s| *s < MIN_RELOAD_INTERVAL) {
                    tokio::time::sleep(MIN_RELOAD_INTERVAL - since).await;
                }
                if let Ok(mut g) = me.last_start.lock() {
                    *g = Some(Instant::now());
                }
                me.pending.store(false, Ordering::SeqCst);
                let k = me.started.fetch_add(1, Ordering::SeqCst) + 1;
                let state = match me.reload(&pool).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "replica reload failed; answering from SQL meanwhile");
                        None
                    }
                };
                drop(me.done.send_replace((k, state)));
                me.reloading.store(false, Ordering::SeqCst);
                // Asked again meanwhile, and no other task took over: go round once more.
                if !me.pending.load(Ordering::SeqCst) || me.reloading.swap(true, Ordering::SeqCst) {
                    break;
                }
            }
        });
    }
}

/// Publishes the size of a freshly loaded replica.
fn record_replica(r: &ReplicaState) {
    let (batch, realtime) = r.rows();
    metrics::gauge!(m::REPLICA_ROWS, "part" => "batch").set(batch as f64);
    metrics::gauge!(m::REPLICA_ROWS, "part" => "realtime").set(realtime as f64);
    metrics::gauge!(m::REPLICA_BYTES).set(r.bytes() as f64);
}
