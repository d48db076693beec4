//! [`SnapshotStore`] on a local (or shared, POSIX) directory.
//!
//! ```text
//! <root>/staging/<id>/     images being written (never resumed from)
//! <root>/images/<id>/      complete images
//! <root>/unflushed/<id>    committed, not yet on disk; holds the boot id
//!                          of the host that wrote the image
//! ```
//!
//! `commit` writes the `unflushed` marker (flushed, so it is on disk before
//! the rename can be) and renames the directory into `images/`; both are
//! on one filesystem, so the rename is atomic. `persist` flushes every file
//! of the image, the image directory and `images/`, then removes the
//! marker. After a power loss, an image without a marker is complete; one
//! with a marker from an earlier boot may not be, and `recover` removes it.
//! Without `sync` (scratch stores) nothing is flushed and no marker is
//! written.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use warren_core::SnapshotId;

use crate::{SnapshotError, SnapshotStore};

/// Where Linux names the current boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// Images in a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    staging: PathBuf,
    images: PathBuf,
    unflushed: PathBuf,
    sync: bool,
    boot_id: String,
}

impl LocalDirStore {
    /// Opens (creating) the store at `root`. With `sync`, persisted images
    /// survive power loss, not only a crash of the daemon.
    pub fn open(root: impl AsRef<Path>, sync: bool) -> Result<Self, SnapshotError> {
        let boot_id =
            std::fs::read_to_string(BOOT_ID).map_err(io("reading", Path::new(BOOT_ID)))?;
        Self::open_in_boot(root, sync, boot_id.trim())
    }

    /// [`LocalDirStore::open`] on a host whose current boot is named
    /// `boot_id` (what tells `recover` whether the host restarted).
    pub fn open_in_boot(
        root: impl AsRef<Path>,
        sync: bool,
        boot_id: &str,
    ) -> Result<Self, SnapshotError> {
        let root = root.as_ref();
        let store = Self {
            staging: root.join("staging"),
            images: root.join("images"),
            unflushed: root.join("unflushed"),
            sync,
            boot_id: boot_id.to_owned(),
        };
        for dir in [&store.staging, &store.images, &store.unflushed] {
            create_private_dir(dir)?;
        }
        Ok(store)
    }

    fn staged(&self, id: &SnapshotId) -> PathBuf {
        self.staging.join(id.as_str())
    }

    fn image(&self, id: &SnapshotId) -> PathBuf {
        self.images.join(id.as_str())
    }

    fn marker(&self, id: &SnapshotId) -> PathBuf {
        self.unflushed.join(id.as_str())
    }

    /// `commit`, blocking.
    fn commit_now(&self, id: &SnapshotId) -> Result<u64, SnapshotError> {
        let (staged, image) = (self.staged(id), self.image(id));
        if image.exists() {
            return Err(SnapshotError::AlreadyExists(id.clone()));
        }
        if !staged.is_dir() {
            return Err(SnapshotError::NotFound(id.clone()));
        }
        let size = size_of(&staged)?;
        if self.sync {
            let marker = self.marker(id);
            std::fs::write(&marker, &self.boot_id).map_err(io("writing", &marker))?;
            sync_path(&marker)?;
            sync_path(&self.unflushed)?;
        }
        std::fs::rename(&staged, &image).map_err(io("renaming", &staged))?;
        Ok(size)
    }

    /// `persist`, blocking.
    fn persist_now(&self, id: &SnapshotId) -> Result<(), SnapshotError> {
        let image = self.image(id);
        if !image.is_dir() {
            return Err(SnapshotError::NotFound(id.clone()));
        }
        let marker = self.marker(id);
        if !self.sync || !marker.exists() {
            return Ok(());
        }
        sync_tree(&image)?;
        sync_path(&self.images)?;
        remove_file(&marker)?;
        sync_path(&self.unflushed)
    }

