//! The daemon's data directory on a filesystem that fills up (a 1 GiB
//! ext4 of the test's own, filled by a file the test writes): what needs
//! space is refused with `507 insufficient_storage`, never a 500 or a
//! crash; what was committed before is kept (uploads read back with their
//! hashes, snapshots are listed and roll back, a paused sandbox resumes,
//! the audit log verifies); the daemon answers throughout; and once the
//! space is back every operation works again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::Digest;
use warren_e2e::Daemon;
use warren_e2e::chaos::Rng;
use warren_e2e::loopfs::LoopFs;

const SANDBOX: fn() -> Value = || {
    json!({
        "template": "base",
        "memory_mb": 256,
        "disk_mb": 256,
        "timeout_s": 3600,
    })
};

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// The status and JSON answer of `method path` with `body` (raw bytes for
/// an upload, JSON otherwise).
async fn call(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    d.call(&d.key, method, path, body).await
}

/// `POST /v1/sandboxes/{id}/{call}` with `body`.
async fn act(d: &Daemon, id: &str, call: &str, body: Option<Value>) -> (u16, Value) {
    d.call(&d.key, "POST", &format!("/v1/sandboxes/{id}/{call}"), body)
        .await
}

async fn upload(d: &Daemon, id: &str, path: &str, data: Vec<u8>) -> (u16, Value) {
    let resp = d
        .put(&format!("/v1/sandboxes/{id}/files?path={path}"))
        .body(data)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn download(d: &Daemon, id: &str, path: &str) -> Vec<u8> {
    let resp = d
        .get(&format!("/v1/sandboxes/{id}/files?path={path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "download {path} of {id}");
    resp.bytes().await.unwrap().to_vec()
}

fn ok(what: &str, (status, body): &(u16, Value), d: &Daemon) {
    assert!(
        (200..300).contains(status),
        "{what}: {status} {body}\n{}",
        tail(d)
    );
}

/// Refused for want of space: 507 with its code and a message saying so.
fn refused(what: &str, (status, body): &(u16, Value), d: &Daemon) {
    assert_eq!(*status, 507, "{what}: {body}\n{}", tail(d));
    assert_eq!(body["code"], "insufficient_storage", "{what}: {body}");
}

fn tail(d: &Daemon) -> String {
    let log = d.log();
    let lines: Vec<_> = log.lines().rev().take(40).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

async fn audit_verifies(d: &Daemon) {
    let out = d.run_cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The size of the latest signed head (heads are signed at least every
/// second while the log grows).
async fn audit_size(d: &Daemon) -> u64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, heads) = call(d, "GET", "/v1/audit/heads", None).await;
    assert_eq!(status, 200, "{heads}");
    heads["heads"][0]["size"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_disk_full_refuses_cleanly_and_loses_nothing() {
    let started = Instant::now();
    // Declared first, dropped last: the daemon on it goes before it is
    // unmounted.
    let fs = LoopFs::new(1024).expect("a loop-mounted ext4");
    let d = Daemon::start_under(
        &fs.path(),
        &Daemon::templates_dir(),
        &["--disk-reserve-mb", "32", "--standby", "0"],
    )
    .await
    .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    let mut rng = Rng::new(7);

    // What is committed before the disk fills.
    let a = d.create_sandbox(SANDBOX()).await.id;
    let mut files = Vec::new();
    for i in 0..3 {
        let size = 64 * 1024 + rng.below(256 * 1024);
        let data = rng.bytes(size);
        let path = format!("/home/user/kept{i}.bin");
        ok("upload", &upload(&d, &a, &path, data.clone()).await, &d);
        files.push((path, sha(&data)));
    }
    ok(
        "snapshot",
        &act(&d, &a, "snapshots", Some(json!({"name": "before"}))).await,
        &d,
    );
    let b = d.create_sandbox(SANDBOX()).await.id;
    ok(
        "marker",
        &upload(&d, &b, "/home/user/b.txt", b"b".to_vec()).await,
        &d,
    );
    ok("pause b", &act(&d, &b, "pause", None).await, &d);
    audit_verifies(&d).await;
    let entries_before = audit_size(&d).await;

    let filler = fs.fill().expect("filling the filesystem");
    println!(
        "disk full: {} bytes free; set-up took {:?}",
        fs.free_bytes().unwrap(),
        started.elapsed()
    );

    // Full: everything that needs space is refused with 507.
    refused(
        "create",
        &call(&d, "POST", "/v1/sandboxes", Some(SANDBOX())).await,
        &d,
    );
    refused(
        "fork",
        &act(&d, &a, "fork", Some(json!({"count": 1}))).await,
        &d,
    );
    refused("pause", &act(&d, &a, "pause", None).await, &d);
    refused(
        "snapshot",
        &act(&d, &a, "snapshots", Some(json!({"name": "while-full"}))).await,
        &d,
    );
    let big = rng.bytes(8 * 1024 * 1024);
    let while_full = upload(&d, &a, "/home/user/while-full.bin", big.clone()).await;
    println!("upload while full: {} {}", while_full.0, while_full.1);
    assert!(
        while_full.0 == 200 || while_full.0 == 507,
        "upload while full: {while_full:?}\n{}",
        tail(&d)
    );
    if while_full.0 == 507 {
        refused("upload", &while_full, &d);
    }
    // The daemon answers, the running sandbox works, the committed files
    // read back.
    ok("health", &call(&d, "GET", "/v1/health", None).await, &d);
    ok("list", &call(&d, "GET", "/v1/sandboxes", None).await, &d);
    assert_eq!(
        d.sh(&a, "echo alive").await.stdout_str(),
        "alive\n",
        "{}",
        tail(&d)
    );
    for (path, want) in &files {
        assert_eq!(
            &sha(&download(&d, &a, path).await),
            want,
            "{path} while full"
        );
    }
    let (status, list) = call(&d, "GET", &format!("/v1/sandboxes/{a}/snapshots"), None).await;
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains("\"before\""), "{list}");
    let (status, sb) = call(&d, "GET", &format!("/v1/sandboxes/{a}"), None).await;
    assert_eq!(
        (status, sb["state"].as_str()),
        (200, Some("running")),
        "{sb}"
    );

    // Space back.
    filler.free().unwrap();
    audit_verifies(&d).await;
    for (path, want) in &files {
        assert_eq!(&sha(&download(&d, &a, path).await), want, "{path} after");
    }
    if while_full.0 == 200 {
        assert_eq!(
            sha(&download(&d, &a, "/home/user/while-full.bin").await),
            sha(&big),
            "an upload acknowledged while the disk was full"
        );
    }
    let c = d.create_sandbox(SANDBOX()).await.id;
    let fresh = rng.bytes(512 * 1024);
    ok(
        "upload after",
        &upload(&d, &c, "/home/user/fresh.bin", fresh.clone()).await,
        &d,
    );
    for id in [&a, &c] {
        ok("pause after", &act(&d, id, "pause", None).await, &d);
        ok("resume after", &act(&d, id, "resume", None).await, &d);
    }
    assert_eq!(
        sha(&download(&d, &c, "/home/user/fresh.bin").await),
        sha(&fresh)
    );
    for (path, want) in &files {
        assert_eq!(
            &sha(&download(&d, &a, path).await),
            want,
            "{path} after a pause"
        );
    }
    ok("resume b", &act(&d, &b, "resume", None).await, &d);
    assert_eq!(download(&d, &b, "/home/user/b.txt").await, b"b");
    ok(
        "snapshot after",
        &act(&d, &a, "snapshots", Some(json!({"name": "after"}))).await,
        &d,
    );
    ok(
        "rollback to before",
        &act(&d, &a, "rollback", Some(json!({"snapshot": "before"}))).await,
        &d,
    );
    for (path, want) in &files {
        assert_eq!(
            &sha(&download(&d, &a, path).await),
            want,
            "{path} rolled back"
        );
    }
    // The log went on.
    assert!(audit_size(&d).await > entries_before);
    audit_verifies(&d).await;
    println!("disk full suite: {:?}", started.elapsed());
}
