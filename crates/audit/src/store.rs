//! Where the tree's hashes live: the [`NodeStore`] trait.
//!
//! A store keeps the hash of every *perfect* subtree, keyed by
//! `(level, index)`: level 0 holds the leaf hashes, and node `(l, i)` covers
//! leaves `[i·2^l, (i+1)·2^l)`. Appending leaf `n` writes that leaf and every
//! perfect subtree it completes (one per trailing one bit of `n`): at most
//! `1 + log2(n)` writes, two on average. Any root or proof is then built from
//! `O(log² n)` reads, without touching the leaves.
//!
//! Invariants a store must keep:
//! - `append` is atomic: either every node of the call and the new size are
//!   stored, or none is;
//! - `append` fails with [`StoreError::Conflict`] when the size is not the
//!   caller's `old_size` (another writer got there first);
//! - stored nodes never change.

use async_trait::async_trait;

use crate::hash::Hash;

/// Failures of a node store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended first; reload the size and retry.
    #[error("log size is {actual}, the append expected {expected}: another writer appended first")]
    Conflict {
        /// Size the caller expected.
        expected: u64,
        /// Size the store has.
        actual: u64,
    },
    /// The append's node list does not describe leaf `old_size` and the
    /// subtrees it completes.
    #[error("append of leaf {leaf} carries node ({level}, {index}), which it does not complete")]
    BadAppend {
        /// Index of the leaf being appended.
        leaf: u64,
        /// Level of the offending node.
        level: u32,
        /// Index of the offending node.
        index: u64,
    },
    /// The backend failed (I/O, database).
    #[error("node store backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One stored perfect-subtree hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Height above the leaves; 0 is a leaf.
    pub level: u32,
    /// Position among the nodes of that level.
    pub index: u64,
    /// The subtree's hash.
    pub hash: Hash,
}

/// Storage of the Merkle tree's perfect-subtree hashes.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Number of leaves stored.
    async fn size(&self) -> Result<u64, StoreError>;

    /// Hash of perfect subtree `(level, index)`, `None` when not (yet) complete.
    async fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError>;

    /// Atomically stores leaf `old_size` and the subtrees it completes,
    /// ordered by level (the leaf first), and grows the size by one.
    async fn append(&self, old_size: u64, nodes: &[Node]) -> Result<(), StoreError>;

    /// Leaf hash at `index`.
    async fn leaf(&self, index: u64) -> Result<Option<Hash>, StoreError> {
        self.node(0, index).await
    }
}

/// Checks that `nodes` is exactly what appending leaf `old_size` writes:
/// `(0, old_size)`, then `(l, old_size >> l)` for each completed level.
/// Stores may call it to refuse malformed appends.
pub fn check_append(old_size: u64, nodes: &[Node]) -> Result<(), StoreError> {
    let completed = (old_size + 1).trailing_zeros();
    let wrong = |n: &Node| StoreError::BadAppend {
        leaf: old_size,
        level: n.level,
        index: n.index,
    };
    if nodes.len() != completed as usize + 1 {
        let last = nodes.last().copied().unwrap_or(Node {
            level: 0,
            index: old_size,
            hash: Hash::default(),
        });
        return Err(wrong(&last));
    }
    for (level, node) in nodes.iter().enumerate() {
        if node.level as usize != level || node.index != old_size >> level {
            return Err(wrong(node));
        }
    }
    Ok(())
}
