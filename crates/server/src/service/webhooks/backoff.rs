//! When a failed delivery is tried again: exponential backoff with jitter
//! (the first retry after [`FIRST_RETRY`], each later one six times the
//! last, at most [`MAX_DELAY`], each scaled by a random 0.8-1.2) until
//! [`WINDOW`] after the first attempt; a retry that would fall later is
//! not made and the delivery fails.

use std::time::Duration;

use time::OffsetDateTime;
use warren_store::AttemptNext;

/// The delay before the first retry.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest delay between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// How long after its first attempt a delivery is still tried.
pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The delay after `failures` failed attempts (from 1); `jitter` in
/// `[0, 1)` scales it by 0.8-1.2.
pub fn delay(failures: u32, first: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let base = first
        .saturating_mul(6u32.saturating_pow(exp))
        .min(MAX_DELAY);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// What follows the `failures`-th failed attempt made at `now`.
pub fn after_failure(
    first_attempt: OffsetDateTime,
    now: OffsetDateTime,
    failures: u32,
    first: Duration,
    jitter: f64,
) -> AttemptNext {
    let at = now + delay(failures, first, jitter);
    if at > first_attempt + WINDOW {
        AttemptNext::Failed
    } else {
        AttemptNext::Retry(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_six_fold_to_the_cap_within_the_jitter() {
        let mid = |n| delay(n, FIRST_RETRY, 0.5);
        assert_eq!(mid(1), Duration::from_secs(5));
        assert_eq!(mid(2), Duration::from_secs(30));
        assert_eq!(mid(3), Duration::from_secs(180));
        assert_eq!(mid(5), MAX_DELAY);
        assert_eq!(mid(40), MAX_DELAY);
        assert_eq!(delay(1, FIRST_RETRY, 0.0), Duration::from_secs(4));
        assert_eq!(delay(1, FIRST_RETRY, 1.0), Duration::from_secs(6));
    }

    #[test]
    fn retries_stop_a_day_after_the_first_attempt() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            after_failure(t0, t0, 1, FIRST_RETRY, 0.5),
            AttemptNext::Retry(t0 + Duration::from_secs(5))
        );
        let late = t0 + WINDOW - Duration::from_secs(60);
        assert_eq!(
            after_failure(t0, late, 20, FIRST_RETRY, 0.5),
            AttemptNext::Failed
        );
        // Attempts until the window closes: a bounded number.
        let (mut now, mut n) = (t0, 0);
        while let AttemptNext::Retry(at) = after_failure(t0, now, n + 1, FIRST_RETRY, 0.5) {
            now = at;
            n += 1;
        }
        assert!((20..40).contains(&n), "{n} retries");
    }
}
