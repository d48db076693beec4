//! Percentiles and result rows.

use std::time::Duration;

use serde::Serialize;

/// Nearest-rank percentile of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One line of results.
#[derive(Debug, Serialize)]
pub struct Row {
    pub figure: String,
    pub unit: &'static str,
    pub warren: f64,
    /// The raw engine's figure, when there is one to compare with.
    pub raw: Option<f64>,
}

impl Row {
    pub fn new(
        figure: impl Into<String>,
        unit: &'static str,
        warren: f64,
        raw: Option<f64>,
    ) -> Self {
        Self {
            figure: figure.into(),
            unit,
            warren,
            raw,
        }
    }

    pub fn markdown(&self) -> String {
        let raw = self
            .raw
            .map(|r| format!("{r:.1} {}", self.unit))
            .unwrap_or_else(|| "—".into());
        let ratio = self
            .raw
            .filter(|r| *r > 0.0)
            .map(|r| format!("{:.2}×", self.warren / r))
            .unwrap_or_else(|| "—".into());
        format!(
            "| {} | {:.1} {} | {raw} | {ratio} |",
            self.figure, self.warren, self.unit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut s, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut s, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
    }
}
