//! Pause/resume, named snapshots, rollback and fork end to end, against a
//! real daemon and real runsc.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use warren_api_types::{ForkResponse, Sandbox, Snapshot, SnapshotList};
use warren_e2e::Daemon;

/// A Python HTTP server on port 7000 answering a random number it only
/// holds in memory.
const MEMORY_SERVER: &str = r#"
import http.server, random
SECRET = str(random.random())
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(SECRET.encode())
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", 7000), H).serve_forever()
"#;

/// Starts the counter, the memory server and writes files under `/`,
/// `/home/user` and `/tmp`.
async fn populate(d: &Daemon, id: &str) {
    d.sh_root(id, &format!(
        "printf '%s' '{MEMORY_SERVER}' > /opt-server.py; \
         (python3 /opt-server.py >/dev/null 2>&1 &); \
         (i=0; while true; do echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; i=$((i+1)); sleep 0.1; done >/dev/null 2>&1 &); \
         echo root-file > /root-file; echo tmp-file > /tmp/tmp-file; \
         for i in $(seq 50); do curl -fs http://127.0.0.1:7000/ >/dev/null && break; sleep 0.1; done"
    ))
    .await;
    d.sh(id, "echo home-file > /home/user/home-file").await;
}

async fn memory_secret(d: &Daemon, id: &str) -> String {
    d.sh(id, "curl -fs --max-time 5 http://127.0.0.1:7000/")
        .await
        .stdout_str()
}

async fn counter(d: &Daemon, id: &str) -> u64 {
    let out = d.sh(id, "cat /tmp/counter").await.stdout_str();
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("counter: {out:?}"))
}

async fn files(d: &Daemon, id: &str) -> String {
    d.sh(id, "cat /root-file /home/user/home-file /tmp/tmp-file")
        .await
        .stdout_str()
}

