//! An exec's output across a checkpoint of its sandbox: a snapshot or a
//! fork resets every connection to the sandbox while the command runs on;
//! the stream re-attaches and gets every line, in order, once, with the
//! command's real exit code — also when the command ended during the
//! checkpoint.

use std::time::Duration;

use serde_json::json;
use warren_e2e::Daemon;

/// Runs `script` in sandbox `id`, POSTs `body` to the sandbox's `call`
/// (`snapshots`, `fork`) `after` the start, and returns the command's
/// whole output.
async fn checkpoint_during(
    d: &Daemon,
    id: &str,
    script: &str,
    after: Duration,
    call: &str,
    body: serde_json::Value,
) -> warren_e2e::ExecOutput {
    let req = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({ "cmd": ["bash", "-c", script] }));
    let running = tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        warren_e2e::decode_exec(&resp.text().await.unwrap()).unwrap()
    });
    tokio::time::sleep(after).await;
    let path = format!("/v1/sandboxes/{id}/{call}");
    let (status, answer) = d.call(&d.key, "POST", &path, Some(body)).await;
    assert_eq!(status, 201, "{call}: {answer}\n{}", d.log());
    running.await.unwrap()
}

fn lines(n: u32) -> String {
    (1..=n).map(|i| format!("line{i}\n")).collect()
}

#[tokio::test]
async fn sandbox_exec_output_is_whole_across_a_snapshot_and_a_fork() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let loud = "for i in $(seq 1 60); do echo line$i; sleep 0.05; done; exit 7";
    let mid = Duration::from_millis(600);

    let snapshot = json!({ "name": "mid-exec" });
    let out = checkpoint_during(&d, &sb.id, loud, mid, "snapshots", snapshot).await;
    assert_eq!(out.stdout_str(), lines(60), "{out:?}\n{}", d.log());
    assert_eq!(out.exit_code, Some(7), "{out:?}");

    let fork = json!({ "count": 1 });
    let out = checkpoint_during(&d, &sb.id, loud, mid, "fork", fork).await;
    assert_eq!(out.stdout_str(), lines(60), "{out:?}\n{}", d.log());
    assert_eq!(out.exit_code, Some(7), "{out:?}");

    // A command that ends while the checkpoint is taken: its last line and
    // its exit code still arrive.
    let short = "echo first; sleep 0.2; echo last >&2; exit 3";
    let snapshot = json!({ "name": "end-in-checkpoint" });
    let soon = Duration::from_millis(100);
    let out = checkpoint_during(&d, &sb.id, short, soon, "snapshots", snapshot).await;
    assert_eq!(out.stdout_str(), "first\n", "{out:?}");
    assert_eq!(out.stderr_str(), "last\n", "{out:?}");
    assert_eq!(out.exit_code, Some(3), "{out:?}");
}
