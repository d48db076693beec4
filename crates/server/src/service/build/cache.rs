//! The step cache of Dockerfile builds, as a build uses it (the cache
//! itself: `warren_template::layers`).
//!
//! Before the sandbox boots, the longest run of steps whose layers are all
//! kept (and below the build's `fresh_from`) is replayed onto the copy of
//! the `FROM` tree on the host; after each step that runs, the tree is
//! walked again and the difference kept as that step's layer. A layer
//! that will not apply is dropped and the tree rebuilt without it. The
//! cache never fails a build: a layer that cannot be written is logged
//! and the build goes on.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Sender;
use warren_core::WarrenError;
use warren_template::Template;
use warren_template::dockerfile::Plan;
use warren_template::layers::{self, Caps, Changes, LayerCache, Tree};
use warren_template::oci::{Applier, Limits};

use super::pack::Packed;

/// Where the layers live, in the templates directory.
pub(super) const LAYERS_DIR: &str = ".layers";

/// Opens the cache of the templates directory `dir`; `None` (logged) if it
/// cannot be.
pub(super) fn open(dir: &Path) -> Option<LayerCache> {
    match LayerCache::open(dir.join(LAYERS_DIR), Caps::for_dir(dir)) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "the step cache cannot be used");
            None
        }
    }
}

/// The key of every step of `plan` built FROM `from`; `packs` holds each
/// COPY's packed files.
pub(super) async fn keys(
    from: &Template,
    plan: &Plan,
    packs: &[Option<Packed>],
) -> Result<Vec<String>, WarrenError> {
    let mut key = layers::first_key(&from.reference());
    let mut keys = Vec::with_capacity(plan.steps.len());
    for (step, packed) in plan.steps.iter().zip(packs) {
        let content = match packed {
            Some(p) => Some(file_digest(p.archive.path().to_path_buf()).await?),
            None => None,
        };
        key = layers::step_key(&key, step, content.as_deref());
        keys.push(key.clone());
    }
    Ok(keys)
}

async fn file_digest(path: PathBuf) -> Result<String, WarrenError> {
    tokio::task::spawn_blocking(move || {
        let mut file = File::open(&path)?;
        let mut h = Sha256::new();
        std::io::copy(&mut file, &mut h)?;
        Ok::<_, std::io::Error>(hex::encode(h.finalize()))
    })
    .await
    .map_err(|e| WarrenError::internal(e.to_string()))?
    .map_err(|e| WarrenError::internal(format!("could not hash a packed COPY: {e}")))
}

/// Copies `from` to `rootfs` and replays the kept layers of the first
/// steps (below `fresh_from`) onto it; returns how many steps it replayed.
pub(super) async fn replay(
    cache: Option<&LayerCache>,
    keys: &[String],
    plan: &Plan,
    fresh_from: Option<usize>,
    (from, rootfs): (&Path, &Path),
    progress: &Sender<String>,
) -> Result<usize, WarrenError> {
    let limit = fresh_from.unwrap_or(keys.len()).min(keys.len());
    let mut layers: Vec<File> = match cache {
        Some(c) => keys[..limit].iter().map_while(|k| c.get(k)).collect(),
        None => Vec::new(),
    };
    loop {
        super::copy_tree(from, rootfs)
            .await
            .map_err(|e| WarrenError::internal(format!("could not copy the FROM tree: {e}")))?;
        if layers.is_empty() {
            return Ok(0);
        }
        let root = rootfs.to_path_buf();
        let total_cap = cache.map(|c| c.caps().total).unwrap_or(0);
        let (back, failed) = tokio::task::spawn_blocking(move || {
            let failed = apply_all(&root, &mut layers, total_cap);
            (layers, failed)
        })
        .await
        .map_err(|e| WarrenError::internal(e.to_string()))?;
        layers = back;
        let Some((at, why)) = failed else {
            break;
        };
        tracing::warn!(key = %keys[at], error = %why, "a cached layer would not apply; dropped");
        if let Some(c) = cache {
            c.remove(&keys[at]);
        }
        layers.truncate(at);
        tokio::fs::remove_dir_all(rootfs).await.map_err(|e| {
            WarrenError::internal(format!("could not remove {}: {e}", rootfs.display()))
        })?;
    }
    let total = plan.steps.len();
    for (n, step) in plan.steps.iter().take(layers.len()).enumerate() {
        let _ = progress
            .send(format!(
                "step {}/{total} (line {}): {} (cached)",
                n + 1,
                step.line,
                step.text
            ))
            .await;
    }
    Ok(layers.len())
}

/// Applies `layers` in order; the first that fails, with why.
fn apply_all(root: &Path, layers: &mut [File], max_bytes: u64) -> Option<(usize, String)> {
    let limits = Limits {
        max_bytes,
        ..Limits::default()
    };
    let mut applier = match Applier::new(root, limits) {
        Ok(a) => a,
        Err(e) => return Some((0, e.to_string())),
    };
    for (i, file) in layers.iter_mut().enumerate() {
        let result = file
            .seek(SeekFrom::Start(0))
            .map_err(|e| e.to_string())
            .and_then(|_| {
                let reader: &mut dyn Read = file;
                applier.apply(i + 1, reader).map_err(|e| e.to_string())
            });
        if let Err(why) = result {
            return Some((i, why));
        }
    }
    None
}

/// Walks `rootfs` (on a worker thread); `None`, logged, if it cannot.
pub(super) async fn walk(rootfs: &Path) -> Option<Tree> {
    let root = rootfs.to_path_buf();
    match tokio::task::spawn_blocking(move || layers::walk(&root)).await {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not walk a build tree; its steps are not cached");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not walk a build tree");
            None
        }
    }
}

/// Keeps what the step with `key` changed (`before` → now) as its layer;
/// returns the walk after it, for the next step.
pub(super) async fn record(
    cache: &LayerCache,
    key: &str,
    rootfs: &Path,
    before: Tree,
) -> Option<Tree> {
    let after = walk(rootfs).await?;
    let (cache, key, root) = (cache.clone(), key.to_owned(), rootfs.to_path_buf());
    let after = tokio::task::spawn_blocking(move || {
        let changes = Changes::between(&before, &after);
        let kept = cache.put(&key, changes.bytes, |out| {
            layers::write_layer(&root, &after, &changes, out)
        });
        match kept {
            Ok(Some(_)) => {}
            Ok(None) => tracing::info!(key, "a step's layer is over the cache's cap; not kept"),
            Err(e) => tracing::warn!(key, error = %e, "a step's layer was not kept"),
        }
        after
    })
    .await
    .ok()?;
    Some(after)
}
