//! A snapshot or fork racing a kill of the same sandbox: one of the two
//! wins cleanly. The loser gets a typed 404 or 409, never a 5xx; the
//! sandbox ends killed; no runsc container of it (or of a branch that
//! lost) is left.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_api_types::{Sandbox, SandboxList};
use warren_e2e::Daemon;

/// Delays before the kill, so it lands before, during and after the
/// checkpoint.
const KILL_AFTER_MS: [u64; 4] = [0, 40, 120, 300];

async fn send(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = match method {
        "DELETE" => d.delete(path),
        _ => d.post(path).json(&body.unwrap_or_default()),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Races `op` (a snapshot or a fork of a new sandbox) with its kill,
/// for each delay; checks each outcome; returns the sandboxes left
/// running (the branches of forks that won).
async fn race(d: &Daemon, op: &str, body: Value) -> Vec<String> {
    let mut killed = Vec::new();
    for delay in KILL_AFTER_MS {
        let sb: Sandbox = d.create_sandbox(json!({})).await;
        let id = sb.id.clone();
        let path = format!("/v1/sandboxes/{id}/{op}");
        let op_call = send(d, "POST", &path, Some(body.clone()));
        let kill_call = async {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            send(d, "DELETE", &format!("/v1/sandboxes/{id}"), None).await
        };
        let ((op_status, op_body), (kill_status, kill_body)) = tokio::join!(op_call, kill_call);
        assert!(
            [201, 404, 409].contains(&op_status),
            "{op} racing a kill after {delay} ms: {op_status} {op_body}\n{}",
            d.log()
        );
        eprintln!("{op} racing a kill after {delay} ms: {op_status}, kill {kill_status}");
        if op_status != 201 {
            assert!(op_body["code"].is_string(), "{op_body}");
        }
        assert!(
            [204, 404].contains(&kill_status),
            "kill racing {op} after {delay} ms: {kill_status} {kill_body}"
        );
        // The kill is the last word: the sandbox is gone either way.
        let (status, _) = send(d, "DELETE", &format!("/v1/sandboxes/{id}"), None).await;
        assert!([204, 404].contains(&status));
        let resp = d.get(&format!("/v1/sandboxes/{id}")).send().await.unwrap();
        assert_eq!(resp.status(), 404, "a killed sandbox answers 404");
        killed.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = d.runsc_containers();
        let left: Vec<&String> = killed.iter().filter(|id| listed.contains(*id)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still in runsc: {left:?}\n{listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list: SandboxList = d.get_json("/v1/sandboxes").await;
    list.sandboxes.into_iter().map(|s| s.id).collect()
}

#[tokio::test]
async fn sandbox_snapshot_or_fork_racing_a_kill_ends_with_one_winner() {
    let d = Daemon::with_base().await;
    let left = race(&d, "snapshots", json!({"name": "race"})).await;
    assert!(left.is_empty(), "{left:?}");
    // Branches of a fork that won run on their own; each answers.
    let branches = race(&d, "fork", json!({"count": 1})).await;
    for branch in &branches {
        let out = d.sh(branch, "echo up").await;
        assert_eq!(out.stdout_str(), "up\n");
    }
    // Every runsc container belongs to a listed sandbox.
    for container in d.runsc_containers() {
        assert!(
            branches.contains(&container),
            "leaked container {container}"
        );
    }
    assert!(!d.log().contains("panicked"));
}
