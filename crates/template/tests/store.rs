//! The template store as a daemon uses it: building `tiny`, concurrent
//! builds, crash leftovers, bad names, removal.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use warren_template::{Rebuild, Recipe, Status, TemplateError, TemplateStore};

fn lines() -> (mpsc::Sender<String>, mpsc::Receiver<String>) {
    mpsc::channel(1024)
}

fn drain(rx: &mut mpsc::Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(l) = rx.try_recv() {
        out.push(l);
    }
    out
}

#[tokio::test]
async fn tiny_has_busybox_users_and_writable_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, mut rx) = lines();
    let t = store.build("tiny", Rebuild::IfMissing, tx).await.unwrap();

    assert_eq!(t.status, Status::Ready);
    assert_eq!(t.recipe, Some(Recipe::Tiny));
    assert!(t.size_bytes > 500_000, "{}", t.size_bytes);
    assert!(t.built_at.is_some());
    let root = &t.rootfs;
    let version = t.version.clone().unwrap();
    assert_eq!(t.tags, ["latest"]);
    assert_eq!(
        root,
        &dir.path().join("tiny/v").join(&version).join("rootfs")
    );
    for applet in ["sh", "ls", "cat", "echo", "sleep", "wget", "httpd"] {
        let link = fs::read_link(root.join("bin").join(applet)).unwrap();
        assert_eq!(link, Path::new("busybox"), "{applet}");
    }
    assert!(!root.join("bin/bash").exists());
    assert_eq!(
        fs::read_link(root.join("usr/bin")).unwrap(),
        Path::new("../bin")
    );
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("root:x:0:0:"), "{passwd}");
    assert!(
        passwd.contains("user:x:1000:1000::/home/user:/bin/sh"),
        "{passwd}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("user:x:1000:"), "{group}");
    let home = fs::metadata(root.join("home/user")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    let tmp = fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);

    // The copied busybox runs and is the one we checked.
    let out = std::process::Command::new(root.join("bin/busybox"))
        .args(["echo", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");

    let progress = drain(&mut rx);
    assert!(progress.iter().any(|l| l.contains("ready")), "{progress:?}");

    assert_eq!(store.get("tiny").unwrap(), t);
    assert_eq!(store.ready("tiny").unwrap(), t);
    assert_eq!(store.list().unwrap(), vec![t]);
    // Nothing but the template and its lock is left in the directory.
    let mut entries: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [".tiny.lock", "tiny"]);
}

#[tokio::test]
async fn concurrent_builds_build_once_and_share_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let a = TemplateStore::new(dir.path()).unwrap();
    let b = TemplateStore::new(dir.path()).unwrap();
    let (tx_a, mut rx_a) = lines();
    let (tx_b, mut rx_b) = lines();
    let (ra, rb) = tokio::join!(
        a.build("tiny", Rebuild::IfMissing, tx_a),
        b.build("tiny", Rebuild::IfMissing, tx_b)
    );
    let (ta, tb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ta, tb, "both callers see the same published template");

    let (la, lb) = (drain(&mut rx_a), drain(&mut rx_b));
    let built = |l: &[String]| l.iter().any(|x| x.starts_with("building template"));
    let reused = |l: &[String]| l.iter().any(|x| x.contains("already built; reusing it"));
    assert!(
        (built(&la) && reused(&lb)) || (built(&lb) && reused(&la)),
        "exactly one builds, the other reuses:\n{la:?}\n{lb:?}"
    );
    assert!(!(built(&la) && built(&lb)));
}

#[tokio::test]
async fn a_held_lock_shows_as_building_and_makes_builds_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    // Another process's build: hold the lock file's flock ourselves.
    let lock = fs::File::create(dir.path().join(".tiny.lock")).unwrap();
    lock.lock().unwrap();

    let t = store.get("tiny").unwrap();
    assert_eq!(t.status, Status::Building);
    let err = store.ready("tiny").unwrap_err().to_string();
    assert!(err.contains("still building"), "{err}");

    let (tx, mut rx) = lines();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.build("tiny", Rebuild::IfMissing, tx).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "a build must wait for the lock");
    let so_far = drain(&mut rx);
    assert!(
        so_far
            .iter()
            .any(|l| l.contains("another build of template 'tiny' is running")),
        "{so_far:?}"
    );
    drop(lock);
    let t = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(t.status, Status::Ready);
}

