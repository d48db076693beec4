//! The daemon in a memory cgroup of its own with a small limit: creates,
//! large uploads and downloads (streamed, never held whole), pauses to
//! disk, resumes and forks all work, and the kernel kills nothing of it.
//! The sandboxes themselves run in cgroups of their own, outside the
//! daemon's. `WARREN_DAEMON_MEMORY_MB` sets another limit.

use futures::future::join_all;
use serde_json::json;
use sha2::Digest;
use warren_e2e::Daemon;
use warren_e2e::chaos::Rng;
use warren_e2e::memcg::MemoryCgroup;

const MIB: u64 = 1024 * 1024;
/// The daemon's limit by default: its own heap and the page cache of what
/// it writes.
const LIMIT_MB: u64 = 192;

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_daemon_under_a_memory_limit_is_not_killed() {
    let limit = std::env::var("WARREN_DAEMON_MEMORY_MB")
        .map(|v| v.parse::<u64>().expect("WARREN_DAEMON_MEMORY_MB"))
        .unwrap_or(LIMIT_MB)
        * MIB;
    let cg = MemoryCgroup::new(limit).expect("a memory cgroup");
    let d = Daemon::with_base_and(&["--standby", "0"]).await;
    let pid = d.pid().unwrap();
    cg.add(pid).expect("the daemon joins the cgroup");

    let mut rng = Rng::new(11);
    let mut sandboxes = Vec::new();
    for _ in 0..2 {
        let sb = d
            .create_sandbox(json!({"template": "base", "memory_mb": 256, "disk_mb": 512}))
            .await;
        sandboxes.push(sb.id);
    }
    // 4 uploads of 48 MiB at once, more than the limit together.
    let data: Vec<Vec<u8>> = (0..4).map(|_| rng.bytes(48 * MIB as usize)).collect();
    let uploads = data.iter().enumerate().map(|(i, bytes)| {
        let id = &sandboxes[i % 2];
        d.put(&format!(
            "/v1/sandboxes/{id}/files?path=/home/user/big{i}.bin"
        ))
        .body(bytes.clone())
        .send()
    });
    for (i, resp) in join_all(uploads).await.into_iter().enumerate() {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200, "upload {i}: {}", d.log());
    }
    let downloads = (0..4).map(|i| {
        let id = &sandboxes[i % 2];
        d.get(&format!(
            "/v1/sandboxes/{id}/files?path=/home/user/big{i}.bin"
        ))
        .send()
    });
    for (i, resp) in join_all(downloads).await.into_iter().enumerate() {
        let body = resp.unwrap().bytes().await.unwrap();
        assert_eq!(sha(&body), sha(&data[i]), "download {i}");
    }
    for id in &sandboxes {
        let (status, body) = d
            .call(&d.key, "POST", &format!("/v1/sandboxes/{id}/pause"), None)
            .await;
        assert_eq!(status, 200, "pause: {body}\n{}", d.log());
        let (status, body) = d
            .call(&d.key, "POST", &format!("/v1/sandboxes/{id}/resume"), None)
            .await;
        assert_eq!(status, 200, "resume: {body}\n{}", d.log());
    }
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", sandboxes[0]),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 201, "fork: {body}\n{}", d.log());
    let branch = body["sandboxes"][0]["id"].as_str().unwrap().to_owned();
    let out = d.sh(&branch, "sha256sum /home/user/big0.bin").await;
    assert!(
        out.stdout_str().starts_with(&sha(&data[0])),
        "{}",
        out.stdout_str()
    );

    println!(
        "daemon memory cgroup: peak {} MiB of {} MiB, {} OOM kills",
        cg.peak() / MIB,
        limit / MIB,
        cg.oom_kills()
    );
    assert_eq!(
        cg.oom_kills(),
        0,
        "the kernel killed something of the daemon's"
    );
    assert_eq!(d.pid(), Some(pid));
    assert!(cg.pids().contains(&pid), "the daemon is gone: {}", d.log());
    let (status, _) = d.call(&d.key, "GET", "/v1/health", None).await;
    assert_eq!(status, 200);
}
