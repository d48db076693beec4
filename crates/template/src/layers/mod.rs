//! The per-step cache of Dockerfile builds: what each step changed, kept
//! as a layer tar under a key of everything that led to it.
//!
//! Keys ([`first_key`], [`step_key`]) chain: the first is a hash of the
//! `FROM` version's reference (a content address), each step's a hash of
//! the previous key, the step as planned (its action, environment, user,
//! directory and text, not its line) and, for COPY and ADD, the content
//! address of the files it packs. A changed step thus changes its key and
//! every later one.
//!
//! A layer is the difference of two walks of a tree ([`walk`], [`Tree`]),
//! taken before and after the step with nothing running in between (and
//! made, like the reads of the files it packs, from the tree's descriptor
//! without following symlinks, so a process left behind that swaps a
//! directory for a symlink gets an error, not a host file); an
//! entry differs when its type, size, mode, owner, inode, times or symlink
//! target do. New and changed entries are written whole (a second path of
//! one inode in the same layer as a hard link); a deleted entry whose
//! parent directory remains becomes an OCI whiteout `.wh.NAME` (what was
//! below a deleted directory needs none). A layer naming a file `.wh.*`
//! is not cached (it would read as a whiteout). Layers are applied with
//! the image importer's applier ([`crate::oci::Applier`]), as untrusted as
//! any image layer.
//!
//! The store ([`LayerCache`]) keeps `KEY.tar` files in one directory
//! (`.layers` in the templates directory), written under a temporary name
//! and renamed, so a crash leaves no half layer under a key; temporaries
//! untouched for [`STALE_TEMP`] are swept when the cache opens. Its size is
//! bounded: the least recently used layers (by mtime, set on every use)
//! go when a new one would pass the cap, and a layer larger than the
//! per-layer cap is not kept.

mod cache;
mod diff;
mod tree;

use sha2::{Digest, Sha256};

pub use cache::{Caps, LayerCache, STALE_TEMP};
pub use diff::{Changes, write_layer};
pub use tree::{Tree, walk};

use crate::dockerfile::Step;

/// A layer cache failure.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("could not {op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// The change cannot be kept as a layer; the build goes on without.
    #[error("not cached: {0}")]
    NotCacheable(String),
}

impl LayerError {
    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let op = op.into();
        move |source| Self::Io { op, source }
    }
}

/// The key before any step of a build `FROM` `reference`.
pub fn first_key(reference: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"warren step cache 1\0");
    h.update(reference.as_bytes());
    hex::encode(h.finalize())
}

/// The key of `step` after the key `prev`; `content` is the content
/// address of the files a COPY packs.
pub fn step_key(prev: &str, step: &Step, content: Option<&str>) -> String {
    let mut unlined = step.clone();
    unlined.line = 0;
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\0");
    h.update(format!("{unlined:?}").as_bytes());
    h.update(b"\0");
    h.update(content.unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests;
