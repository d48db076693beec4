//! Filesystem-only pauses (`docs/snapshots.md`) on real gVisor: the pause
//! ends every process and keeps the files; the resume brings the same
//! sandbox back with its files, none of its old processes, and its
//! template's start command running again; the image is smaller than a
//! full pause's of the same sandbox.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_e2e::Daemon;

/// The start command of the test's template: it counts its boots in a
/// file and stays up.
const START: &str = "echo boot >> /tmp/boots; exec sleep infinity";

/// A templates directory with a copy of the shared `base` whose version
/// has the start command [`START`].
fn template_with_start() -> tempfile::TempDir {
    let dir = Daemon::private_templates(&["base"]).unwrap();
    let tdir = dir.path().join("base");
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(tdir.join("index.json")).unwrap()).unwrap();
    let version = index["tags"]["latest"].as_str().unwrap();
    let meta_path = tdir.join("v").join(version).join("version.json");
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["start"] = json!({"cmd": ["/bin/sh", "-c", START], "user": "root", "cwd": "/"});
    // Hard-linked to the shared template's: replaced, never written into.
    std::fs::remove_file(&meta_path).unwrap();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    dir
}

/// How many processes of the sandbox run a command line holding `what`
/// (letters and spaces).
async fn running(d: &Daemon, id: &str, what: &str) -> usize {
    // The last letter in brackets: the pattern does not match the command
    // lines of the shell and the grep that look for it.
    let (head, last) = what.split_at(what.len() - 1);
    let script = format!(
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done \
         | grep -c -- '{head}[{last}]' || true"
    );
    let out = d.sh(id, &script).await;
    out.stdout_str().trim().parse().unwrap()
}

/// The lines of `/tmp/boots`, once there are `n` of them.
async fn wait_boots(d: &Daemon, id: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = d.sh(id, "cat /tmp/boots 2>/dev/null | wc -l").await;
        let boots: usize = out.stdout_str().trim().parse().unwrap();
        if boots == n {
            return;
        }
        assert!(boots < n, "{boots} boots, expected {n}");
        assert!(Instant::now() < deadline, "{boots} boots, expected {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(d: &Daemon, path: &str, body: Option<Value>) -> Value {
    let mut req = d.post(path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(
        status.is_success(),
        "POST {path}: {status} {text}\n{}",
        d.log()
    );
    serde_json::from_str(&text).unwrap()
}

/// The size of the image of the pause of `id` that kept `mode`, as its
/// audit entry records it.
async fn image_size(d: &Daemon, id: &str, mode: &str) -> u64 {
    let list: warren_api_types::AuditEntryList = d
        .get_json(&format!(
            "/v1/audit/entries?sandbox={id}&action=sandbox.pause"
        ))
        .await;
    let sizes: Vec<u64> = list
        .entries
        .iter()
        .map(|e| &e.entry.details)
        .filter(|d| d.get("mode") == Some(&json!(mode)))
        .filter_map(|d| d.get("size_bytes")?.as_u64())
        .collect();
    assert_eq!(sizes.len(), 1, "{:?}", list.entries);
    sizes[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_fs_pause_keeps_files_ends_processes_and_boots_again() {
    let templates = template_with_start();
    let d = Daemon::start_in(templates.path(), &[]).await.unwrap();
    let sb = d.create_sandbox(json!({"template": "base"})).await;
    let id = sb.id.as_str();
    wait_boots(&d, id, 1).await;

    // A file, and a process holding 64 MiB of memory that does not
    // compress.
    let out = d
        .sh(
            id,
            "echo kept > /tmp/note && \
             (nohup python3 -c 'import os,time; b=os.urandom(64<<20); open(\"/tmp/hog\",\"w\").close(); time.sleep(100000)' \
               >/dev/null 2>&1 &) && \
             for i in $(seq 300); do [ -e /tmp/hog ] && exit 0; sleep 0.1; done; exit 1",
        )
        .await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    assert_eq!(running(&d, id, "urandom").await, 1);

    // A full pause keeps the process.
    let paused = post(&d, &format!("/v1/sandboxes/{id}/pause"), None).await;
    assert_eq!(paused["pause_mode"], "full", "{paused}");
    let full = image_size(&d, id, "full").await;
    post(&d, &format!("/v1/sandboxes/{id}/resume"), None).await;
    assert_eq!(
        running(&d, id, "urandom").await,
        1,
        "a full pause keeps processes"
    );
    assert_eq!(running(&d, id, "sleep infinity").await, 1);

    // A filesystem-only pause does not.
    let paused = post(
        &d,
        &format!("/v1/sandboxes/{id}/pause"),
        Some(json!({"mode": "filesystem"})),
    )
    .await;
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["pause_mode"], "filesystem", "{paused}");
    let info: Value = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    assert_eq!(info["pause_mode"], "filesystem");
    let fs_only = image_size(&d, id, "filesystem").await;
    assert!(
        fs_only < full,
        "filesystem-only image {fs_only} B, full image {full} B"
    );

    let resumed = post(&d, &format!("/v1/sandboxes/{id}/resume"), None).await;
    assert_eq!(resumed["id"], id);
    assert_eq!(resumed["state"], "running");
    assert_eq!(resumed["pause_mode"], Value::Null);
    let out = d.sh(id, "cat /tmp/note").await;
    assert_eq!(out.stdout_str(), "kept\n", "the files are kept");
    assert_eq!(running(&d, id, "urandom").await, 0, "the process is gone");
    // The start command ran again (and its old run is gone: one runs).
    wait_boots(&d, id, 2).await;
    assert_eq!(running(&d, id, "sleep infinity").await, 1);
    eprintln!("pause images: full {full} B, filesystem-only {fs_only} B");
}