async fn post_json(d: &Daemon, path: &str, body: Value) -> (u16, String) {
    let resp = d.post(path).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn pause(d: &Daemon, id: &str) -> Sandbox {
    let (status, body) = post_json(d, &format!("/v1/sandboxes/{id}/pause"), json!({})).await;
    assert_eq!(status, 200, "pause: {body}\n{}", d.log());
    serde_json::from_str(&body).unwrap()
}

async fn state(d: &Daemon, id: &str) -> String {
    d.get_json::<Sandbox>(&format!("/v1/sandboxes/{id}"))
        .await
        .state
}

/// Whether each resume of `id` so far thawed a frozen instance (true) or
/// restored the image (false), from the audit log.
async fn resumes_from_standby(d: &Daemon, id: &str) -> Vec<bool> {
    let t: warren_api_types::Timeline = d.get_json(&format!("/v1/sandboxes/{id}/timeline")).await;
    t.events
        .iter()
        .filter_map(|e| e.details.get("from_standby").and_then(Value::as_bool))
        .collect()
}

/// Pause, wait `gap`, resume: processes, memory, files and servers go on.
async fn pause_resume_keeps_state(d: &Daemon, gap: Duration) -> String {
    let sb = d.create_sandbox(json!({})).await;
    populate(d, &sb.id).await;
    let secret = memory_secret(d, &sb.id).await;
    assert!(!secret.is_empty());
    let before = counter(d, &sb.id).await;

    let paused = pause(d, &sb.id).await;
    assert_eq!(paused.state, "paused");
    let (status, body) = post_json(d, &format!("/v1/sandboxes/{}/pause", sb.id), json!({})).await;
    assert_eq!(status, 409, "pausing twice: {body}");
    tokio::time::sleep(gap).await;

    let (status, body) = post_json(d, &format!("/v1/sandboxes/{}/resume", sb.id), json!({})).await;
    assert_eq!(status, 200, "resume: {body}\n{}", d.log());
    assert_eq!(state(d, &sb.id).await, "running");
    assert_eq!(
        memory_secret(d, &sb.id).await,
        secret,
        "in-memory state of the server"
    );
    assert_eq!(files(d, &sb.id).await, "root-file\nhome-file\ntmp-file\n");
    let after = counter(d, &sb.id).await;
    assert!(after >= before, "counter went back: {before} -> {after}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = counter(d, &sb.id).await;
    assert!(
        later > after,
        "counter stopped after resume: {after} -> {later}"
    );
    sb.id
}

#[tokio::test]
async fn sandbox_pause_resume_keeps_processes_memory_files_and_servers() {
    let d = Daemon::with_base_and(&["--standby", "0"]).await;
    let id = pause_resume_keeps_state(&d, Duration::from_millis(500)).await;
    assert_eq!(resumes_from_standby(&d, &id).await, [false]);
}

#[tokio::test]
async fn sandbox_resume_within_standby_thaws_and_after_it_restores() {
    let d = Daemon::with_base_and(&["--standby", "3s"]).await;
    let id = pause_resume_keeps_state(&d, Duration::from_millis(100)).await;
    assert_eq!(resumes_from_standby(&d, &id).await, [true]);
    // Past the window the instance is gone and the image serves.
    pause(&d, &id).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(d.sh(&id, "echo back").await.stdout_str(), "back\n");
    assert_eq!(resumes_from_standby(&d, &id).await, [true, false]);
    // A paused sandbox in standby is killed like any other.
    pause(&d, &id).await;
    let resp = d
        .delete(&format!("/v1/sandboxes/{id}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let status = d
        .get(&format!("/v1/sandboxes/{id}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    // … and its frozen instance goes with it.
    let root = d.data_dir().join("runtime/runsc");
    let listed = || {
        let out = std::process::Command::new("runsc")
            .arg("--root")
            .arg(&root)
            .arg("list")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&id)
    };
    for _ in 0..100 {
        if !listed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the killed sandbox's instance is still there\n{}", d.log());
}

#[tokio::test]
async fn sandbox_paused_survives_daemon_restart_and_exec_resumes_it() {
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({"persistent": true})).await;
    assert_eq!(sb.on_idle, "pause");
    populate(&d, &sb.id).await;
    let secret = memory_secret(&d, &sb.id).await;
    pause(&d, &sb.id).await;

    d.stop_with(Signal::SIGKILL).unwrap();
    d.restart().await.unwrap();
    assert_eq!(state(&d, &sb.id).await, "paused", "{}", d.log());
    // No explicit resume: exec does it.
    assert_eq!(files(&d, &sb.id).await, "root-file\nhome-file\ntmp-file\n");
    assert_eq!(state(&d, &sb.id).await, "running");
    assert_eq!(memory_secret(&d, &sb.id).await, secret);
}

#[tokio::test]
async fn sandbox_kill_9_during_pause_leaves_running_or_resumable() {
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    populate(&d, &sb.id).await;
    let secret = memory_secret(&d, &sb.id).await;
    // Touch some memory so the checkpoint takes a while.
    d.sh_root(&sb.id, "(python3 -c 'import time; b = bytearray(150 << 20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(10**6)' &); sleep 1").await;

    let url = format!("{}/v1/sandboxes/{}/pause", d.url, sb.id);
    let (http, key) = (d.http.clone(), d.key.clone());
    let pausing = tokio::spawn(async move { http.post(url).bearer_auth(key).send().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    d.stop_with(Signal::SIGKILL).unwrap();
    let _ = pausing.await;
    d.restart().await.unwrap();

    let after = state(&d, &sb.id).await;
    assert!(
        after == "running" || after == "paused",
        "state after restart: {after}\n{}",
        d.log()
    );
    if after == "paused" {
        let (status, body) =
            post_json(&d, &format!("/v1/sandboxes/{}/resume", sb.id), json!({})).await;
        assert_eq!(status, 200, "resume: {body}\n{}", d.log());
    }
    assert_eq!(memory_secret(&d, &sb.id).await, secret);
    assert_eq!(files(&d, &sb.id).await, "root-file\nhome-file\ntmp-file\n");
    // No half image is left behind in staging.
    let staging = d.data_dir().join("snapshots/staging");
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "staged images left"
    );
}

#[tokio::test]
async fn sandbox_ten_pause_cycles_keep_a_hundred_files_intact() {
    // From the image every time: standby would thaw instead.
    let d = Daemon::with_base_and(&["--standby", "0"]).await;
    let sb = d.create_sandbox(json!({})).await;
    d.sh(&sb.id, "mkdir -p ~/data && cd ~/data && for i in $(seq 100); do head -c $((i * 997)) /dev/urandom > f$i; done").await;
    let sums = "cd ~/data && sha256sum f* | sort";
    let expected = d.sh(&sb.id, sums).await.stdout_str();
    assert_eq!(expected.lines().count(), 100);
    for cycle in 0..10 {
        pause(&d, &sb.id).await;
        // Exec auto-resumes.
        assert_eq!(
            d.sh(&sb.id, sums).await.stdout_str(),
            expected,
            "cycle {cycle}"
        );
    }
}

#[tokio::test]
async fn sandbox_fork_three_ways_diverges_independently() {
    let d = Daemon::with_base().await;
    let parent = d
        .create_sandbox(json!({"metadata": {"task": "explore"}}))
        .await;
    populate(&d, &parent.id).await;
    let secret = memory_secret(&d, &parent.id).await;

    let (status, body) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/fork", parent.id),
        json!({"count": 3}),
    )
    .await;
    assert_eq!(status, 201, "fork: {body}\n{}", d.log());
    let fork: ForkResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(fork.sandboxes.len(), 3);
    assert_eq!(state(&d, &parent.id).await, "running");

    let mut ids = vec![parent.id.clone()];
    for b in &fork.sandboxes {
        assert_eq!(b.state, "running");
        assert_eq!(b.source_snapshot.as_deref(), Some(fork.snapshot.as_str()));
        assert_eq!(b.metadata.get("task").map(String::as_str), Some("explore"));
        assert!(!ids.contains(&b.id));
        ids.push(b.id.clone());
        // The exact state at the fork instant, memory included.
        assert_eq!(memory_secret(&d, &b.id).await, secret);
        assert_eq!(files(&d, &b.id).await, "root-file\nhome-file\ntmp-file\n");
    }
    // Each one diverges: its own write, its own process.
    for id in &ids {
        d.sh(
            id,
            &format!("echo {id} > /tmp/branch; (sleep 777{} &); true", id.len()),
        )
        .await;
    }
    for id in &ids {
        assert_eq!(
            d.sh(id, "cat /tmp/branch").await.stdout_str(),
            format!("{id}\n")
        );
        let n = d.sh(id, "pgrep -c -f '^sleep 77720$'").await.stdout_str();
        assert_eq!(n.trim(), "1", "sandbox {id} sees other branches' processes");
    }
    // Each has its own address.
    let mut addrs = Vec::new();
    for id in &ids {
        let out = d.sh(id, "python3 -c \"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect(('192.0.2.1',9));print(s.getsockname()[0])\"").await;
        addrs.push(out.stdout_str());
    }
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    // Lineage: the parent's snapshot list names the branches.
    let list: SnapshotList = d
        .get_json(&format!("/v1/sandboxes/{}/snapshots", parent.id))
        .await;
    let snap: &Snapshot = list
        .snapshots
        .iter()
        .find(|s| s.id == fork.snapshot)
        .expect("fork snapshot listed");
    assert_eq!(snap.kind, "fork");
    let mut children = snap.children.clone();
    children.sort();
    let mut branches: Vec<_> = fork.sandboxes.iter().map(|b| b.id.clone()).collect();
    branches.sort();
    assert_eq!(children, branches);
}

#[tokio::test]
async fn sandbox_rollback_discards_later_writes_and_processes() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    d.sh(&sb.id, "echo kept > /tmp/kept").await;
    let (status, body) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/snapshots", sb.id),
        json!({"name": "clean"}),
    )
    .await;
    assert_eq!(status, 201, "snapshot: {body}\n{}", d.log());
    let snap: Snapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(snap.name.as_deref(), Some("clean"));
    assert!(snap.size_bytes > 0);
    let (status, _) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/snapshots", sb.id),
        json!({"name": "clean"}),
    )
    .await;
    assert_eq!(status, 409, "a second snapshot with the same name");

    // The sandbox kept running; later changes...
    d.sh(
        &sb.id,
        "echo later > /tmp/later; rm /tmp/kept; (sleep 4242 &); true",
    )
    .await;
    let (status, body) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/rollback", sb.id),
        json!({"snapshot": "clean"}),
    )
    .await;
    assert_eq!(status, 200, "rollback: {body}\n{}", d.log());
    // ...are gone.
    let out = d
        .sh(
            &sb.id,
            "cat /tmp/kept; ls /tmp/later 2>&1; pgrep -x sleep || echo no-sleep",
        )
        .await;
    assert!(
        out.stdout_str().starts_with("kept\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        out.stdout_str().contains("No such file"),
        "{}",
        out.stdout_str()
    );
    assert!(
        out.stdout_str().ends_with("no-sleep\n"),
        "{}",
        out.stdout_str()
    );

    // A new sandbox from the snapshot has its state too.
    let other = d.create_sandbox(json!({"snapshot": snap.id})).await;
    assert_eq!(other.source_snapshot.as_deref(), Some(snap.id.as_str()));
    assert_eq!(
        d.sh(&other.id, "cat /tmp/kept").await.stdout_str(),
        "kept\n"
    );

    let resp = d
        .delete(&format!("/v1/sandboxes/{}/snapshots/clean", sb.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/rollback", sb.id),
        json!({"snapshot": "clean"}),
    )
    .await;
    assert_eq!(status, 404, "rollback to a deleted snapshot");
}

/// Polls the sandbox's state until `want` (or gone, for `None`), for at
/// most 30 s.
async fn wait_state(d: &Daemon, id: &str, want: Option<&str>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = d.get(&format!("/v1/sandboxes/{id}")).send().await.unwrap();
        let now = if resp.status() == 404 {
            None
        } else {
            Some(resp.json::<Sandbox>().await.unwrap().state)
        };
        if now.as_deref() == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox {id} is {now:?}, not {want:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sandbox_idle_pause_retention_and_garbage_collection() {
    let d = Daemon::with_base().await;
    let sb = d
        .create_sandbox(json!({"persistent": true, "idle_timeout_s": 2, "paused_ttl_s": 4}))
        .await;
    d.sh(&sb.id, "echo idle > /tmp/idle").await;
    // Idle: paused, not killed; a call resumes it with its state.
    wait_state(&d, &sb.id, Some("paused")).await;
    assert_eq!(d.sh(&sb.id, "cat /tmp/idle").await.stdout_str(), "idle\n");
    assert_eq!(state(&d, &sb.id).await, "running");
    // Idle again, then past its paused retention: gone, with its images.
    wait_state(&d, &sb.id, Some("paused")).await;
    wait_state(&d, &sb.id, None).await;
    let images = d.data_dir().join("snapshots/images");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&images).unwrap().count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "images left after deletion"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens an exec stream running `script` and returns it once its first
/// output arrived; the caller keeps it open.
async fn open_stream(d: &Daemon, id: &str, script: &str) -> reqwest::Response {
    let mut resp = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["bash", "-c", script]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().expect("some output");
    assert!(!first.is_empty());
    resp
}

#[tokio::test]
async fn sandbox_checkpoints_with_an_exec_stream_open_keep_the_agent_answering() {
    let d = Daemon::with_base().await;
    let parent = d.create_sandbox(json!({})).await;
    // A fork and a pause, each taken while a command streams its output.
    let stream = open_stream(&d, &parent.id, "echo started; sleep 60").await;
    let (status, body) = post_json(
        &d,
        &format!("/v1/sandboxes/{}/fork", parent.id),
        json!({"count": 1}),
    )
    .await;
    assert_eq!(status, 201, "fork: {body}\n{}", d.log());
    drop(stream);
    let fork: ForkResponse = serde_json::from_str(&body).unwrap();
    let branch = &fork.sandboxes[0].id;
    assert_eq!(d.sh(branch, "echo branch").await.stdout_str(), "branch\n");
    assert_eq!(
        d.sh(&parent.id, "echo parent").await.stdout_str(),
        "parent\n"
    );

    let stream = open_stream(
        &d,
        &parent.id,
        "for i in $(seq 600); do echo tick $i; sleep 0.1; done",
    )
    .await;
    pause(&d, &parent.id).await;
    drop(stream);
    assert_eq!(
        d.sh(&parent.id, "echo resumed").await.stdout_str(),
        "resumed\n"
    );
    // The streaming command itself lived on through the pause.
    let n = d.sh(&parent.id, "pgrep -c -f 'seq 600'").await.stdout_str();
    assert_eq!(n.trim(), "1");
}

#[tokio::test]
async fn sandbox_restores_after_pauses_taken_mid_stream_keep_the_agent_answering() {
    // Every resume restores the image (no standby), and each image is taken
    // while a command's exec stream is open: the stream's connection is reset
    // and deleted by the agent just before the checkpoint, and runsc
    // 20240729 reports such deleted registrations again after the restore
    // (docs/runtime.md). Before the agent dropped those events about one
    // cycle in ten left it dead, so 30 cycles catch it most of the time.
    let d = Daemon::with_base_and(&["--standby", "0"]).await;
    let sb = d.create_sandbox(json!({})).await;
    for cycle in 0..30 {
        let stream = open_stream(&d, &sb.id, "echo started; sleep 30").await;
        pause(&d, &sb.id).await;
        drop(stream);
        let (status, body) =
            post_json(&d, &format!("/v1/sandboxes/{}/resume", sb.id), json!({})).await;
        assert_eq!(status, 200, "resume in cycle {cycle}: {body}\n{}", d.log());
        assert_eq!(
            d.sh(&sb.id, "echo up").await.stdout_str(),
            "up\n",
            "cycle {cycle}"
        );
    }
}
