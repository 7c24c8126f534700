//! Login throttling: exponential lock-out after repeated failures, as a pure state machine.
//!
//! The caller chooses the keys (typically one per account, `user:alice`, and one per client
//! address, `ip:192.0.2.7`, checking both) and supplies the time in Unix seconds. The flow is:
//! [`Throttle::check`] before looking at the password, refusing while it says to wait (and
//! recording nothing for the refused attempt); [`Throttle::record_failure`] after a wrong
//! password or code; [`Throttle::record_success`] after a correct one.
//!
//! The first [`ThrottlePolicy::free_failures`] failures cost nothing, so a person who mistypes
//! is not slowed down. Each failure after that locks the key for twice as long as the one
//! before, from [`ThrottlePolicy::base_delay_secs`] up to [`ThrottlePolicy::max_delay_secs`].
//! With the defaults a guesser gets 5 tries, then 10 more spread over about 17 minutes
//! (waits of 1, 2, 4 … 512 seconds), then one per 15 minutes. A key with no failure for [`ThrottlePolicy::forget_after_secs`] starts
//! afresh.
//!
//! Memory is bounded: at most `max_keys` keys are tracked. Keys that have been forgotten are
//! dropped as time passes, and when the table is still full the least recently failed key is
//! evicted. Under a flood of distinct keys the oldest lock-outs are lost, which is why the
//! per-account key matters: an attacker cannot mint new accounts to guess.

use std::collections::{BTreeMap, HashMap};

/// How many keys a [`Throttle`] made with [`Throttle::new`] tracks at most.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The throttling rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed before any lock-out (default 5).
    pub free_failures: u32,
    /// Lock-out after the first failure beyond the free ones, in seconds (default 1).
    pub base_delay_secs: u64,
    /// Longest lock-out, in seconds (default 900, 15 minutes).
    pub max_delay_secs: u64,
    /// Seconds without a failure after which a key's count starts again (default 3600).
    pub forget_after_secs: u64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 5,
            base_delay_secs: 1,
            max_delay_secs: 900,
            forget_after_secs: 3600,
        }
    }
}

impl ThrottlePolicy {
    /// The lock-out that follows the `failures`-th consecutive failure.
    fn delay_after(&self, failures: u32) -> u64 {
        match failures.checked_sub(self.free_failures) {
            None | Some(0) => 0,
            Some(beyond) => {
                let factor = 1u64.checked_shl(beyond - 1).unwrap_or(u64::MAX);
                self.base_delay_secs
                    .saturating_mul(factor)
                    .min(self.max_delay_secs)
            }
        }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: u64,
    locked_until: u64,
    /// Position in `Throttle::order`, renewed at each failure.
    seq: u64,
}

/// Failure counts and lock-outs per key. See the [module docs](self).
#[derive(Debug)]
pub struct Throttle {
    policy: ThrottlePolicy,
    max_keys: usize,
    entries: HashMap<String, Entry>,
    /// Keys by the sequence number of their latest failure, oldest first: the eviction and
    /// pruning order.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl Throttle {
    /// A throttle tracking at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle::with_max_keys(policy, DEFAULT_MAX_KEYS)
    }

