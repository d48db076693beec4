//! [`SnapshotStore`] on a local (or shared, POSIX) directory.
//!
//! ```text
//! <root>/staging/<id>/   images being written (never resumed from)
//! <root>/images/<id>/    complete images
//! ```
//!
//! `commit` flushes every file of the staged image (when `sync` is on),
//! renames the directory into `images/` and flushes `images/` itself, so
//! after a crash or power loss an image under `images/` is complete. Both
//! directories are on one filesystem, so the rename is atomic.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use warren_core::SnapshotId;

use crate::{SnapshotError, SnapshotStore};

/// Images in a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalDirStore {
    staging: PathBuf,
    images: PathBuf,
    sync: bool,
}

impl LocalDirStore {
    /// Opens (creating) the store at `root`. With `sync`, committed images
    /// are flushed to disk, so they survive power loss, not only a crash
    /// of the daemon.
    pub fn open(root: impl AsRef<Path>, sync: bool) -> Result<Self, SnapshotError> {
        let root = root.as_ref();
        let staging = root.join("staging");
        let images = root.join("images");
        for dir in [&staging, &images] {
            create_private_dir(dir)?;
        }
        Ok(Self {
            staging,
            images,
            sync,
        })
    }

    fn staged(&self, id: &SnapshotId) -> PathBuf {
        self.staging.join(id.as_str())
    }

    fn image(&self, id: &SnapshotId) -> PathBuf {
        self.images.join(id.as_str())
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

/// Total size of the files under `dir`, flushing each one to disk if `sync`.
fn settle(dir: &Path, sync: bool) -> Result<u64, SnapshotError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let entry = entry.map_err(io("listing", dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io("reading", &path))?;
        if meta.is_dir() {
            total += settle(&path, sync)?;
            continue;
        }
        total += meta.len();
        if sync && meta.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io("flushing", &path))?;
        }
    }
    Ok(total)
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("flushing", dir))
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
        let (staged, image, images, sync) = (
            self.staged(id),
            self.image(id),
            self.images.clone(),
            self.sync,
        );
        let id = id.clone();
        blocking(move || {
            if image.exists() {
                return Err(SnapshotError::AlreadyExists(id));
            }
            if !staged.is_dir() {
                return Err(SnapshotError::NotFound(id));
            }
            let size = settle(&staged, sync)?;
            std::fs::rename(&staged, &image).map_err(io("renaming", &staged))?;
            if sync {
                sync_dir(&images)?;
            }
            Ok(size)
        })
        .await
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
        let dir = self.image(id);
        blocking(move || remove_tree(&dir)).await
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
