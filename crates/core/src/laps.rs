//! A stopwatch for the phases of one operation (pause, restore, …), so a
//! debug log line can say where its time went: `Laps::start()`, then
//! `lap("name")` after each phase; `Display` prints `name=12ms …`.

use std::fmt;
use std::time::{Duration, Instant};

/// Phases timed so far, in order.
#[derive(Debug)]
pub struct Laps {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Laps {
    pub fn start() -> Self {
        Self {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the phase `name` now.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }
}

impl fmt::Display for Laps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, d)) in self.laps.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name}={:.1}ms", d.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_each_phase_in_order() {
        let mut laps = Laps::start();
        laps.lap("a");
        std::thread::sleep(Duration::from_millis(2));
        laps.lap("b");
        let text = laps.to_string();
        let (a, b) = text.split_once(' ').unwrap();
        assert!(a.starts_with("a=") && a.ends_with("ms"), "{text}");
        let b_ms: f64 = b
            .trim_start_matches("b=")
            .trim_end_matches("ms")
            .parse()
            .unwrap();
        assert!(b_ms >= 2.0, "{text}");
    }
}
