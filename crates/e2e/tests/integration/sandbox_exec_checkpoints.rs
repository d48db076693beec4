//! An exec's output across a checkpoint of its sandbox: a snapshot or a
//! fork resets every connection to the sandbox while the command runs on;
//! the stream re-attaches and gets every line, in order, once, with the
//! command's real exit code — also when the command ended during the
//! checkpoint.

use std::time::Duration;

use serde_json::json;
use warren_e2e::Daemon;

/// Starts an exec of `script` now and returns its whole output later.
fn exec_in_background(
    d: &Daemon,
    id: &str,
    script: &str,
) -> tokio::task::JoinHandle<warren_e2e::ExecOutput> {
    let req = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({ "cmd": ["bash", "-c", script] }));
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        warren_e2e::decode_exec(&resp.text().await.unwrap()).unwrap()
    })
}

fn lines(n: u32) -> String {
    (1..=n).map(|i| format!("line{i}\n")).collect()
}

#[tokio::test]
async fn sandbox_exec_output_is_whole_across_a_snapshot_and_a_fork() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let loud = "for i in $(seq 1 60); do echo line$i; sleep 0.05; done; exit 7";

    // A snapshot in the middle of the command.
    let running = exec_in_background(&d, &sb.id, loud);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/snapshots", sb.id),
            Some(json!({ "name": "mid-exec" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let out = running.await.unwrap();
    assert_eq!(out.stdout_str(), lines(60), "{out:?}\n{}", d.log());
    assert_eq!(out.exit_code, Some(7), "{out:?}");

    // A fork in the middle of the command.
    let running = exec_in_background(&d, &sb.id, loud);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", sb.id),
            Some(json!({ "count": 1 })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let out = running.await.unwrap();
    assert_eq!(out.stdout_str(), lines(60), "{out:?}\n{}", d.log());
    assert_eq!(out.exit_code, Some(7), "{out:?}");

    // A command that ends while the checkpoint is taken: its last line and
    // its exit code still arrive.
    let short = "echo first; sleep 0.2; echo last >&2; exit 3";
    let running = exec_in_background(&d, &sb.id, short);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/snapshots", sb.id),
            Some(json!({ "name": "end-in-checkpoint" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let out = running.await.unwrap();
    assert_eq!(out.stdout_str(), "first\n", "{out:?}");
    assert_eq!(out.stderr_str(), "last\n", "{out:?}");
    assert_eq!(out.exit_code, Some(3), "{out:?}");
}