    /// A throttle tracking at most `max_keys` keys (at least 1).
    pub fn with_max_keys(policy: ThrottlePolicy, max_keys: usize) -> Throttle {
        Throttle {
            policy,
            max_keys: max_keys.max(1),
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The rules in force.
    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `Ok` if `key` may try now, or `Err(seconds)` to wait before it may.
    pub fn check(&self, key: &str, now: u64) -> Result<(), u64> {
        match self.entries.get(key) {
            Some(entry) if now < entry.locked_until => Err(entry.locked_until - now),
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt for `key` at `now`, locking it if the count is past the free
    /// failures.
    pub fn record_failure(&mut self, key: &str, now: u64) {
        self.prune(now);
        let seq = self.next_seq;
        self.next_seq += 1;

        let policy = self.policy;
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.seq);
            if is_forgotten(&policy, entry, now) {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            let until = now.saturating_add(policy.delay_after(entry.failures));
            entry.locked_until = entry.locked_until.max(until);
            entry.seq = seq;
        } else {
            while self.entries.len() >= self.max_keys {
                let Some((_, oldest)) = self.order.pop_first() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            let entry = Entry {
                failures: 1,
                last_failure: now,
                locked_until: now.saturating_add(policy.delay_after(1)),
                seq,
            };
            self.entries.insert(key.to_owned(), entry);
        }
        self.order.insert(seq, key.to_owned());
    }

    /// Forgets `key`'s failures after a successful attempt.
    pub fn record_success(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.seq);
        }
    }

    /// Drops keys that are forgotten and not locked, oldest first, stopping at the first one
    /// still live; each failure pays for the entries it prunes, so the work is amortised.
    fn prune(&mut self, now: u64) {
        while let Some((_, key)) = self.order.first_key_value() {
            let forgotten = self
                .entries
                .get(key)
                .is_none_or(|entry| is_forgotten(&self.policy, entry, now));
            if !forgotten {
                break;
            }
            if let Some((_, key)) = self.order.pop_first() {
                self.entries.remove(&key);
            }
        }
    }
}

/// Whether `entry` has gone `forget_after_secs` without a failure and is no longer locked.
fn is_forgotten(policy: &ThrottlePolicy, entry: &Entry, now: u64) -> bool {
    now.saturating_sub(entry.last_failure) >= policy.forget_after_secs && now >= entry.locked_until
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "user:alice";

    fn fail_times(throttle: &mut Throttle, key: &str, now: u64, times: u32) {
        for _ in 0..times {
            throttle.record_failure(key, now);
        }
    }

    #[test]
    fn default_policy_has_the_documented_values() {
        let policy = ThrottlePolicy::default();
        assert_eq!(policy.free_failures, 5);
        assert_eq!(policy.base_delay_secs, 1);
        assert_eq!(policy.max_delay_secs, 900);
        assert_eq!(policy.forget_after_secs, 3600);
    }

    #[test]
    fn unknown_key_may_try() {
        let throttle = Throttle::new(ThrottlePolicy::default());
        assert_eq!(throttle.check(KEY, 1_000), Ok(()));
        assert!(throttle.is_empty());
    }

    #[test]
    fn free_failures_do_not_lock() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        for i in 0..5 {
            throttle.record_failure(KEY, 1_000 + i);
            assert_eq!(throttle.check(KEY, 1_000 + i), Ok(()), "failure {}", i + 1);
        }
    }

    #[test]
    fn each_further_failure_doubles_the_lock_out_up_to_the_cap() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        let now = 10_000;
        fail_times(&mut throttle, KEY, now, 5);
        // (failure number, expected lock-out): 1, 2, 4 … 512, then capped at 900.
        let expected = [
            (6, 1),
            (7, 2),
            (8, 4),
            (9, 8),
            (10, 16),
            (11, 32),
            (12, 64),
            (13, 128),
            (14, 256),
            (15, 512),
            (16, 900),
            (17, 900),
        ];
        for (failure, delay) in expected {
            // Each attempt comes when the previous lock-out has just ended.
            let at = match throttle.check(KEY, now) {
                Ok(()) => now,
                Err(wait) => now + wait,
            };
            throttle.record_failure(KEY, at);
            assert_eq!(throttle.check(KEY, at), Err(delay), "failure {failure}");
            assert_eq!(
                throttle.check(KEY, at + delay - 1),
                Err(1),
                "failure {failure}"
            );
            assert_eq!(throttle.check(KEY, at + delay), Ok(()), "failure {failure}");
        }
    }

    #[test]
    fn delay_computation_cannot_overflow() {
        let policy = ThrottlePolicy {
            free_failures: 0,
            base_delay_secs: u64::MAX / 2,
            max_delay_secs: u64::MAX,
            forget_after_secs: u64::MAX,
        };
        for failures in [1, 2, 3, 64, 65, 1_000, u32::MAX] {
            assert!(policy.delay_after(failures) >= u64::MAX / 2, "{failures}");
        }
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        fail_times(&mut throttle, KEY, u64::MAX - 10, 300);
        assert_eq!(throttle.check(KEY, u64::MAX - 10), Err(10)); // saturates at the end of time
    }

