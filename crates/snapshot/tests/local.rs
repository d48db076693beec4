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
