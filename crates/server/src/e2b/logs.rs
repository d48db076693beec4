//! `GET /sandboxes/{id}/logs` and `GET /v2/sandboxes/{id}/logs`: what the
//! template's start command printed and the agent's own log lines, from the
//! agent's log book (`docs/agent.md`), one entry per line with `stream` and
//! `source` (`start-command` or `agent`) in `fields`; the start command's
//! lines are at level `info`, the agent's carry their own. A paused
//! sandbox shows the lines it had when it was paused (kept with its
//! image); a sandbox neither running nor paused shows none.
//!
//! v1 takes `start` (Unix ms) and `limit` (default 1000), oldest first. v2
//! takes `cursor` (Unix ms), `limit` (1000 at most), `direction`
//! (`forward` from the cursor, oldest first; `backward` up to it, newest
//! first), `level` (the lowest level shown) and `search` (a case-sensitive
//! substring, 256 bytes at most). Anything else is a 400.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use warren_core::{WarrenError, rfc3339};
use warren_envd::http_api::{AGENT_STREAM, LogLine};

use super::error::E2bResult;
use super::query::{self, E2bQuery, QueryParams};
use crate::error::AppError;
use crate::extract::SandboxPath;
use crate::state::AppState;

/// Lines one answer holds at most.
const MAX_LIMIT: usize = 1000;
const MAX_SEARCH: usize = 256;
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
/// `info`, as an index into [`LEVELS`].
const INFO: usize = 1;

#[derive(Debug, Default)]
pub struct V1Query {
    start: i64,
    limit: Option<usize>,
}

#[derive(Debug, Default)]
pub struct V2Query {
    cursor: Option<i64>,
    limit: Option<usize>,
    backward: bool,
    level: Option<usize>,
    search: Option<String>,
}

fn millis(key: &str, value: &str) -> Result<i64, WarrenError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| {
            WarrenError::invalid(format!(
                "{key} must be a Unix time in milliseconds, got '{value}'"
            ))
        })
}

fn limit(value: &str) -> Result<usize, WarrenError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|v| *v <= MAX_LIMIT)
        .ok_or_else(|| {
            WarrenError::invalid(format!("limit must be 0 to {MAX_LIMIT}, got '{value}'"))
        })
}

impl QueryParams for V1Query {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "start" => self.start = millis(key, &value)?,
            "limit" => self.limit = Some(limit(&value)?),
            other => return Err(query::unknown(other)),
        }
        Ok(())
    }
}

impl QueryParams for V2Query {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "cursor" => self.cursor = Some(millis(key, &value)?),
            "limit" => self.limit = Some(limit(&value)?),
            "direction" => {
                self.backward = match value.as_ref() {
                    "forward" => false,
                    "backward" => true,
                    other => {
                        return Err(WarrenError::invalid(format!(
                            "direction must be forward or backward, got '{other}'"
                        )));
                    }
                }
            }
            "level" => {
                self.level = Some(LEVELS.iter().position(|l| *l == value).ok_or_else(|| {
                    WarrenError::invalid(format!(
                        "level must be one of {}, got '{value}'",
                        LEVELS.join(", ")
                    ))
                })?)
            }
            "search" if value.len() > MAX_SEARCH => {
                return Err(WarrenError::invalid(format!(
                    "search is at most {MAX_SEARCH} bytes"
                )));
            }
            "search" => self.search = Some(value.into_owned()),
            other => return Err(query::unknown(other)),
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct Line {
    timestamp: String,
    line: String,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    timestamp: String,
    level: &'static str,
    message: String,
    fields: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V1Logs {
    logs: Vec<Line>,
    log_entries: Vec<Entry>,
}

#[derive(Debug, Serialize)]
pub struct V2Logs {
    logs: Vec<Entry>,
}

fn timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(rfc3339)
        .unwrap_or_default()
}

/// A line's level as an index into [`LEVELS`]; an unknown one is `info`.
fn level_of(l: &LogLine) -> usize {
    LEVELS
        .iter()
        .position(|level| *level == l.level)
        .unwrap_or(INFO)
}

fn entry(l: LogLine) -> Entry {
    let source = match l.stream.as_str() {
        AGENT_STREAM => "agent",
        _ => "start-command",
    };
    Entry {
        timestamp: timestamp(l.timestamp_ms),
        level: LEVELS[level_of(&l)],
        message: l.line,
        fields: BTreeMap::from([("stream", l.stream), ("source", source.into())]),
    }
}

pub async fn logs_v1(
    State(state): State<AppState>,
    id: Result<SandboxPath, AppError>,
    E2bQuery(q): E2bQuery<V1Query>,
) -> E2bResult<Json<V1Logs>> {
    let SandboxPath(id) = id?;
    let mut lines = state.sandboxes.sandbox_logs(&id, q.start).await?;
    lines.truncate(q.limit.unwrap_or(MAX_LIMIT));
    Ok(Json(V1Logs {
        logs: lines
            .iter()
            .map(|l| Line {
                timestamp: timestamp(l.timestamp_ms),
                line: l.line.clone(),
            })
            .collect(),
        log_entries: lines.into_iter().map(entry).collect(),
    }))
}

pub async fn logs_v2(
    State(state): State<AppState>,
    id: Result<SandboxPath, AppError>,
    E2bQuery(q): E2bQuery<V2Query>,
) -> E2bResult<Json<V2Logs>> {
    let SandboxPath(id) = id?;
    let from = if q.backward { 0 } else { q.cursor.unwrap_or(0) };
    let mut lines = state.sandboxes.sandbox_logs(&id, from).await?;
    if q.backward {
        if let Some(cursor) = q.cursor {
            lines.retain(|l| l.timestamp_ms <= cursor);
        }
        lines.reverse();
    }
    if let Some(lowest) = q.level {
        lines.retain(|l| level_of(l) >= lowest);
    }
    if let Some(needle) = &q.search {
        lines.retain(|l| l.line.contains(needle.as_str()));
    }
    lines.truncate(q.limit.unwrap_or(MAX_LIMIT));
    Ok(Json(V2Logs {
        logs: lines.into_iter().map(entry).collect(),
    }))
}