    #[test]
    fn lock_out_holds_at_the_cap_however_many_failures() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        fail_times(&mut throttle, KEY, 5_000, 200);
        assert_eq!(throttle.check(KEY, 5_000), Err(900));
    }

    #[test]
    fn success_clears_the_count() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        fail_times(&mut throttle, KEY, 1_000, 7);
        assert_eq!(throttle.check(KEY, 1_000), Err(2));
        throttle.record_success(KEY);
        assert_eq!(throttle.check(KEY, 1_000), Ok(()));
        assert!(throttle.is_empty());
        // Counting starts again from one: five more failures are free.
        fail_times(&mut throttle, KEY, 1_001, 5);
        assert_eq!(throttle.check(KEY, 1_001), Ok(()));
        throttle.record_failure(KEY, 1_001);
        assert_eq!(throttle.check(KEY, 1_001), Err(1));
    }

    #[test]
    fn count_resets_after_forget_after_secs_without_failures() {
        let policy = ThrottlePolicy::default();
        // (seconds between the fifth and the sixth failure, expected check after the sixth)
        let cases = [(3_599, Err(1)), (3_600, Ok(())), (100_000, Ok(()))];
        for (gap, expected) in cases {
            let mut throttle = Throttle::new(policy);
            fail_times(&mut throttle, KEY, 1_000, 5);
            throttle.record_failure(KEY, 1_000 + gap);
            assert_eq!(throttle.check(KEY, 1_000 + gap), expected, "gap {gap}");
        }
    }

    #[test]
    fn keys_are_independent() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        fail_times(&mut throttle, "user:alice", 1_000, 6);
        assert_eq!(throttle.check("user:alice", 1_000), Err(1));
        assert_eq!(throttle.check("user:bob", 1_000), Ok(()));
        assert_eq!(throttle.check("ip:192.0.2.7", 1_000), Ok(()));
        throttle.record_success("user:bob");
        assert_eq!(throttle.check("user:alice", 1_000), Err(1));
    }

    #[test]
    fn table_is_bounded_and_evicts_the_least_recently_failed_key() {
        let policy = ThrottlePolicy {
            free_failures: 0,
            ..ThrottlePolicy::default()
        };
        let mut throttle = Throttle::with_max_keys(policy, 3);
        throttle.record_failure("a", 1_000);
        throttle.record_failure("b", 1_000);
        throttle.record_failure("c", 1_000);
        // "a" fails again, so "b" becomes the oldest.
        throttle.record_failure("a", 1_000);
        throttle.record_failure("d", 1_000);
        assert_eq!(throttle.len(), 3);
        assert_eq!(throttle.check("b", 1_000), Ok(()), "b was evicted");
        for key in ["a", "c", "d"] {
            assert!(throttle.check(key, 1_000).is_err(), "{key} still locked");
        }

        for i in 0..1_000 {
            throttle.record_failure(&format!("ip:{i}"), 1_000);
            assert!(throttle.len() <= 3);
        }
    }

    #[test]
    fn forgotten_keys_are_dropped_as_time_passes() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        for i in 0..50 {
            throttle.record_failure(&format!("ip:{i}"), 1_000);
        }
        assert_eq!(throttle.len(), 50);
        throttle.record_failure("ip:late", 1_000 + 3_600);
        assert_eq!(throttle.len(), 1);
    }

    #[test]
    fn a_key_still_locked_is_not_pruned() {
        let policy = ThrottlePolicy {
            free_failures: 0,
            base_delay_secs: 10_000,
            max_delay_secs: 10_000,
            forget_after_secs: 60,
        };
        let mut throttle = Throttle::new(policy);
        throttle.record_failure(KEY, 0);
        throttle.record_failure("other", 5_000);
        assert_eq!(throttle.check(KEY, 5_000), Err(5_000));
        assert_eq!(throttle.len(), 2);
    }

    #[test]
    fn clock_going_backwards_does_not_panic_or_unlock() {
        let mut throttle = Throttle::new(ThrottlePolicy::default());
        fail_times(&mut throttle, KEY, 2_000, 6);
        throttle.record_failure(KEY, 1_000);
        assert!(throttle.check(KEY, 1_000).is_err());
        assert!(throttle.check(KEY, 2_000).is_err());
        assert_eq!(throttle.check(KEY, 0), Err(2_001));
    }
}
