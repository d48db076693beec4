//! Builds the real `base` template with mmdebstrap from the host's Debian
//! mirror (20-60 s). Needs root, mmdebstrap and the mirror.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use tokio::sync::mpsc;
use warren_template::{Status, TemplateStore};

#[tokio::test]
async fn slow_base_has_the_tools_agents_expect_and_user_with_sudo() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, mut rx) = mpsc::channel(4096);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(l) = rx.recv().await {
            lines.push(l);
        }
        lines
    });
    let result = store
        .build("base", warren_template::Rebuild::IfMissing, tx)
        .await;
    let lines = collector.await.unwrap();
    let t = match result {
        Ok(t) => t,
        Err(e) => panic!("base build failed: {e}\n{}", lines.join("\n")),
    };
    assert_eq!(t.status, Status::Ready);
    assert!(
        lines.iter().any(|l| l.starts_with("I: ")),
        "mmdebstrap output is streamed: {lines:?}"
    );
    let root = &t.rootfs;
    for tool in [
        "usr/bin/git",
        "usr/bin/python3",
        "usr/bin/curl",
        "usr/bin/bash",
        "usr/bin/sudo",
        // E2B's `wait_for_port` ready check runs `ss`.
        "usr/bin/ss",
    ] {
        assert!(root.join(tool).exists(), "{tool} missing");
    }
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\nuser:x:1000:1000::/home/user:/bin/bash\n"),
        "{passwd}"
    );
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    assert!(shadow.contains("\nuser:"), "user has a shadow entry");
    let home = fs::metadata(root.join("home/user")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    assert!(
        root.join("home/user/.bashrc").is_file(),
        "skel files copied"
    );
    let sudo = fs::read_to_string(root.join("etc/sudoers.d/warren-user")).unwrap();
    assert_eq!(sudo, "user ALL=(ALL:ALL) NOPASSWD:ALL\n");
    let tmp = fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    let debs = fs::read_dir(root.join("var/cache/apt/archives"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "deb"))
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(debs, 0, "apt caches removed");
    // No mounts of the build survive in the host's view.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "{mounts}"
    );
    // The ready template is reused, not rebuilt.
    let (tx, _rx) = mpsc::channel(16);
    let again = store
        .build("base", warren_template::Rebuild::IfMissing, tx)
        .await
        .unwrap();
    assert_eq!(again, t);
}
