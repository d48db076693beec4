//! Volumes with real gVisor sandboxes: a file one sandbox writes into a
//! volume is in the host directory, outlives that sandbox and is read by
//! the next sandbox that mounts the volume; two live sandboxes share it;
//! a symlink in a volume never reaches the host's files; a deleted volume
//! takes its files and nothing a symlink points to.

use serde_json::json;
use std::os::unix::fs::MetadataExt;
use warren_e2e::Daemon;

async fn mounting(d: &Daemon, path: &str) -> String {
    let sb = d
        .create_sandbox(json!({"volumes": [{"name": "shared", "path": path}]}))
        .await;
    sb.id
}

#[tokio::test]
async fn sandbox_volume_outlives_its_sandbox_and_is_shared() {
    let d = Daemon::with_base().await;
    let (status, vol) = d
        .call(
            &d.key,
            "POST",
            "/v1/volumes",
            Some(json!({"name": "shared"})),
        )
        .await;
    assert_eq!(status, 201, "{vol}");
    let (_, me) = d.call(&d.key, "GET", "/v1/whoami", None).await;
    let host = d
        .data_dir()
        .join("volumes")
        .join(me["team"].as_str().unwrap())
        .join(vol["id"].as_str().unwrap());
    let meta = std::fs::metadata(&host).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (1000, 0o755));

    // A host file no sandbox may read, and a symlink to it planted in the
    // volume from the host side.
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("shadow");
    std::fs::write(&secret, "host-only-marker").unwrap();
    std::os::unix::fs::symlink(&secret, host.join("to-host-file")).unwrap();
    std::os::unix::fs::symlink("/", host.join("to-root")).unwrap();

    // A writes as the sandbox user, and plants symlinks of its own.
    let a = mounting(&d, "/data").await;
    let out = d
        .sh(
            &a,
            "echo hello-from-a > /data/note && mkdir /data/dir && echo deep > /data/dir/f \
             && ln -s /etc/shadow /data/shadow-link && ln -s / /data/root-link && echo ok",
        )
        .await;
    assert_eq!(out.stdout_str().trim(), "ok", "{}", out.stderr_str());
    assert_eq!(
        std::fs::read_to_string(host.join("note")).unwrap(),
        "hello-from-a\n"
    );
    assert_eq!(std::fs::metadata(host.join("note")).unwrap().uid(), 1000);
    // The host-side symlinks resolve inside the sandbox, not on the host.
    let secret_path = secret.to_str().unwrap();
    let out = d
        .sh_root(
            &a,
            &format!(
                "cat /data/to-host-file 2>&1; cat /data/to-root{secret_path} 2>&1; \
                 cat {secret_path} 2>&1; true"
            ),
        )
        .await;
    assert!(
        !out.stdout_str().contains("host-only-marker"),
        "a symlink in a volume reached a host file: {}",
        out.stdout_str()
    );
    // Still in use: the volume stays.
    let (status, body) = d.call(&d.key, "DELETE", "/v1/volumes/shared", None).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = d
        .call(&d.key, "POST", &format!("/v1/sandboxes/{a}/pause"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/sandboxes/{a}"), None)
        .await;
    assert!((200..300).contains(&status));

    // B and C mount it after A is gone, elsewhere, at the same time.
    let b = mounting(&d, "/mnt/v").await;
    let made = d.run_cli(&["create", "--volume", "shared:/work"]);
    assert!(made.status.success(), "{made:?}");
    let c = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let out = d.sh(&b, "cat /mnt/v/note /mnt/v/dir/f").await;
    assert_eq!(
        out.stdout_str(),
        "hello-from-a\ndeep\n",
        "{}",
        out.stderr_str()
    );
    let out = d.sh(&c, "echo from-c > /work/c && echo ok").await;
    assert_eq!(out.stdout_str().trim(), "ok");
    let out = d.sh(&b, "cat /mnt/v/c").await;
    assert_eq!(out.stdout_str(), "from-c\n");
    // A's symlinks point into B's own filesystem.
    let out = d
        .sh_root(
            &b,
            "readlink /mnt/v/shadow-link; ls /mnt/v/root-link/.warren",
        )
        .await;
    assert!(
        out.stdout_str().starts_with("/etc/shadow\n"),
        "{}",
        out.stdout_str()
    );
    assert!(out.stdout_str().contains("agent"), "{}", out.stdout_str());

    for id in [&b, &c] {
        let (status, _) = d
            .call(&d.key, "DELETE", &format!("/v1/sandboxes/{id}"), None)
            .await;
        assert!((200..300).contains(&status));
    }
    let listed = d.run_cli(&["volume", "ls"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("shared"));
    let (status, body) = d.call(&d.key, "DELETE", "/v1/volumes/shared", None).await;
    assert_eq!(status, 204, "{body}");
    assert!(!host.exists());
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "host-only-marker"
    );
    assert!(std::path::Path::new("/etc/shadow").exists());
}
