//! An end the daemon committed but did not record before it died (found
//! by the crash-chaos suite): the next start records it.

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use warren_e2e::Daemon;

/// A kill commits the sandbox's state before its audit entry: a daemon
/// that dies in between left a killed sandbox no entry explained. The next
/// start records the end (by `system:reconcile`, saying so), the log still
/// verifies, and the sandbox is torn down.
#[tokio::test]
async fn sandbox_kill_unrecorded_before_a_crash_is_recorded_at_restart() {
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    d.stop_with(Signal::SIGKILL).unwrap();
    // The state the kill commits first, without the entry that follows.
    let db = d.data_dir().join("warren.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "UPDATE sandboxes SET state = 'killed' WHERE id = '{}'",
            sb.id
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d.restart().await.unwrap();

    let timeline: Value = d
        .get_json(&format!("/v1/sandboxes/{}/timeline", sb.id))
        .await;
    let killed = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "killed")
        .unwrap_or_else(|| panic!("no kill in the timeline: {timeline}\n{}", d.log()));
    assert!(killed.to_string().contains("system:reconcile"), "{killed}");
    let verify = d.run_cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
    // And it is torn down.
    let netns = std::path::Path::new("/run/netns").join(format!("warren-{}", sb.id));
    for _ in 0..300 {
        if !netns.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!netns.exists(), "{} left", netns.display());
}
