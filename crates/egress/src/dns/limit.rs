//! The per-sandbox query rate: a token bucket per source address,
//! [`QUERY_RATE`] tokens a second up to [`QUERY_BURST`]; every message a
//! sandbox sends (UDP or TCP, well-formed or not) takes one. A message
//! that finds the bucket empty is refused without contacting the upstream;
//! the first refusal of each second is reported (becomes an event), the
//! others are only counted, so a flood cannot flood the event queue either.
//!
//! Buckets are keyed by sandbox address, so their number is bounded by the
//! address pool.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sustained queries a second one sandbox may send.
pub const QUERY_RATE: u32 = 100;
/// Queries one sandbox may send at once after being quiet.
pub const QUERY_BURST: u32 = 200;
/// At most one reported refusal per sandbox in this time.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the bucket says to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    Pass,
    /// Over the rate; `report` for the first refusal of a second, with
    /// the number of refusals not reported since the last report.
    Limited {
        report: bool,
        unreported: u64,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    reported: Option<Instant>,
    unreported: u64,
}

/// Buckets of every sandbox that asked.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Ipv4Addr, Bucket>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(QUERY_RATE, QUERY_BURST)
    }
}

impl Limiter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for one message from `source` at `now`.
    pub(crate) fn take(&self, source: Ipv4Addr, now: Instant) -> Take {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            reported: None,
            unreported: 0,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Take::Pass;
        }
        let report = b
            .reported
            .is_none_or(|r| now.saturating_duration_since(r) >= REPORT_EVERY);
        if report {
            b.reported = Some(now);
            let unreported = std::mem::take(&mut b.unreported);
            Take::Limited {
                report: true,
                unreported,
            }
        } else {
            b.unreported += 1;
            Take::Limited {
                report: false,
                unreported: b.unreported,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_refusals_are_reported_once_a_second() {
        let l = Limiter::new(10, 20);
        let a = Ipv4Addr::new(10, 0, 0, 2);
        let b = Ipv4Addr::new(10, 0, 0, 6);
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(l.take(a, t0), Take::Pass);
        }
        assert_eq!(
            l.take(a, t0),
            Take::Limited {
                report: true,
                unreported: 0
            }
        );
        assert_eq!(
            l.take(a, t0),
            Take::Limited {
                report: false,
                unreported: 1
            }
        );
        // Another sandbox has its own bucket.
        assert_eq!(l.take(b, t0), Take::Pass);
        // 100 ms later one token (10/s) has come back, not more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.take(a, t1), Take::Pass);
        assert!(matches!(l.take(a, t1), Take::Limited { report: false, .. }));
        // A second after the last report the next refusal is reported,
        // with the count of those that were not.
        let t2 = t1 + Duration::from_millis(1000);
        for _ in 0..10 {
            assert_eq!(l.take(a, t2), Take::Pass);
        }
        assert_eq!(
            l.take(a, t2),
            Take::Limited {
                report: true,
                unreported: 2
            }
        );
    }
}
