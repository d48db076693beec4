//! Template snapshots (`docs/templates.md`): a template with a start command
//! is booted and checkpointed once, and creates from it restore that image,
//! with the start command's server (the code interpreter) already running
//! as it ran in the image. Each restored sandbox is its own (files, env,
//! kernel state); the image survives a restart and goes when the template
//! is rebuilt or removed, or does not restore (that create boots cold); a
//! template without a start command boots cold.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warren_e2e::Daemon;

const FLAG: [&str; 2] = ["--template-snapshots", "true"];

/// How many images the daemon's log says it made so far.
fn made(d: &Daemon) -> usize {
    d.log().matches("template snapshot made").count()
}

/// Waits until the daemon made its `n`th template snapshot.
async fn wait_made(d: &Daemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while made(d) < n {
        assert!(
            Instant::now() < deadline,
            "no template snapshot was made:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The complete images in the daemon's snapshot store.
fn images(d: &Daemon) -> Vec<String> {
    let dir = d.data_dir().join("snapshots/images");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until `check` holds of the daemon's images.
async fn wait_images(d: &Daemon, what: &str, check: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = images(d);
        if check(&now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: images {now:?}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The details of the `sandbox.create` audit entry of `id`.
async fn create_entry(d: &Daemon, id: &str) -> serde_json::Map<String, Value> {
    let list: warren_api_types::AuditEntryList = d
        .get_json(&format!(
            "/v1/audit/entries?sandbox={id}&action=sandbox.create"
        ))
        .await;
    assert_eq!(list.entries.len(), 1, "{:?}", list.entries);
    list.entries[0].entry.details.clone()
}

fn from_snapshot(details: &serde_json::Map<String, Value>) -> bool {
    details.get("from_template_snapshot") == Some(&json!(true))
}

/// Runs `code` in the sandbox's code interpreter (from inside, through
/// `localhost:49999`, at once: no retry); its output lines.
async fn run_code(d: &Daemon, id: &str, code: &str) -> String {
    let body = json!({ "code": code }).to_string();
    let script = format!(
        "curl -sS --max-time 30 -X POST localhost:49999/execute -d '{}'",
        body.replace('\'', "'\\''")
    );
    let out = d.sh(id, &script).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    out.stdout_str()
}

/// A templates directory holding hard-linked copies of the shared
/// `base` and `code-interpreter` templates (their metadata copied, so it
/// can be rewritten), which a test may rebuild or remove.
fn private_templates() -> (tempfile::TempDir, PathBuf) {
    let dir = Daemon::private_templates(&["base", "code-interpreter"]).unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Gives the template in `dir` a new `latest` version with the same
/// files, as a rebuild that changed something would.
fn rebuild(dir: &Path, name: &str) {
    let tdir = dir.join(name);
    let index_path = tdir.join("index.json");
    let mut index: Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let old = index["tags"]["latest"].as_str().unwrap().to_owned();
    let new = "0000000000002030";
    let status = Command::new("cp")
        .arg("-al")
        .arg(tdir.join("v").join(&old))
        .arg(tdir.join("v").join(new))
        .status()
        .unwrap();
    assert!(status.success());
    let meta_path = tdir.join("v").join(new).join("version.json");
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["version"] = json!(new);
    std::fs::remove_file(&meta_path).unwrap();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    index["tags"]["latest"] = json!(new);
    let fresh = tdir.join("index.json.new");
    std::fs::write(&fresh, index.to_string()).unwrap();
    std::fs::rename(&fresh, &index_path).unwrap();
}

fn ensure_shared_templates() {
    let shared = Daemon::templates_dir();
    for name in ["base", "code-interpreter"] {
        assert!(
            Daemon::template_rootfs(name).is_ok(),
            "{} lacks the {name} template (scripts/test.sh builds it)",
            shared.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_template_snapshot_creates_with_the_server_running() {
    ensure_shared_templates();
    let d = Daemon::start_with(&FLAG).await.expect("daemon starts");
    wait_made(&d, 1).await;

    let a = d
        .create_sandbox(json!({"template": "code-interpreter", "env": {"WHO": "a"}}))
        .await;
    let b = d
        .create_sandbox(json!({"template": "code-interpreter", "env": {"WHO": "b"}}))
        .await;
    for sb in [&a, &b] {
        let details = create_entry(&d, &sb.id).await;
        assert!(from_snapshot(&details), "{details:?}\n{}", d.log());
    }

    // The server answers at once, with the kernel it had in the image: its
    // process was started in the maker, whose id its environment still
    // holds (documented), while commands get the sandbox's own.
    let out = run_code(&d, &a.id, "x = 41\nprint(x + 1)").await;
    assert!(out.contains("42"), "{out}");
    let server_env = d
        .sh_root(
            &a.id,
            "for p in /proc/[0-9]*; do grep -qa code-interpreter/[s]erver.py $p/cmdline && \
             tr '\\0' '\\n' < $p/environ | grep ^WARREN_SANDBOX_ID= && break; done",
        )
        .await
        .stdout_str();
    assert!(server_env.starts_with("WARREN_SANDBOX_ID="), "{server_env}");
    assert!(!server_env.contains(&a.id), "{server_env}");

    // Two sandboxes of one image share nothing afterwards.
    let out = run_code(&d, &b.id, "print(x)").await;
    assert!(out.contains("NameError"), "{out}");
    d.sh(&a.id, "echo mine > /home/user/a.txt").await;
    let there = d.sh(&b.id, "test -e /home/user/a.txt; echo $?").await;
    assert_eq!(there.stdout_str().trim(), "1");
    for (sb, who) in [(&a, "a"), (&b, "b")] {
        let env = d.sh(&sb.id, "echo $WHO $WARREN_SANDBOX_ID").await;
        assert_eq!(env.stdout_str().trim(), format!("{who} {}", sb.id));
    }

    // A template without a start command boots cold, and gets no image.
    let cold = d.create_sandbox(json!({"template": "base"})).await;
    assert!(!from_snapshot(&create_entry(&d, &cold.id).await));
    assert_eq!(made(&d), 1, "{}", d.log());
    // Nor does a create whose limits differ from the image's.
    let other = d
        .create_sandbox(json!({"template": "code-interpreter", "memory_mb": 1024}))
        .await;
    assert!(!from_snapshot(&create_entry(&d, &other.id).await));
    let out = run_code(&d, &other.id, "print(6 * 7)").await;
    assert!(out.contains("42"), "{out}");

    // A warm pool's sandbox is running already: a create takes it before
    // restoring the image.
    let out = d.run_cli(&[
        "pool",
        "set",
        "code-interpreter",
        "--min",
        "1",
        "--max",
        "1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let pooled = loop {
        let sb = d
            .create_sandbox(json!({"template": "code-interpreter"}))
            .await;
        let details = create_entry(&d, &sb.id).await;
        if details.get("pooled") == Some(&json!(true)) {
            assert!(!from_snapshot(&details), "{details:?}");
            break sb;
        }
        assert!(
            Instant::now() < deadline,
            "no create was pooled:\n{}",
            d.log()
        );
        d.delete(&format!("/v1/sandboxes/{}", sb.id))
            .send()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let out = run_code(&d, &pooled.id, "print(6 * 8)").await;
    assert!(out.contains("48"), "{out}");

    // The image is no team's snapshot: not listed, not found by id.
    let image = images(&d)[0].clone();
    let listed = d
        .get_text(&format!("/v1/sandboxes/{}/snapshots", a.id))
        .await;
    assert!(!listed.contains(&image), "{listed}");
    let by_id = d
        .post("/v1/sandboxes")
        .json(&json!({ "snapshot": image }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.status(), 404, "{}", by_id.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_template_snapshot_survives_restarts_and_goes_with_its_template() {
    ensure_shared_templates();
    let (_keep, templates) = private_templates();
    let mut d = Daemon::start_in(&templates, &FLAG)
        .await
        .expect("daemon starts");
    wait_made(&d, 1).await;
    let first = images(&d);
    assert_eq!(first.len(), 1, "{first:?}");

    // Kept across a restart, and restored from.
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    d.restart().await.unwrap();
    assert_eq!(images(&d), first);
    let sb = d
        .create_sandbox(json!({"template": "code-interpreter"}))
        .await;
    assert!(from_snapshot(&create_entry(&d, &sb.id).await));
    assert_eq!(made(&d), 1, "remade after a restart:\n{}", d.log());

    // Rebuilt: the next create boots cold, the old image goes and a new
    // one is made for the new build.
    rebuild(&templates, "code-interpreter");
    let cold = d
        .create_sandbox(json!({"template": "code-interpreter"}))
        .await;
    assert!(!from_snapshot(&create_entry(&d, &cold.id).await));
    wait_made(&d, 2).await;
    wait_images(&d, "the rebuilt template's new image only", |now| {
        now.len() == 1 && now != first
    })
    .await;
    let warm = d
        .create_sandbox(json!({"template": "code-interpreter"}))
        .await;
    assert!(from_snapshot(&create_entry(&d, &warm.id).await));

    // An image that does not restore: the create boots the same sandbox
    // cold and says why, the image goes and a new one is made.
    let broken = images(&d);
    let dir = d.data_dir().join("snapshots/images").join(&broken[0]);
    for file in std::fs::read_dir(&dir).unwrap() {
        std::fs::write(file.unwrap().path(), b"not an image").unwrap();
    }
    let fallback = d
        .create_sandbox(json!({"template": "code-interpreter"}))
        .await;
    let details = create_entry(&d, &fallback.id).await;
    assert_eq!(
        details["from_template_snapshot"],
        json!(false),
        "{details:?}"
    );
    assert!(
        details.contains_key("template_snapshot_error"),
        "{details:?}"
    );
    let out = run_code(&d, &fallback.id, "print(6 * 7)").await;
    assert!(out.contains("42"), "{out}");
    wait_made(&d, 3).await;
    wait_images(&d, "a new image for the broken one", |now| {
        now.len() == 1 && now != broken
    })
    .await;

    // Removed: its image goes at the next sweep.
    for id in [&sb.id, &cold.id, &warm.id, &fallback.id] {
        d.delete(&format!("/v1/sandboxes/{id}"))
            .send()
            .await
            .unwrap();
    }
    std::fs::remove_dir_all(templates.join("code-interpreter")).unwrap();
    wait_images(&d, "no image once the template is gone", |now| {
        now.is_empty()
    })
    .await;
}