    /// `recover`, blocking.
    fn recover_now(&self) -> Result<Vec<SnapshotId>, SnapshotError> {
        let mut lost = Vec::new();
        for id in ids_in(&self.unflushed)? {
            let marker = self.marker(&id);
            let written_in = std::fs::read_to_string(&marker).map_err(io("reading", &marker))?;
            if !self.image(&id).is_dir() {
                // The rename never happened: the staged image is discarded
                // with the other staged ones.
                remove_file(&marker)?;
            } else if written_in.trim() == self.boot_id {
                self.persist_now(&id)?;
            } else {
                remove_tree(&self.image(&id))?;
                remove_file(&marker)?;
                lost.push(id);
            }
        }
        Ok(lost)
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io { op, path, source }
}

fn create_private_dir(dir: &Path) -> Result<(), SnapshotError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating", dir))
}

fn remove_tree(dir: &Path) -> Result<(), SnapshotError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", dir)(e)),
    }
}

/// Total size of the files under `dir`.
fn size_of(dir: &Path) -> Result<u64, SnapshotError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        let meta = entry.metadata().map_err(io("reading", &entry.path()))?;
        total += if meta.is_dir() {
            size_of(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Flushes every file and directory under `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<(), SnapshotError> {
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io("reading", &path))?;
        if meta.is_dir() {
            sync_tree(&path)?;
        } else if meta.is_file() {
            sync_path(&path)?;
        }
    }
    sync_path(dir)
}

/// Flushes one file or directory to disk.
fn sync_path(path: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("flushing", path))
}

fn remove_file(path: &Path) -> Result<(), SnapshotError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", path)(e)),
    }
}

fn ids_in(dir: &Path) -> Result<Vec<SnapshotId>, SnapshotError> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SnapshotError> + Send + 'static,
) -> Result<T, SnapshotError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SnapshotError::Io {
            op: "running",
            path: PathBuf::from("snapshot store task"),
            source: std::io::Error::other(e),
        })
    })
}

#[async_trait]
impl SnapshotStore for LocalDirStore {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn stage(&self, id: &SnapshotId) -> Result<PathBuf, SnapshotError> {
        let dir = self.staged(id);
        let out = dir.clone();
        blocking(move || {
            remove_tree(&dir)?;
            create_private_dir(&dir)
        })
        .await?;
        Ok(out)
    }

    async fn commit(&self, id: &SnapshotId) -> Result<u64, SnapshotError> {
        let (store, id) = (self.clone(), id.clone());
        blocking(move || store.commit_now(&id)).await
    }

    async fn persist(&self, id: &SnapshotId) -> Result<(), SnapshotError> {
        let (store, id) = (self.clone(), id.clone());
        blocking(move || store.persist_now(&id)).await
    }

    async fn recover(&self) -> Result<Vec<SnapshotId>, SnapshotError> {
        let store = self.clone();
        blocking(move || store.recover_now()).await
    }

    async fn abort(&self, id: &SnapshotId) -> Result<(), SnapshotError> {
        let dir = self.staged(id);
        blocking(move || remove_tree(&dir)).await
    }

    async fn open(&self, id: &SnapshotId) -> Result<PathBuf, SnapshotError> {
        let image = self.image(id);
        if tokio::fs::metadata(&image).await.is_ok_and(|m| m.is_dir()) {
            Ok(image)
        } else {
            Err(SnapshotError::NotFound(id.clone()))
        }
    }

    async fn delete(&self, id: &SnapshotId) -> Result<(), SnapshotError> {
        let (dir, marker) = (self.image(id), self.marker(id));
        blocking(move || {
            remove_tree(&dir)?;
            remove_file(&marker)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<SnapshotId>, SnapshotError> {
        let dir = self.images.clone();
        blocking(move || ids_in(&dir)).await
    }

    async fn discard_staged(&self) -> Result<usize, SnapshotError> {
        let staging = self.staging.clone();
        blocking(move || {
            let ids = ids_in(&staging)?;
            for id in &ids {
                remove_tree(&staging.join(id.as_str()))?;
            }
            Ok(ids.len())
        })
        .await
    }
}
