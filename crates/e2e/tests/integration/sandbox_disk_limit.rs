//! Every sandbox's disk limit (`disk_mb`), end to end with real runsc:
//! writes past it fail with ENOSPC inside the sandbox (root filesystem and
//! `/tmp` alike) while the sandbox, the host and other sandboxes go on;
//! uploads past it answer 507; the limit travels with pauses and forks;
//! bad sizes and full quotas are refused; nothing stays mounted after a
//! kill, not even across a daemon crash.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use warren_api_types::{ForkResponse, Sandbox};
use warren_e2e::Daemon;

const MIB: u64 = 1024 * 1024;

/// Writes `mb` MiB of zeros to `path` as root; dd's exit code and output.
async fn fill(d: &Daemon, id: &str, path: &str, mb: u32) -> (Option<i32>, String) {
    let out = d
        .sh_root(
            id,
            &format!("dd if=/dev/zero of={path} bs=1M count={mb} 2>&1; rc=$?; sync; exit $rc"),
        )
        .await;
    (out.exit_code, out.stdout_str())
}

/// Asserts that writing `mb` MiB to `path` fails with ENOSPC and that the
/// sandbox still answers afterwards.
async fn assert_no_space(d: &Daemon, id: &str, path: &str, mb: u32) {
    let (code, out) = fill(d, id, path, mb).await;
    assert_ne!(code, Some(0), "{mb} MiB into {path} of {id} fit: {out}");
    assert!(out.contains("No space left on device"), "{path}: {out}");
    let alive = d.sh(id, "echo alive").await;
    assert_eq!(alive.stdout_str(), "alive\n", "sandbox {id} after ENOSPC");
}

/// The sandbox's directory in the runtime's state directory.
fn sandbox_dir(d: &Daemon, id: &str) -> PathBuf {
    d.data_dir().join("runtime/sandboxes").join(id)
}

/// Bytes the sandbox's disk image takes on the host.
fn image_allocated(d: &Daemon, id: &str) -> u64 {
    let meta = std::fs::metadata(sandbox_dir(d, id).join("disk.img")).expect("disk image");
    meta.blocks() * 512
}

/// Whether anything is mounted at a path under `dir`, in this mount namespace.
fn mounted_under(dir: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(dir)))
}

