//! The invariants checked after every restart, against the store's own
//! listing and the [`Ledger`]:
//!
//! 1. every sandbox the store lists is running and answers `exec true`, or
//!    paused and resumes and answers, or killed/failed with an audit entry
//!    (in its timeline) saying so; every acknowledged sandbox is listed;
//! 2. nothing is left on the host for sandboxes that are gone: network
//!    namespace, host veth, runsc container, mounts and loop devices under
//!    its runtime directory, the directory itself; runsc runs no container
//!    the store does not list as running; the snapshot store holds no image
//!    the database does not name;
//! 3. every acknowledged upload to a sandbox that still exists reads back
//!    with its SHA-256, and every acknowledged snapshot of it is listed;
//! 4. the audit log verifies (`warren audit verify`).
//!
//! Leaks are waited for (teardown runs in the background) before they
//! count.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};
use sha2::Digest;
use warren_api_types::Sandbox;

use super::{Ledger, Report};
use crate::Daemon;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged sandbox the store does not list.
    Unlisted { sandbox: String },
    /// Listed in a state nothing should be left in after a restart.
    Stuck { sandbox: String, state: String },
    /// Running (or resumed) but `exec true` did not answer 0.
    Unresponsive { sandbox: String, detail: String },
    /// Paused but does not resume.
    NoResume { sandbox: String, detail: String },
    /// Killed or failed without an audit entry saying so.
    Unexplained { sandbox: String, state: String },
    /// An acknowledged upload that reads back different or not at all.
    FileLost {
        sandbox: String,
        path: String,
        detail: String,
    },
    /// An acknowledged snapshot the sandbox no longer lists.
    SnapshotLost { sandbox: String, snapshot: String },
    /// Something left on the host for a gone sandbox, or an orphan.
    Leak { what: String },
    /// A completed exec stream with the wrong output.
    WrongExec { detail: String },
    /// `warren audit verify` failed.
    Audit { detail: String },
}

const STATES: [&str; 7] = [
    "creating", "running", "pausing", "paused", "resuming", "killed", "failed",
];

