//! How many ready sandboxes a pool aims for: its target follows demand.
//!
//! Model (times in seconds on a monotonic clock):
//! - `rate`: creates per second asking for the pool's template, an
//!   exponentially weighted moving average with time constant
//!   [`RATE_TAU_S`]; every create adds `1 / RATE_TAU_S` and the sum decays
//!   by `exp(-dt / RATE_TAU_S)`.
//! - `burst`: the most creates seen within one [`BURST_WINDOW_S`] window,
//!   halved every [`BURST_HALF_LIFE_S`] after it was seen, so headroom for
//!   a burst stays for a while and then fades.
//! - the pool must cover what arrives while a replacement boots (`refill_s`,
//!   the measured boot time): `rate * refill_s` on average, plus three
//!   standard deviations of a Poisson arrival count, `3 * sqrt(rate *
//!   refill_s)`.
//! - `target = clamp(ceil(max(rate*refill_s + 3*sqrt(rate*refill_s), burst)), min, max)`.

/// Time constant of the create-rate average.
pub const RATE_TAU_S: f64 = 60.0;
/// The window a burst is counted in.
pub const BURST_WINDOW_S: f64 = 1.0;
/// Half-life of the remembered burst.
pub const BURST_HALF_LIFE_S: f64 = 300.0;

/// One pool's demand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forecast {
    /// The rate average as of `last`.
    rate: f64,
    last: f64,
    /// The remembered burst as of `burst_at`.
    burst: f64,
    burst_at: f64,
    /// The current window's start and count.
    window_start: f64,
    window_count: u32,
}

impl Forecast {
    /// Counts one create at time `t` (seconds).
    pub fn record(&mut self, t: f64) {
        self.rate = self.rate_at(t) + 1.0 / RATE_TAU_S;
        self.last = t.max(self.last);
        if t - self.window_start >= BURST_WINDOW_S {
            self.close_window(t);
            self.window_start = t;
            self.window_count = 0;
        }
        self.window_count += 1;
    }

    /// The create rate at `t`, per second.
    pub fn rate_at(&self, t: f64) -> f64 {
        self.rate * (-(t - self.last).max(0.0) / RATE_TAU_S).exp()
    }

    /// The remembered burst at `t`, the current window's count included.
    pub fn burst_at(&self, t: f64) -> f64 {
        let decayed = self.burst * 0.5f64.powf((t - self.burst_at).max(0.0) / BURST_HALF_LIFE_S);
        decayed.max(f64::from(self.window_count))
    }

    fn close_window(&mut self, t: f64) {
        self.burst = self.burst_at(t);
        self.burst_at = t;
    }

    /// The pool's target at `t` when a replacement takes `refill_s` to
    /// boot, bounded by `min` and `max`.
    pub fn target(&self, t: f64, refill_s: f64, min: u32, max: u32) -> u32 {
        let expected = self.rate_at(t) * refill_s.max(0.0);
        let want = (expected + 3.0 * expected.sqrt())
            .max(self.burst_at(t))
            .ceil();
        // `want` is finite and non-negative; `as` saturates at u32::MAX.
        (want as u32).clamp(min, max.max(min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_demand_the_target_is_the_minimum() {
        let f = Forecast::default();
        assert_eq!(f.target(0.0, 0.3, 0, 10), 0);
        assert_eq!(f.target(1000.0, 0.3, 2, 10), 2);
    }

    #[test]
    fn a_steady_rate_asks_for_what_arrives_during_a_refill_plus_headroom() {
        let mut f = Forecast::default();
        // Ten creates a second for five minutes.
        for i in 0..3000 {
            f.record(f64::from(i) * 0.1);
        }
        let t = 300.0;
        let rate = f.rate_at(t);
        assert!((rate - 10.0).abs() < 0.1, "rate {rate}");
        // 10/s for a 1 s refill: 10 + 3*sqrt(10) = 19.5, and the burst of
        // ten in a second is lower.
        assert_eq!(f.target(t, 1.0, 0, 100), 20);
        // The maximum bounds it.
        assert_eq!(f.target(t, 1.0, 0, 8), 8);
    }

    #[test]
    fn a_burst_is_remembered_and_fades() {
        let mut f = Forecast::default();
        for _ in 0..30 {
            f.record(10.0);
        }
        f.record(12.0);
        // Right after, the burst of 30 sets the target.
        assert_eq!(f.target(12.0, 0.3, 0, 100), 30);
        // Half of it five minutes later, and next to nothing after an hour.
        let later = f.target(12.0 + BURST_HALF_LIFE_S, 0.3, 0, 100);
        assert!((15..=16).contains(&later), "{later}");
        assert!(f.target(3600.0, 0.3, 0, 100) <= 1);
        assert_eq!(f.target(3600.0, 0.3, 3, 100), 3);
    }

    #[test]
    fn the_rate_decays_without_creates() {
        let mut f = Forecast::default();
        for i in 0..600 {
            f.record(f64::from(i));
        }
        let now = f.rate_at(600.0);
        let later = f.rate_at(600.0 + RATE_TAU_S);
        assert!((later / now - (-1.0f64).exp()).abs() < 1e-9);
    }

    #[test]
    fn min_above_max_is_read_as_min() {
        assert_eq!(Forecast::default().target(0.0, 1.0, 5, 3), 5);
    }
}