#[tokio::test]
async fn crash_leftovers_never_look_ready_and_are_cleaned_by_the_next_build() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    // A daemon died mid-build (half a rootfs in its work dir), and another
    // one while writing the index.
    let work = dir.path().join(".tiny.build-123-456/rootfs/bin");
    fs::create_dir_all(&work).unwrap();
    fs::write(work.join("half"), "x").unwrap();
    fs::create_dir_all(dir.path().join("tiny")).unwrap();
    fs::write(dir.path().join("tiny/index.json.tmp"), "{\"tags\":").unwrap();
    fs::write(dir.path().join(".tiny.lock"), "").unwrap();

    assert!(matches!(
        store.get("tiny"),
        Err(TemplateError::NotFound { .. })
    ));
    let err = store.ready("tiny").unwrap_err().to_string();
    assert_eq!(
        err,
        "template 'tiny' not found; templates here: none; build it with `warren template build tiny`"
    );
    assert!(store.list().unwrap().is_empty());

    let (tx, _rx) = lines();
    let t = store.build("tiny", Rebuild::IfMissing, tx).await.unwrap();
    assert!(t.is_ready());
    assert!(!dir.path().join(".tiny.build-123-456").exists());
    assert!(!dir.path().join("tiny/index.json.tmp").exists());
    assert!(!t.rootfs.join("bin/half").exists());
    assert!(t.rootfs.join("bin/busybox").is_file());
}

#[tokio::test]
async fn bad_names_and_unknown_recipes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    for bad in ["../etc", "Base", ".tiny", "a/b", ""] {
        assert!(
            matches!(store.get(bad), Err(TemplateError::InvalidName(_))),
            "{bad}"
        );
        let (tx, _rx) = lines();
        assert!(
            matches!(
                store.build(bad, Rebuild::IfMissing, tx).await,
                Err(TemplateError::InvalidName(_))
            ),
            "{bad}"
        );
    }
    let (tx, _rx) = lines();
    let err = store
        .build("python", Rebuild::IfMissing, tx)
        .await
        .unwrap_err();
    assert!(matches!(err, TemplateError::NoRecipe { .. }), "{err}");
    // Nothing was created for rejected names.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_recipe_can_build_a_template_under_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, _rx) = lines();
    let t = store
        .build_with("tiny-2", Recipe::Tiny, Rebuild::IfMissing, tx)
        .await
        .unwrap();
    assert_eq!(t.name, "tiny-2");
    assert!(t.rootfs.starts_with(dir.path().join("tiny-2")));
    assert!(t.rootfs.join("bin/busybox").is_file());
}

#[tokio::test]
async fn remove_unpublishes_and_collect_deletes_what_nothing_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, _rx) = lines();
    let t = store.build("tiny", Rebuild::IfMissing, tx).await.unwrap();
    let version = t.version.unwrap();
    assert_eq!(
        store.remove("tiny").await.unwrap(),
        std::slice::from_ref(&version)
    );
    assert!(matches!(
        store.get("tiny"),
        Err(TemplateError::NotFound { .. })
    ));
    // Removed, but a sandbox still runs on it: kept, and reachable by version.
    assert!(store.collect("tiny", |_| true).unwrap().is_empty());
    assert!(store.version("tiny", &version).unwrap().rootfs.is_dir());
    // Nothing uses it any more: deleted, template directory and all.
    assert_eq!(
        store.collect("tiny", |_| false).unwrap(),
        std::slice::from_ref(&version)
    );
    assert!(!dir.path().join("tiny").exists());
    assert!(matches!(
        store.remove("tiny").await,
        Err(TemplateError::NotFound { .. })
    ));
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".tiny.lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_rebuild_with_the_same_content_is_the_same_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, _rx) = lines();
    let first = store.build("tiny", Rebuild::IfMissing, tx).await.unwrap();
    let (tx, mut rx) = lines();
    let again = store.build("tiny", Rebuild::Always, tx).await.unwrap();
    assert_eq!(again.version, first.version);
    let log = drain(&mut rx);
    assert!(
        log.iter().any(|l| l.starts_with("building template")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("identical to version")),
        "{log:?}"
    );
    assert_eq!(store.versions("tiny").unwrap().len(), 1);
}

