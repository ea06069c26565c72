//! Per-key rate limits (SPEC §6 `RESOURCE_EXHAUSTED`): a token bucket per
//! verified signing key, so one agency's runaway script cannot crowd out the
//! others. Applied after signature verification, so nobody can spend another
//! key's budget.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle ones are dropped: bounds memory.
const BUCKETS_MAX: usize = 100_000;

/// A token bucket per key.
#[derive(Debug)]
pub struct RateLimiter {
    events_per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `events_per_second` of 0 turns limiting off.
    pub fn new(events_per_second: f64, burst: f64) -> Self {
        RateLimiter {
            events_per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one event from `key`'s bucket; false when it is empty.
    pub fn allow(&self, key: &[u8; 32]) -> bool {
        if self.events_per_second <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            // Full buckets are the same as no bucket: dropping them is free.
            let burst = self.burst;
            let rate = self.events_per_second;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(*key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.events_per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_is_limited_and_others_are_not() {
        let limiter = RateLimiter::new(0.001, 3.0);
        let (a, b) = ([1; 32], [2; 32]);
        assert!(limiter.allow(&a));
        assert!(limiter.allow(&a));
        assert!(limiter.allow(&a));
        assert!(!limiter.allow(&a));
        assert!(limiter.allow(&b));
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let limiter = RateLimiter::new(0.0, 1.0);
        assert!((0..10_000).all(|_| limiter.allow(&[7; 32])));
    }
}
