//! [`MerkleLog`]: appends entries and answers roots and proofs from a
//! [`NodeStore`].
//!
//! Proofs follow RFC 9162 §2.1.3.1 (inclusion, `PATH`) and §2.1.4.1
//! (consistency, `PROOF`/`SUBPROOF`). Every subtree those definitions ask
//! for starts at a multiple of a power of two at least as large as itself,
//! so its hash is the right fold of at most `log2 n` stored perfect
//! subtrees: a proof costs `O(log² n)` node reads and no leaf rehashing.

use crate::canonical::CanonicalError;
use crate::entry::AuditEntry;
use crate::hash::{Hash, empty_root, node_hash};
use crate::sth::TreeHead;
use crate::store::{Node, NodeStore, StoreError};
use crate::tree::{Frontier, split};

/// Failures of log operations.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The node store failed or refused the write.
    #[error("audit log storage failed")]
    Store(#[from] StoreError),
    /// The entry has no canonical encoding.
    #[error("audit entry cannot be hashed")]
    Entry(#[from] CanonicalError),
    /// A tree size larger than the log.
    #[error("tree size {requested} is beyond the log, which has {size} entries")]
    SizeBeyondLog {
        /// Size asked for.
        requested: u64,
        /// Current log size.
        size: u64,
    },
    /// A leaf index outside the tree it should be proven in.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Leaf asked for.
        index: u64,
        /// Tree size asked for.
        size: u64,
    },
    /// A consistency proof from a larger to a smaller tree.
    #[error("consistency proof asked from size {old} to the smaller size {new}")]
    SizesReversed {
        /// Older (first) size.
        old: u64,
        /// Newer (second) size.
        new: u64,
    },
    /// The store lacks a node that its size says it must have.
    #[error(
        "node store is missing node (level {level}, index {index}) below its size: the store is corrupt"
    )]
    MissingNode {
        /// Level of the missing node.
        level: u32,
        /// Index of the missing node.
        index: u64,
    },
}

/// An append-only Merkle log over a node store.
///
/// One `MerkleLog` is the single writer of its store; readers may share it
/// behind a lock. The cached size is refreshed when an append conflicts.
#[derive(Debug)]
pub struct MerkleLog<S> {
    store: S,
    size: u64,
}

impl<S: NodeStore> MerkleLog<S> {
    /// Opens the log kept in `store`.
    pub async fn open(store: S) -> Result<Self, LogError> {
        let size = store.size().await?;
        Ok(Self { store, size })
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Appends `entry`: sets its `index` to the next position, hashes it and
    /// stores the hashes. The caller stores the entry itself, with that index.
    pub async fn append(&mut self, entry: &mut AuditEntry) -> Result<u64, LogError> {
        entry.index = self.size;
        let leaf = entry.leaf_hash()?;
        self.append_leaf(leaf).await
    }

    /// Appends an already computed leaf hash; returns its index.
    pub async fn append_leaf(&mut self, leaf: Hash) -> Result<u64, LogError> {
        let index = self.size;
        let mut nodes = vec![Node {
            level: 0,
            index,
            hash: leaf,
        }];
        let (mut pos, mut level, mut hash) = (index, 0u32, leaf);
        while pos & 1 == 1 {
            let sibling = self.node(level, pos - 1).await?;
            hash = node_hash(&sibling, &hash);
            pos >>= 1;
            level += 1;
            nodes.push(Node {
                level,
                index: pos,
                hash,
            });
        }
        match self.store.append(index, &nodes).await {
            Ok(()) => {
                self.size = index + 1;
                Ok(index)
            }
            Err(err) => {
                if let StoreError::Conflict { actual, .. } = err {
                    self.size = actual;
                }
                Err(err.into())
            }
        }
    }

    /// Root hash of the first `size` entries.
    pub async fn root(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree(0, size).await
    }

    /// RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        if index >= size {
            return Err(LogError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        let (mut start, mut n, mut m) = (0u64, size, index);
        while n > 1 {
            let k = split(n);
            if m < k {
                path.push(self.subtree(start + k, n - k).await?);
                n = k;
            } else {
                path.push(self.subtree(start, k).await?);
                start += k;
                m -= k;
                n -= k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// RFC 9162 consistency proof between the trees of `old` and `new` leaves.
    /// Empty when `old` is 0 or equal to `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new)?;
        if old > new {
            return Err(LogError::SizesReversed { old, new });
        }
        let mut proof = Vec::new();
        if old == 0 || old == new {
            return Ok(proof);
        }
        let (mut start, mut m, mut n, mut whole) = (0u64, old, new, true);
        while m != n {
            let k = split(n);
            if m <= k {
                proof.push(self.subtree(start + k, n - k).await?);
                n = k;
            } else {
                proof.push(self.subtree(start, k).await?);
                start += k;
                m -= k;
                n -= k;
                whole = false;
            }
        }
        if !whole {
            proof.push(self.subtree(start, n).await?);
        }
        proof.reverse();
        Ok(proof)
    }

    /// Unsigned head of the log as it is now.
    pub async fn tree_head(&self, timestamp_ms: u64) -> Result<TreeHead, LogError> {
        Ok(TreeHead {
            size: self.size,
            root_hash: self.root(self.size).await?,
            timestamp_ms,
        })
    }

    /// The peaks of the log as it is now, read from the store: what a
    /// writer needs to append without reading any node again.
    pub async fn frontier(&self) -> Result<Frontier, LogError> {
        let mut peaks = Vec::with_capacity(self.size.count_ones() as usize);
        let mut pos = 0u64;
        for level in (0..64u32).rev() {
            if self.size & (1u64 << level) != 0 {
                peaks.push((level, self.node(level, pos >> level).await?));
                pos += 1u64 << level;
            }
        }
        Ok(Frontier::from_peaks(self.size, peaks))
    }

    fn check_size(&self, requested: u64) -> Result<(), LogError> {
        if requested > self.size {
            return Err(LogError::SizeBeyondLog {
                requested,
                size: self.size,
            });
        }
        Ok(())
    }

    /// Hash of leaves `[start, start + n)`, `n >= 1`, `start` a multiple of
    /// the largest power of two not above `n`: the right fold of its peaks.
    async fn subtree(&self, start: u64, n: u64) -> Result<Hash, LogError> {
        let mut peaks = Vec::with_capacity(n.count_ones() as usize);
        let mut pos = start;
        for level in (0..64u32).rev() {
            if n & (1u64 << level) != 0 {
                peaks.push(self.node(level, pos >> level).await?);
                pos += 1u64 << level;
            }
        }
        let mut iter = peaks.iter().rev();
        let mut acc = iter.next().copied().unwrap_or_else(empty_root);
        for peak in iter {
            acc = node_hash(peak, &acc);
        }
        Ok(acc)
    }

    async fn node(&self, level: u32, index: u64) -> Result<Hash, LogError> {
        self.store
            .node(level, index)
            .await?
            .ok_or(LogError::MissingNode { level, index })
    }
}
