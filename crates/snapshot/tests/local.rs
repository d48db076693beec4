//! The local directory store: staging, commit, open, delete, crash leftovers.

use warren_core::SnapshotId;
use warren_snapshot::{LocalDirStore, SnapshotError, SnapshotStore};

fn write(dir: &std::path::Path, name: &str, len: usize) {
    std::fs::write(dir.join(name), vec![7u8; len]).unwrap();
}

#[tokio::test]
async fn a_staged_image_is_invisible_until_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDirStore::open(tmp.path(), true).unwrap();
    let id = SnapshotId::generate();
    let dir = store.stage(&id).await.unwrap();
    write(&dir, "checkpoint.img", 1000);
    std::fs::create_dir(dir.join("sub")).unwrap();
    write(&dir.join("sub"), "pages.img", 24);
    assert!(matches!(
        store.open(&id).await,
        Err(SnapshotError::NotFound(_))
    ));
    assert!(store.list().await.unwrap().is_empty());

    assert_eq!(store.commit(&id).await.unwrap(), 1024);
    let image = store.open(&id).await.unwrap();
    assert_eq!(
        std::fs::read(image.join("sub/pages.img")).unwrap().len(),
        24
    );
    assert_eq!(store.list().await.unwrap(), vec![id.clone()]);
    assert!(matches!(
        store.commit(&id).await,
        Err(SnapshotError::AlreadyExists(_))
    ));

    store.delete(&id).await.unwrap();
    store.delete(&id).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn crash_leftovers_are_discarded_and_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDirStore::open(tmp.path(), false).unwrap();
    let done = SnapshotId::generate();
    let half = SnapshotId::generate();
    write(&store.stage(&done).await.unwrap(), "checkpoint.img", 10);
    store.commit(&done).await.unwrap();
    write(&store.stage(&half).await.unwrap(), "checkpoint.img", 5);

    // A restarted daemon opens the same directory.
    let again = LocalDirStore::open(tmp.path(), false).unwrap();
    assert_eq!(again.list().await.unwrap(), vec![done.clone()]);
    assert_eq!(again.discard_staged().await.unwrap(), 1);
    assert!(matches!(
        again.commit(&half).await,
        Err(SnapshotError::NotFound(_))
    ));
    // Staging again starts empty.
    let fresh = again.stage(&half).await.unwrap();
    assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0);
    again.abort(&half).await.unwrap();
    again.abort(&half).await.unwrap();
}

/// The files under `root` that hold `id`'s name (image, marker, staging).
fn traces(root: &std::path::Path, id: &SnapshotId) -> Vec<String> {
    ["staging", "images", "unflushed"]
        .iter()
        .filter(|dir| root.join(dir).join(id.as_str()).exists())
        .map(|dir| dir.to_string())
        .collect()
}

#[tokio::test]
async fn images_not_yet_on_disk_are_kept_in_the_same_boot_and_dropped_after_a_reboot() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDirStore::open_in_boot(tmp.path(), true, "boot-1").unwrap();
    let (flushed, pending, survivor) = (
        SnapshotId::generate(),
        SnapshotId::generate(),
        SnapshotId::generate(),
    );
    for id in [&flushed, &pending, &survivor] {
        write(&store.stage(id).await.unwrap(), "pages.img", 64);
        assert_eq!(store.commit(id).await.unwrap(), 64);
        assert_eq!(traces(tmp.path(), id), ["images", "unflushed"]);
    }
    store.persist(&flushed).await.unwrap();
    store.persist(&flushed).await.unwrap();
    assert_eq!(traces(tmp.path(), &flushed), ["images"]);

    // The daemon restarts on the same boot: the page cache still holds
    // the image, so it is flushed now and kept.
    let same_boot = LocalDirStore::open_in_boot(tmp.path(), true, "boot-1").unwrap();
    assert_eq!(same_boot.recover().await.unwrap(), Vec::<SnapshotId>::new());
    assert_eq!(traces(tmp.path(), &survivor), ["images"]);
    assert_eq!(traces(tmp.path(), &pending), ["images"]);

    // One more image is committed, then the host restarts before it is
    // flushed: it may be torn, so it is removed and reported.
    let torn = SnapshotId::generate();
    write(&same_boot.stage(&torn).await.unwrap(), "pages.img", 8);
    same_boot.commit(&torn).await.unwrap();
    let rebooted = LocalDirStore::open_in_boot(tmp.path(), true, "boot-2").unwrap();
    assert_eq!(rebooted.recover().await.unwrap(), vec![torn.clone()]);
    assert!(traces(tmp.path(), &torn).is_empty());
    assert!(matches!(
        rebooted.persist(&torn).await,
        Err(SnapshotError::NotFound(_))
    ));
    let mut listed = rebooted.list().await.unwrap();
    listed.sort();
    let mut kept = vec![flushed, pending, survivor];
    kept.sort();
    assert_eq!(listed, kept);
}

#[tokio::test]
async fn deleting_an_unflushed_image_leaves_no_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalDirStore::open_in_boot(tmp.path(), true, "boot-1").unwrap();
    let id = SnapshotId::generate();
    write(&store.stage(&id).await.unwrap(), "pages.img", 8);
    store.commit(&id).await.unwrap();
    store.delete(&id).await.unwrap();
    assert!(traces(tmp.path(), &id).is_empty());
    let rebooted = LocalDirStore::open_in_boot(tmp.path(), true, "boot-2").unwrap();
    assert!(rebooted.recover().await.unwrap().is_empty());
}
