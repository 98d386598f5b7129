//! A token bucket that paces output to a number of messages per second.

use std::time::{Duration, Instant};

/// Paces callers to `rate` messages per second, with bursts of up to a tenth of a second.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket for `rate` (> 0) messages per second, starting full.
    pub fn new(rate: f64) -> TokenBucket {
        let burst = (rate / 10.0).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token; returns how long to wait first (zero when a token is there).
    pub fn take(&mut self) -> Duration {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_to_the_rate() {
        let mut b = TokenBucket::new(1_000.0);
        let start = Instant::now();
        for _ in 0..300 {
            let wait = b.take();
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        // 100 burst tokens, then 200 at 1000/s: about 0.2 s.
        let took = start.elapsed().as_secs_f64();
        assert!((0.15..1.0).contains(&took), "{took}");
    }
}
