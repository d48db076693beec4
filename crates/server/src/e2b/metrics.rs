//! `GET /sandboxes/{id}/metrics`: the sandbox's resource use.
//!
//! Warren keeps no history of samples: each call takes one, now, from the
//! runtime's cgroup counters (CPU as the average since the sandbox started).
//! E2B's `start` and `end` (Unix seconds, both optional) ask for the samples
//! of an interval; the one sample is returned when the interval overlaps the
//! sandbox's life so far (from its creation, to the second, until now),
//! and none otherwise, e.g. for an interval that ended before the sandbox
//! existed. `start` after `end`, a negative or unreadable value, or an
//! unknown key is a 400.

use std::borrow::Cow;

use axum::Json;
use axum::extract::State;
use time::OffsetDateTime;
use warren_core::{WarrenError, rfc3339};

use super::error::E2bResult;
use super::query::{self, E2bQuery, QueryParams};
use super::wire::SandboxMetric;
use crate::error::AppError;
use crate::extract::SandboxPath;
use crate::state::AppState;

/// The interval asked for, in Unix seconds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Range {
    start: Option<i64>,
    end: Option<i64>,
}

impl QueryParams for Range {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        let seconds = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| {
                    WarrenError::invalid(format!(
                        "{key} must be a Unix time in whole seconds, got '{value}'"
                    ))
                })
        };
        match key {
            "start" => self.start = Some(seconds()?),
            "end" => self.end = Some(seconds()?),
            other => return Err(query::unknown(other)),
        }
        Ok(())
    }
}

impl Range {
    fn check(&self) -> Result<(), WarrenError> {
        match (self.start, self.end) {
            (Some(start), Some(end)) if start > end => Err(WarrenError::invalid(format!(
                "start ({start}) is after end ({end})"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the interval overlaps a life from `born` until `now`
    /// (Unix seconds).
    fn overlaps(&self, born: i64, now: i64) -> bool {
        self.start.is_none_or(|s| s <= now) && self.end.is_none_or(|e| e >= born)
    }
}

/// The sample of sandbox `id`, if the asked interval overlaps its life.
pub async fn metrics(
    State(state): State<AppState>,
    id: Result<SandboxPath, AppError>,
    E2bQuery(range): E2bQuery<Range>,
) -> E2bResult<Json<Vec<SandboxMetric>>> {
    let SandboxPath(id) = id?;
    range.check()?;
    let rec = state.sandboxes.get_running(&id).await?;
    let now = OffsetDateTime::now_utc();
    if !range.overlaps(rec.created_at.unix_timestamp(), now.unix_timestamp()) {
        return Ok(Json(Vec::new()));
    }
    let stats = state.sandboxes.stats(&id).await?;
    let alive_ns = (now - rec.created_at).whole_nanoseconds().max(1) as f64;
    let cpus = rec.limits.cpus.max(1);
    Ok(Json(vec![SandboxMetric {
        timestamp: rfc3339(now),
        timestamp_unix: now.unix_timestamp(),
        cpu_count: cpus,
        cpu_used_pct: 100.0 * stats.cpu_usage_ns as f64 / alive_ns / f64::from(cpus),
        mem_used: stats.memory_bytes,
        mem_total: u64::from(rec.limits.memory_mb) * 1024 * 1024,
        mem_cache: 0,
        disk_used: 0,
        disk_total: u64::from(rec.limits.disk_mb) * 1024 * 1024,
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(q: &str) -> Result<Range, WarrenError> {
        query::parse(Some(q))
    }

    #[test]
    fn an_interval_counts_when_it_overlaps_the_life_so_far() {
        let (born, now) = (1_000, 2_000);
        for (q, want) in [
            ("", true),
            ("start=1500", true),
            ("end=1000", true),
            ("start=0&end=999", false),
            ("start=2001", false),
            ("start=1200&end=1300", true),
            ("start=500&end=5000", true),
        ] {
            let r = range(q).unwrap();
            r.check().unwrap();
            assert_eq!(r.overlaps(born, now), want, "{q}");
        }
    }

    #[test]
    fn bad_intervals_are_refused_by_name() {
        for (q, names) in [
            ("start=-1", "start"),
            ("end=soon", "end"),
            ("from=1", "from"),
        ] {
            let err = range(q).unwrap_err();
            assert!(err.message.contains(names), "{q}: {}", err.message);
        }
        let err = range("start=10&end=5").unwrap().check().unwrap_err();
        assert!(err.message.contains("after end"), "{}", err.message);
    }
}
