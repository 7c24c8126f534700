//! Per-client rate limits of the FHIR API: a token bucket per caller, so one client's
//! runaway loop or bulk script cannot take the server from everyone else.
//!
//! - A caller who authenticates is counted by account (`Caller::user`): one person or
//!   backend client has one budget across connections and addresses.
//! - Requests whose credential fails are counted by network address, in a bucket of
//!   their own; once it is empty they are answered 429 before the credential is even
//!   checked, so a flood of made-up tokens costs no signature checks.
//!
//! Over the limit: 429 with an OperationOutcome (`throttled`) and `Retry-After` (whole
//! seconds until a request would be allowed again). Each bucket holds `burst` requests
//! and refills at `per_second`. The table of buckets is bounded: past [`MAX_KEYS`] callers
//! the full (idle) buckets are dropped, and if none is, a new caller is limited until
//! some are: memory stays bounded whatever the number of addresses.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

/// Callers tracked at most (over all shards).
pub const MAX_KEYS: usize = 100_000;
const SHARDS: usize = 16;

/// How many requests a client may make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

impl RateLimit {
    /// `per_second` sustained, with a burst of twice that (at least 1).
    pub fn per_second(per_second: u32) -> RateLimit {
        RateLimit {
            per_second: f64::from(per_second),
            burst: f64::from(per_second.saturating_mul(2).max(1)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
    hasher: RandomState,
    max_per_shard: usize,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter::with_capacity(limit, MAX_KEYS)
    }

    fn with_capacity(limit: RateLimit, max_keys: usize) -> RateLimiter {
        RateLimiter {
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from `key`'s bucket: `Ok` when allowed, `Err(seconds)` to wait
    /// before the next one would be.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, |b, limit| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                Ok(())
            } else {
                Err(wait_secs(b.tokens, limit))
            }
        })
    }

    /// Whether `key`'s bucket is empty, without taking from it: `Err(seconds)` when it is.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let shard = &self.shards[self.shard_of(key)];
        let map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(b) => {
                let tokens = refilled(*b, now, self.limit);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(wait_secs(tokens, self.limit))
                }
            }
            None => Ok(()),
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn with_bucket<T>(
        &self,
        key: &str,
        now: Instant,
        f: impl FnOnce(&mut Bucket, RateLimit) -> Result<T, u64>,
    ) -> Result<T, u64> {
        let limit = self.limit;
        let shard = &self.shards[self.shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(key) {
            b.tokens = refilled(*b, now, limit);
            b.at = now;
            return f(b, limit);
        }
        if map.len() >= self.max_per_shard {
            // Full buckets have been idle long enough to forget: a new bucket is full too.
            map.retain(|_, b| refilled(*b, now, limit) < limit.burst);
            if map.len() >= self.max_per_shard {
                return Err(1);
            }
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        f(b, limit)
    }

    /// Callers tracked now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn refilled(b: Bucket, now: Instant, limit: RateLimit) -> f64 {
    let secs = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + secs * limit.per_second).min(limit.burst)
}

/// Whole seconds until `tokens` reaches one (at least 1: `Retry-After` counts seconds).
fn wait_secs(tokens: f64, limit: RateLimit) -> u64 {
    if limit.per_second <= 0.0 {
        return 60;
    }
    (((1.0 - tokens) / limit.per_second).ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 4.0,
        });
        let t0 = Instant::now();
        for i in 0..4 {
            assert_eq!(l.take("a", t0), Ok(()), "request {i} of the burst");
        }
        // Empty: one token comes back after half a second, so wait 1 s (whole seconds).
        assert_eq!(l.take("a", t0), Err(1));
        // Another caller has a budget of their own.
        assert_eq!(l.take("b", t0), Ok(()));
        // Half a second later, one more request; the next must wait again.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.take("a", t1), Ok(()));
        assert_eq!(l.take("a", t1), Err(1));
        // After a long pause the bucket is full again, never fuller than the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(l.take("a", t2), Ok(()));
        }
        assert!(l.take("a", t2).is_err());
    }

    #[test]
    fn retry_after_counts_the_seconds_to_the_next_token() {
        let l = RateLimiter::new(RateLimit {
            per_second: 0.25,
            burst: 1.0,
        });
        let t0 = Instant::now();
        assert_eq!(l.take("slow", t0), Ok(()));
        // One token every 4 s.
        assert_eq!(l.take("slow", t0), Err(4));
        assert_eq!(l.check("slow", t0 + Duration::from_secs(1)), Err(3));
        assert_eq!(l.check("slow", t0 + Duration::from_secs(4)), Ok(()));
    }

    #[test]
    fn check_does_not_take() {
        let l = RateLimiter::new(RateLimit {
            per_second: 1.0,
            burst: 1.0,
        });
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.check("a", t0), Ok(()));
        }
        assert_eq!(l.take("a", t0), Ok(()));
        assert_eq!(l.check("a", t0), Err(1));
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = RateLimiter::with_capacity(RateLimit::per_second(1), 64);
        let t0 = Instant::now();
        // Many callers, each taking a request: their buckets are not full, so they stay
        // until the table is full; then new callers are limited, and the table does not
        // grow past its bound.
        let mut limited = 0;
        for i in 0..1000 {
            if l.take(&format!("10.0.{}.{}", i / 256, i % 256), t0)
                .is_err()
            {
                limited += 1;
            }
        }
        assert!(l.len() <= 64, "{} buckets", l.len());
        assert!(limited >= 1000 - 64, "{limited} limited");
        // Once they refill (idle), they are forgotten to make room.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.take("new caller", later), Ok(()));
    }
}
