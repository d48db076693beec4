//! The daemon's wall clock. Every expiry is decided against it: sandbox
//! lifetimes and idle times (the reaper), paused retention, sandbox tokens,
//! access grants and API keys. The daemon runs on the system clock; tests
//! run on a [`ManualClock`] and move time instead of sleeping.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time, cheap to clone.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<Mutex<OffsetDateTime>>),
}

impl Clock {
    /// The system's UTC clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.0 {
            Source::System => OffsetDateTime::now_utc(),
            Source::Manual(t) => *t.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// A clock that stands still until told to move.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock standing at the system's current time.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(OffsetDateTime::now_utc())))
    }

    /// The [`Clock`] this one drives.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let start = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        manual.advance(Duration::hours(2));
        assert_eq!(clock.now(), start + Duration::hours(2));
        assert!(Clock::system().now() >= start);
    }
}