/// Loop devices (`losetup -a` lines) backed by a file under `dir`.
fn loop_devices_under(dir: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .expect("losetup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(dir.to_str().unwrap()))
        .map(str::to_owned)
        .collect()
}

async fn state(d: &Daemon, id: &str) -> String {
    let (_, sb) = d
        .call(&d.key, "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    sb["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn sandbox_disk_limit_stops_root_and_tmp_writes_with_enospc_only_there() {
    let d = Daemon::with_base().await;
    // 256 MiB of memory: /tmp in memory would meet the OOM killer first.
    let small = d
        .create_sandbox(json!({"disk_mb": 256, "memory_mb": 256}))
        .await;
    assert_eq!(small.disk_mb, 256);
    let other = d.create_sandbox(json!({})).await;
    assert_eq!(other.disk_mb, 10240, "the daemon's default");

    assert_no_space(&d, &small.id, "/root/big", 400).await;
    // The host gave the sandbox no more than its limit.
    let used = image_allocated(&d, &small.id);
    assert!(used <= 256 * MIB, "the image takes {used} bytes");
    // What is deleted inside is free again; /tmp shares the limit.
    let out = d.sh_root(&small.id, "rm /root/big && sync").await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    assert_no_space(&d, &small.id, "/tmp/big", 400).await;
    let out = d.sh_root(&small.id, "rm /tmp/big && sync").await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    let (code, out) = fill(&d, &small.id, "/root/again", 100).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(state(&d, &small.id).await, "running");

    // The other sandbox writes past the small one's limit untouched.
    let (code, out) = fill(&d, &other.id, "/root/big", 300).await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = fill(&d, &other.id, "/tmp/big", 300).await;
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test]
async fn sandbox_disk_limit_upload_past_it_is_507_and_leaves_the_sandbox_as_it_was() {
    // The daemon's default applies to native and E2B creates alike.
    let d = Daemon::with_base_and(&["--default-disk-mb", "128"]).await;
    let sb = d.create_sandbox(json!({})).await;
    assert_eq!(sb.disk_mb, 128);
    let big = vec![0u8; 200 * MIB as usize];

    let resp = d
        .put(&format!(
            "/v1/sandboxes/{}/files?path=/home/user/big",
            sb.id
        ))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let err: Value = resp.json().await.unwrap();
    assert_eq!(status, 507, "{err}");
    assert_eq!(err["code"], "insufficient_storage", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not enough disk space in the sandbox"),
        "{err}"
    );
    // Alive, nothing half-written left, and room again for a small file.
    assert_eq!(state(&d, &sb.id).await, "running");
    let out = d.sh_root(&sb.id, "ls -A /home/user").await;
    assert!(
        !out.stdout_str().contains("big"),
        "left behind: {}",
        out.stdout_str()
    );
    let resp = d
        .put(&format!(
            "/v1/sandboxes/{}/files?path=/home/user/small",
            sb.id
        ))
        .body(vec![1u8; MIB as usize])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // E2B: the SDK's upload goes to envd, which answers 507 too.
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .json(&json!({"templateID": "base"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["sandboxID"].as_str().unwrap();
    let token = created["envdAccessToken"].as_str().unwrap();
    let resp = d
        .http
        .post(format!("{}/files?path=/home/user/big&username=user", d.url))
        .header("E2b-Sandbox-Id", id)
        .header("E2b-Sandbox-Port", "49983")
        .header("X-Access-Token", token)
        .header("Content-Type", "application/octet-stream")
        .body(big)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["code"], 507, "{body}");
    let out = d.sh(id, "ls -A /home/user").await;
    assert!(!out.stdout_str().contains("big"), "{}", out.stdout_str());
    // E2B's listing shows the disk size.
    let listed: Value = d
        .http
        .get(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sandboxID"] == id)
        .unwrap();
    assert_eq!(mine["diskSizeMB"], 128, "{mine}");
}

#[tokio::test]
async fn sandbox_disk_limit_travels_with_pause_resume_and_fork() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({"disk_mb": 160})).await;
    // Random bytes: a checkpoint stores no page of zeros, so zeros would
    // come back taking no space.
    let out = d
        .sh_root(
            &sb.id,
            "head -c 62914560 /dev/urandom > /root/kept && sync && stat -c %s /root/kept",
        )
        .await;
    assert_eq!(out.stdout_str().trim(), (60 * MIB).to_string());

    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/pause", sb.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "pause: {body}");
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/resume", sb.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "resume: {body}");
    let resumed: Sandbox = serde_json::from_value(body).unwrap();
    assert_eq!(resumed.disk_mb, 160);
    // The 60 MiB came back with it and count: 110 more do not fit (they
    // would alone).
    let out = d.sh_root(&sb.id, "stat -c %s /root/kept").await;
    assert_eq!(out.stdout_str().trim(), (60 * MIB).to_string());
    assert_no_space(&d, &sb.id, "/root/more", 110).await;
    d.sh_root(&sb.id, "rm -f /root/more").await;

    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", sb.id),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 201, "fork: {body}\n{}", d.log());
    let fork: ForkResponse = serde_json::from_value(body).unwrap();
    let branch = &fork.sandboxes[0];
    assert_eq!(branch.disk_mb, 160);
    assert_no_space(&d, &branch.id, "/tmp/more", 110).await;
    // A create from a named snapshot takes its limit too, and no other.
    let (status, snap) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/snapshots", sb.id),
            Some(json!({"name": "sized"})),
        )
        .await;
    assert_eq!(status, 201, "snapshot: {snap}");
    let snap_id = snap["id"].as_str().unwrap();
    let from_snapshot = d.create_sandbox(json!({"snapshot": snap_id})).await;
    assert_eq!(from_snapshot.disk_mb, 160);
    assert_no_space(&d, &from_snapshot.id, "/root/more", 110).await;
    let out = d
        .sh_root(&from_snapshot.id, "rm -f /root/kept /root/more && sync")
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    let (code, out) = fill(&d, &from_snapshot.id, "/root/more", 110).await;
    assert_eq!(code, Some(0), "110 MiB alone fit: {out}");
    let (status, err) = d
        .call(
            &d.key,
            "POST",
            "/v1/sandboxes",
            Some(json!({"snapshot": snap_id, "disk_mb": 1024})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("disk_mb"),
        "{err}"
    );
}

#[tokio::test]
async fn sandbox_disk_limit_out_of_range_is_400_and_a_full_disk_quota_429() {
    let d = Daemon::with_base().await;
    for disk_mb in [0, 63, 2 * 1024 * 1024] {
        let (status, err) = d
            .call(
                &d.key,
                "POST",
                "/v1/sandboxes",
                Some(json!({"disk_mb": disk_mb})),
            )
            .await;
        assert_eq!(status, 400, "{disk_mb}: {err}");
        assert_eq!(err["code"], "invalid_argument", "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("disk_mb must be between 64"),
            "{err}"
        );
    }

    let (status, created) = d
        .call(
            &d.key,
            "POST",
            "/v1/teams",
            Some(json!({"name": "acme", "admin": "ada"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let acme = created["key"]["secret"].as_str().unwrap().to_owned();
    let (status, q) = d
        .call(
            &d.key,
            "PUT",
            "/v1/teams/acme/quota",
            Some(json!({"max_disk_mb": 300})),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    let (status, sb) = d
        .call(
            &acme,
            "POST",
            "/v1/sandboxes",
            Some(json!({"disk_mb": 256})),
        )
        .await;
    assert_eq!(status, 201, "{sb}");
    let (status, err) = d
        .call(
            &acme,
            "POST",
            "/v1/sandboxes",
            Some(json!({"disk_mb": 128})),
        )
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "quota_exceeded", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("max_disk_mb"),
        "{err}"
    );
    let (_, q) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    assert_eq!(q["usage"]["disk_mb"], 256, "{q}");
    d.call(
        &acme,
        "DELETE",
        &format!("/v1/sandboxes/{}", sb["id"].as_str().unwrap()),
        None,
    )
    .await;
}

#[tokio::test]
async fn sandbox_disk_limit_teardown_leaves_no_mount_or_loop_device() {
    let mut d = Daemon::with_base().await;
    let a = d.create_sandbox(json!({"disk_mb": 128})).await;
    let b = d.create_sandbox(json!({"disk_mb": 128})).await;
    for sb in [&a, &b] {
        let dir = sandbox_dir(&d, &sb.id);
        assert!(mounted_under(&dir), "{} has no disk mounted", sb.id);
        assert_eq!(loop_devices_under(&dir).len(), 1, "{}", sb.id);
    }

    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/sandboxes/{}", a.id), None)
        .await;
    assert!(status < 300, "{status}");
    // A crashed daemon leaves b's disk mounted; the next one cleans it up
    // when b is killed.
    d.stop_with(Signal::SIGKILL).unwrap();
    d.restart().await.unwrap();
    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/sandboxes/{}", b.id), None)
        .await;
    assert!(status < 300, "{status}");

    for sb in [&a, &b] {
        let dir = sandbox_dir(&d, &sb.id);
        let mut tries = 0;
        while (mounted_under(&dir) || !loop_devices_under(&dir).is_empty() || dir.exists())
            && tries < 100
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tries += 1;
        }
        assert!(!mounted_under(&dir), "{} still mounted", sb.id);
        assert_eq!(loop_devices_under(&dir), Vec::<String>::new(), "{}", sb.id);
        assert!(!dir.exists(), "{} left {}", sb.id, dir.display());
    }
}