/// Checks every invariant once the daemon answers; returns what is broken.
pub async fn check(
    d: &Daemon,
    ledger: &mut Ledger,
    report: &mut Report,
) -> anyhow::Result<Vec<Violation>> {
    let mut found = Vec::new();
    let listed = list_all(d).await?;
    let by_id: std::collections::HashMap<_, _> =
        listed.iter().map(|s| (s.id.clone(), s.clone())).collect();

    for (id, tracked) in &mut ledger.sandboxes {
        if tracked.gone {
            continue;
        }
        match by_id.get(id).map(|s| s.state.as_str()) {
            None => {
                found.push(Violation::Unlisted {
                    sandbox: id.clone(),
                });
                report.sandboxes_lost += 1;
                tracked.gone = true;
            }
            Some("failed") => {
                report.failed_by_restart += 1;
                tracked.gone = true;
            }
            Some("killed") => tracked.gone = true,
            _ => {}
        }
    }

    for sb in &listed {
        match sb.state.as_str() {
            "running" => {
                if let Err(detail) = answers(d, &sb.id).await {
                    found.push(Violation::Unresponsive {
                        sandbox: sb.id.clone(),
                        detail,
                    });
                }
            }
            "paused" => match resumes(d, &sb.id).await {
                Ok(()) => {
                    if let Err(detail) = answers(d, &sb.id).await {
                        found.push(Violation::Unresponsive {
                            sandbox: sb.id.clone(),
                            detail,
                        });
                    }
                }
                Err(detail) => found.push(Violation::NoResume {
                    sandbox: sb.id.clone(),
                    detail,
                }),
            },
            "killed" | "failed" => {
                if !explained(d, &sb.id, &sb.state).await {
                    found.push(Violation::Unexplained {
                        sandbox: sb.id.clone(),
                        state: sb.state.clone(),
                    });
                }
            }
            other => found.push(Violation::Stuck {
                sandbox: sb.id.clone(),
                state: other.to_owned(),
            }),
        }
    }

    // Acknowledged data of the sandboxes still there.
    for (id, tracked) in &ledger.sandboxes {
        if tracked.gone {
            continue;
        }
        for (path, (sha, size)) in &tracked.files {
            if let Err(detail) = reads_back(d, id, path, sha).await {
                report.bytes_lost += size;
                found.push(Violation::FileLost {
                    sandbox: id.clone(),
                    path: path.clone(),
                    detail,
                });
            }
        }
        let snaps: Value = d
            .get(&format!("/v1/sandboxes/{id}/snapshots"))
            .send()
            .await?
            .json()
            .await?;
        let have: HashSet<&str> = snaps["snapshots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["id"].as_str())
            .collect();
        for snap in &tracked.snapshots {
            if !have.contains(snap.as_str()) {
                found.push(Violation::SnapshotLost {
                    sandbox: id.clone(),
                    snapshot: snap.clone(),
                });
            }
        }
    }

    let gone: BTreeSet<String> = listed
        .iter()
        .filter(|s| s.state == "killed" || s.state == "failed")
        .map(|s| s.id.clone())
        .chain(
            ledger
                .sandboxes
                .iter()
                .filter(|(_, t)| t.gone)
                .map(|(id, _)| id.clone()),
        )
        .collect();
    let running: HashSet<String> = list_all(d)
        .await?
        .into_iter()
        .filter(|s| s.state == "running")
        .map(|s| s.id)
        .collect();
    found.extend(
        super::leaks::settled(d, &gone, &running)
            .await
            .into_iter()
            .map(|what| Violation::Leak { what }),
    );

    found.extend(
        ledger
            .wrong_execs
            .drain(..)
            .map(|detail| Violation::WrongExec { detail }),
    );

    let verify = d.run_cli(&["audit", "verify"]);
    if !verify.status.success() {
        found.push(Violation::Audit {
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&verify.stdout),
                String::from_utf8_lossy(&verify.stderr)
            ),
        });
    }
    Ok(found)
}

/// Every sandbox the store has, in any state.
async fn list_all(d: &Daemon) -> anyhow::Result<Vec<Sandbox>> {
    let query: Vec<_> = STATES.iter().map(|s| format!("state={s}")).collect();
    let resp = d
        .get(&format!("/v1/sandboxes?{}", query.join("&")))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "listing: {}", resp.status());
    Ok(resp
        .json::<warren_api_types::SandboxList>()
        .await?
        .sandboxes)
}

async fn answers(d: &Daemon, id: &str) -> Result<(), String> {
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["true"]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    match crate::decode_exec(&body) {
        Ok(out) if out.exit_code == Some(0) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

async fn resumes(d: &Daemon, id: &str) -> Result<(), String> {
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/resume"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    Err(format!(
        "{status}: {}",
        resp.text().await.unwrap_or_default()
    ))
}

/// Whether the sandbox's timeline has the event of its end.
async fn explained(d: &Daemon, id: &str, state: &str) -> bool {
    let Ok(resp) = d.get(&format!("/v1/sandboxes/{id}/timeline")).send().await else {
        return false;
    };
    let Ok(timeline) = resp.json::<Value>().await else {
        return false;
    };
    let kinds: &[&str] = if state == "failed" {
        &["failed"]
    } else {
        &["killed", "expired"]
    };
    timeline["events"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["kind"].as_str().is_some_and(|k| kinds.contains(&k)))
}

async fn reads_back(d: &Daemon, id: &str, path: &str, sha: &str) -> Result<(), String> {
    let resp = d
        .get(&format!("/v1/sandboxes/{id}/files?path={path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    let got = hex::encode(sha2::Sha256::digest(&bytes));
    if got != sha {
        return Err(format!("sha256 {got}, {} bytes", bytes.len()));
    }
    Ok(())
}