#[tokio::test]
async fn tags_pick_versions_and_latest_moves_only_by_build_or_tag() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    let (tx, _rx) = lines();
    let v1 = store
        .build_with("mine", Recipe::Tiny, Rebuild::IfMissing, tx)
        .await
        .unwrap();
    let v1_id = v1.version.clone().unwrap();
    store.tag(&format!("mine@{v1_id}"), "stable").await.unwrap();
    // A second version: the same recipe with one more file in the tree.
    let (tx, _rx) = lines();
    let session = store.begin("mine", tx).await.unwrap();
    copy_tree(&v1.rootfs, &session.rootfs());
    fs::write(session.rootfs().join("etc/motd"), "v2\n").unwrap();
    let v2 = session.publish(Default::default()).await.unwrap();
    let v2_id = v2.version.unwrap();
    assert_ne!(v2_id, v1_id);

    assert_eq!(
        store.ready("mine").unwrap().version.as_deref(),
        Some(v2_id.as_str())
    );
    assert_eq!(
        store.ready("mine:stable").unwrap().version,
        Some(v1_id.clone())
    );
    assert_eq!(
        store.ready(&format!("mine@{v1_id}")).unwrap().tags,
        ["stable"]
    );
    let versions: Vec<_> = store
        .versions("mine")
        .unwrap()
        .into_iter()
        .map(|t| t.version.unwrap())
        .collect();
    assert_eq!(versions, [v2_id.clone(), v1_id.clone()], "newest first");

    // Unknown tags and versions say what exists.
    let err = store.ready("mine:nope").unwrap_err().to_string();
    assert!(
        err.contains("mine:nope not found; its tags: latest, stable"),
        "{err}"
    );
    assert!(store.ready("mine@0000000000000000").is_err());
    // `latest` cannot be removed alone; another tag can, and the version
    // it named stays until collected.
    let err = store
        .remove(&format!("mine@{v2_id}"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is the latest version"), "{err}");
    store.tag("mine:stable", "latest").await.unwrap();
    assert_eq!(store.ready("mine").unwrap().version, Some(v1_id.clone()));
    assert_eq!(
        store.remove(&format!("mine@{v2_id}")).await.unwrap(),
        std::slice::from_ref(&v2_id)
    );
    assert_eq!(store.collect("mine", |_| false).unwrap(), [v2_id]);
    assert_eq!(store.ready("mine:stable").unwrap().version, Some(v1_id));
}

fn copy_tree(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_failed_build_says_why_and_a_later_build_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = TemplateStore::new(dir.path()).unwrap();
    // A file where the template's directory belongs: publishing fails.
    fs::write(dir.path().join("tiny"), "not a directory").unwrap();
    let (tx, _rx) = lines();
    let err = store
        .build("tiny", Rebuild::IfMissing, tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{}", dir.path().join("tiny").display())),
        "{err}"
    );
    let stray: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".build-"))
        .collect();
    assert!(stray.is_empty(), "the work directory is removed: {stray:?}");

    fs::remove_file(dir.path().join("tiny")).unwrap();
    let (tx, _rx) = lines();
    let t = store.build("tiny", Rebuild::IfMissing, tx).await.unwrap();
    assert!(t.is_ready());
}
