//! A sandbox's life as a readable, ordered list, derived from its audit
//! entries (`GET /v1/sandboxes/{id}/timeline`).
//!
//! Each entry about the sandbox becomes one event, in log order, except
//! API-request entries that succeeded: the lifecycle, command and file
//! entries recorded for them say more. A refused or failed request stays
//! (kind `request`), since nothing else records it.

use serde_json::{Map, Value};
use warren_api_types::TimelineEvent;
use warren_audit::ExportedEntry;

use super::Action;

/// Timeline events of `entries` (all about one sandbox, in index order).
pub fn events(entries: &[ExportedEntry]) -> Vec<TimelineEvent> {
    entries.iter().filter_map(event).collect()
}

fn text<'a>(details: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    details.get(key).and_then(Value::as_str)
}

fn failure(details: &Map<String, Value>) -> String {
    text(details, "error")
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}

fn event(line: &ExportedEntry) -> Option<TimelineEvent> {
    let e = &line.entry;
    let d = &e.details;
    let by = e.actor.join(" → ");
    let mut exit_code = None;
    let mut duration_ms = None;
    let (kind, summary) = match Action::parse(&e.action) {
        Some(Action::SandboxCreate) => (
            "created",
            format!(
                "created by {by} from template {}{}",
                text(d, "template").unwrap_or("?"),
                failure(d)
            ),
        ),
        Some(Action::ProcessExec) => {
            exit_code = d.get("exit_code").and_then(Value::as_i64);
            duration_ms = d.get("duration_ms").and_then(Value::as_u64);
            let argv: Vec<&str> = d
                .get("argv")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let user = text(d, "user").unwrap_or("user");
            let exit = exit_code.map_or("no exit code".to_owned(), |c| format!("exit {c}"));
            let took = duration_ms
                .map(|ms| format!(" in {ms} ms"))
                .unwrap_or_default();
            (
                "command",
                format!(
                    "ran `{}` as {user}: {exit}{took}{}",
                    argv.join(" "),
                    failure(d)
                ),
            )
        }
        Some(Action::ProcessKill) => (
            "command_ended",
            format!(
                "ended process {} on request of {by}{}",
                d.get("pid").and_then(Value::as_u64).unwrap_or(0),
                failure(d)
            ),
        ),
        Some(Action::FileWrite) => (
            "file_written",
            format!(
                "wrote {} ({} bytes, sha256 {}){}",
                text(d, "path").unwrap_or("?"),
                d.get("size").and_then(Value::as_u64).unwrap_or(0),
                text(d, "sha256").unwrap_or("?"),
                failure(d)
            ),
        ),
        Some(Action::PtyOpen) => (
            "terminal",
            format!(
                "opened a terminal running {} as {}",
                text(d, "cmd").unwrap_or("a login shell"),
                text(d, "user").unwrap_or("user")
            ),
        ),
        Some(Action::PtyRecord) => (
            "recording",
            format!(
                "kept the terminal's recording {} ({} bytes, sha256 {}{})",
                text(d, "recording").unwrap_or("?"),
                d.get("bytes").and_then(Value::as_u64).unwrap_or(0),
                text(d, "sha256").unwrap_or("?"),
                if d.get("truncated").and_then(Value::as_bool) == Some(true) {
                    ", stopped at its size limit"
                } else {
                    ""
                }
            ),
        ),
        Some(Action::SandboxTimeout) => (
            "timeout",
            format!(
                "timeout set by {by}: expires at {}",
                text(d, "expires_at").unwrap_or("?")
            ),
        ),
        Some(Action::SandboxKill) => ("killed", format!("killed by {by}")),
        Some(Action::SandboxPause) => ("paused", format!("paused by {by}")),
        Some(Action::SandboxResume) => ("resumed", format!("resumed by {by}")),
        Some(Action::SandboxRollback) => (
            "rolled_back",
            format!(
                "rolled back by {by} to snapshot {}{}",
                text(d, "snapshot").unwrap_or("?"),
                failure(d)
            ),
        ),
        Some(Action::SandboxFork) => (
            "forked",
            format!(
                "forked by {by} into {}",
                d.get("branches")
                    .and_then(Value::as_array)
                    .map(|b| b
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
        ),
        Some(Action::SnapshotCreate) => (
            "snapshot",
            format!(
                "snapshot '{}' taken by {by}",
                text(d, "name").unwrap_or("?")
            ),
        ),
        Some(Action::SnapshotDelete) => ("snapshot_deleted", format!("snapshot deleted by {by}")),
        Some(Action::TokenIssue) => (
            "token",
            format!(
                "sandbox token issued ({}) for {}, valid until {}",
                text(d, "reason").unwrap_or("?"),
                text(d, "subject").unwrap_or("?"),
                text(d, "expires_at").unwrap_or("?")
            ),
        ),
        Some(Action::SandboxExpire) => ("expired", "reached its timeout and was killed".to_owned()),
        Some(Action::RuleFire) => (
            "rule",
            format!(
                "rule {} fired: {} at or above {}; {}",
                text(d, "rule").unwrap_or("?"),
                text(d, "value").unwrap_or("?"),
                text(d, "threshold").unwrap_or("?"),
                text(d, "action").unwrap_or("?")
            ),
        ),
        Some(Action::SandboxFail) => ("failed", format!("failed{}", failure(d))),
        Some(Action::ApiRequest) if e.outcome != warren_audit::Outcome::Ok => (
            "request",
            format!(
                "{} {} by {by} answered {}",
                text(d, "method").unwrap_or("?"),
                text(d, "route").unwrap_or("?"),
                d.get("status").and_then(Value::as_u64).unwrap_or(0)
            ),
        ),
        Some(Action::ApiRequest) => return None,
        _ => ("other", format!("{} by {by}", e.action)),
    };
    Some(TimelineEvent {
        index: e.index,
        time: warren_core::rfc3339(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.time_ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        ),
        actor: e.actor.clone(),
        kind: kind.to_owned(),
        outcome: e.outcome.as_str().to_owned(),
        summary,
        exit_code,
        duration_ms,
        details: d.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use warren_audit::{AuditEntry, Outcome};

    use super::*;

    fn line(index: u64, action: &str, outcome: Outcome, details: Value) -> ExportedEntry {
        ExportedEntry {
            entry: AuditEntry {
                index,
                time_ms: 1_800_000_000_000,
                team: "default".into(),
                actor: vec!["key:abc".into()],
                action: action.into(),
                target: "sb".into(),
                outcome,
                details: details.as_object().cloned().unwrap_or_default(),
            },
            leaf_hash: None,
        }
    }

    #[test]
    fn a_life_reads_in_order_and_successful_requests_are_folded_away() {
        let entries = [
            line(
                0,
                "sandbox.create",
                Outcome::Ok,
                json!({"template": "base"}),
            ),
            line(
                1,
                "api.request",
                Outcome::Ok,
                json!({"method": "POST", "route": "/v1/sandboxes", "status": 201}),
            ),
            line(
                2,
                "process.exec",
                Outcome::Ok,
                json!({"argv": ["ls", "-l"], "user": "user", "exit_code": 2, "duration_ms": 12}),
            ),
            line(
                3,
                "file.write",
                Outcome::Ok,
                json!({"path": "/tmp/x", "size": 5, "sha256": "ab"}),
            ),
            line(
                4,
                "api.request",
                Outcome::Error,
                json!({"method": "POST", "route": "/v1/sandboxes/{id}/exec", "status": 409}),
            ),
            line(
                5,
                "sandbox.timeout",
                Outcome::Ok,
                json!({"expires_at": "2027-01-15T09:00:00Z"}),
            ),
            line(6, "sandbox.expire", Outcome::Ok, json!({})),
        ];
        let events = events(&entries);
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "created",
                "command",
                "file_written",
                "request",
                "timeout",
                "expired"
            ]
        );
        assert_eq!(events[0].summary, "created by key:abc from template base");
        assert_eq!(events[1].summary, "ran `ls -l` as user: exit 2 in 12 ms");
        assert_eq!(
            (events[1].exit_code, events[1].duration_ms),
            (Some(2), Some(12))
        );
        assert_eq!(events[2].summary, "wrote /tmp/x (5 bytes, sha256 ab)");
        assert!(
            events[3].summary.ends_with("answered 409"),
            "{}",
            events[3].summary
        );
        assert_eq!(
            events[4].summary,
            "timeout set by key:abc: expires at 2027-01-15T09:00:00Z"
        );
        assert_eq!(events[0].time, "2027-01-15T08:00:00Z");
    }
}
