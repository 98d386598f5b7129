//! Riding through outages: an operation that fails for a reason that may pass (Postgres
//! restarting, the broker restarting, a dropped connection) is retried with exponential backoff
//! until it succeeds, the retry budget (`--retry-timeout`) is spent, or shutdown is requested;
//! then the last error stops the stream. Errors that will not pass by waiting (a missing table,
//! a full disk, a bad configuration) stop it at once.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics as m;

/// First pause after a failure; doubled after each further failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// How long transient failures are retried, and what ends the retrying early.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total time one operation may keep failing before the stream stops.
    pub budget: Duration,
    /// Shutdown: stop retrying and report the last error.
    pub cancel: CancellationToken,
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails permanently, or the budget is spent. `op` names
    /// the operation in logs and in the `playsource_stream_retries_total` metric.
    pub async fn run<T, F, Fut>(&self, op: &'static str, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut backoff = Backoff::new(self);
        let mut n = 0u32;
        loop {
            match attempt(n).await {
                Ok(v) => {
                    if n > 0 {
                        tracing::info!(operation = op, attempts = n + 1, "recovered");
                    }
                    return Ok(v);
                }
                Err(e) if backoff.again(op, &e).await => n += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Pauses between attempts of one operation.
pub struct Backoff<'a> {
    policy: &'a RetryPolicy,
    started: Instant,
    pause: Duration,
}

impl<'a> Backoff<'a> {
    /// A fresh backoff: the budget starts now.
    pub fn new(policy: &'a RetryPolicy) -> Backoff<'a> {
        Backoff {
            policy,
            started: Instant::now(),
            pause: FIRST_PAUSE,
        }
    }

    /// After a failure `err` of `op`: whether to try again — only for a transient error, after
    /// the pause ([`Self::wait`]).
    pub async fn again(&mut self, op: &'static str, err: &Error) -> bool {
        err.is_transient() && self.wait(op, err).await
    }

    /// After a failure `err` of `op`: waits before the next attempt and returns true, or returns
    /// false when the budget is spent or shutdown was requested.
    async fn wait(&mut self, op: &'static str, err: &Error) -> bool {
        let spent = self.started.elapsed();
        if spent >= self.policy.budget || self.policy.cancel.is_cancelled() {
            tracing::error!(operation = op, error = %err, spent_secs = spent.as_secs(), "giving up");
            return false;
        }
        let pause = self.pause.min(self.policy.budget - spent);
        tracing::warn!(operation = op, error = %err, retry_in_ms = pause.as_millis() as u64, "failed; retrying");
        ::metrics::counter!(m::RETRIES, "operation" => op).increment(1);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        tokio::select! {
            _ = tokio::time::sleep(pause) => true,
            _ = self.policy.cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy(budget_ms: u64) -> RetryPolicy {
        RetryPolicy {
            budget: Duration::from_millis(budget_ms),
            cancel: CancellationToken::new(),
        }
    }

    fn transient() -> Error {
        Error::Kafka {
            action: "test",
            cause: rdkafka::error::KafkaError::Canceled,
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let got = policy(10_000)
            .run("test", |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(transient())
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(got.ok(), Some(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let got: Result<(), Error> = policy(10_000)
            .run("test", |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Error::Config("bad".into())) }
            })
            .await;
        assert!(matches!(got, Err(Error::Config(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_budget_ends_retrying_with_the_last_error() {
        let started = Instant::now();
        let got: Result<(), Error> = policy(300)
            .run("test", |_| async { Err(transient()) })
            .await;
        assert!(matches!(got, Err(Error::Kafka { .. })));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn shutdown_ends_retrying() {
        let p = policy(60_000);
        p.cancel.cancel();
        let got: Result<(), Error> = p.run("test", |_| async { Err(transient()) }).await;
        assert!(got.is_err());
    }
}
