//! A full disk fails writes with an error, and once space is back the same
//! store writes again without a restart. Needs root: the database lives on
//! a tiny tmpfs of its own, filled for real.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{new_sandbox, seed};
use warren_store::{SqliteStore, Store};

/// A 4 MiB tmpfs mounted over a fresh directory, unmounted on drop.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "warren-test"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Self { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system with one file until a write fails.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[tokio::test]
async fn root_writes_work_again_after_the_disk_was_full() {
    let fs = TinyFs::mount();
    let store = SqliteStore::open(fs.path().join("warren.db"))
        .await
        .unwrap();
    seed(&store).await;
    let before = store.create_sandbox(new_sandbox()).await.unwrap();

    let filler = fs.path().join("filler");
    fill(&filler);
    let mut failed = false;
    for _ in 0..200 {
        if store.create_sandbox(new_sandbox()).await.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "writes on a full disk must fail");

    std::fs::remove_file(&filler).unwrap();
    let after = store.create_sandbox(new_sandbox()).await.unwrap();
    assert_ne!(after.id, before.id);
    assert!(store.get_sandbox(&before.id).await.unwrap().is_some());
    assert!(store.get_sandbox(&after.id).await.unwrap().is_some());
}
