//! The per-request snapshot check, shared: requests that arrive while a check is running wait
//! for the next one, which starts after they arrived, so one statement serves many requests and
//! each still sees every transaction committed before it arrived.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;

/// The outcome of check number `.0`: the snapshot identity, or why it failed.
type Outcome = (u64, Result<Arc<str>, Arc<str>>);

/// Reads the current snapshot's identity (`playsource_store::views::current_snapshot`) for many
/// requests at once.
pub(crate) struct Checker {
    started: AtomicU64,
    running: AtomicBool,
    done: watch::Sender<Outcome>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            started: AtomicU64::new(0),
            running: AtomicBool::new(false),
            done: watch::Sender::new((0, Err(Arc::from("no check yet")))),
        }
    }
}

impl Checker {
    /// The identity of a snapshot taken after this call began; `Err` carries the database error.
    pub(crate) async fn current(self: &Arc<Self>, pool: &PgPool) -> Result<Arc<str>, Arc<str>> {
        let need = self.started.load(Ordering::SeqCst) + 1;
        let mut rx = self.done.subscribe();
        loop {
            {
                let got = rx.borrow_and_update();
                if got.0 >= need {
                    return got.1.clone();
                }
            }
            if self
                .running
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                // In a task of its own, so a cancelled request cannot strand the waiters.
                let (me, pool) = (Arc::clone(self), pool.clone());
                tokio::spawn(async move {
                    let k = me.started.fetch_add(1, Ordering::SeqCst) + 1;
                    let res = match playsource_store::views::current_snapshot(&pool).await {
                        Ok(snap) => Ok(Arc::from(snap)),
                        Err(e) => Err(Arc::from(crate::error::from_store(e).to_string())),
                    };
                    // Free the runner slot first: a waiter woken by the result may start the next.
                    me.running.store(false, Ordering::SeqCst);
                    drop(me.done.send_replace((k, res)));
                });
            }
            if rx.changed().await.is_err() {
                return Err(Arc::from("the snapshot checker stopped"));
            }
        }
    }
}
