//! Tree shape (RFC 9162 §2.1.1) and a streaming root computation.
//!
//! The tree over `n > 1` leaves is `node(MTH(D[0:k]), MTH(D[k:n]))` with `k`
//! the largest power of two smaller than `n`. Unrolled, the root is a right
//! fold over the *peaks*: the perfect subtrees given by the binary digits of
//! `n`, largest (leftmost) first. [`Frontier`] keeps exactly those peaks, so
//! the root of every prefix of a log can be computed in one pass.

use crate::hash::{Hash, empty_root, node_hash};
use crate::store::Node;

/// The largest power of two strictly smaller than `n`; `n` must be at least 2.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The peaks of a tree that is growing one leaf at a time.
///
/// Invariant: levels strictly decrease from the bottom of the stack to the
/// top, and they are the set bits of `len`.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    peaks: Vec<(u32, Hash)>,
    len: u64,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves pushed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no leaf was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A frontier of `len` leaves from its peaks, largest (leftmost) first:
    /// one `(level, hash)` per set bit of `len`, levels strictly decreasing.
    pub(crate) fn from_peaks(len: u64, peaks: Vec<(u32, Hash)>) -> Self {
        debug_assert!(peaks.windows(2).all(|w| w[0].0 > w[1].0));
        debug_assert_eq!(peaks.iter().fold(0u64, |bits, p| bits | 1 << p.0), len);
        Self { peaks, len }
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _| {});
    }

    /// Appends one leaf hash and returns what a [`crate::NodeStore`] stores
    /// for it: the leaf, then every perfect subtree it completes, by level.
    pub fn push_nodes(&mut self, leaf: Hash) -> Vec<Node> {
        let index = self.len;
        let mut nodes = Vec::with_capacity(1 + (index + 1).trailing_zeros() as usize);
        self.push_with(leaf, |level, hash| {
            nodes.push(Node {
                level,
                index: index >> level,
                hash,
            })
        });
        nodes
    }

    /// Appends `leaf`, calling `stored(level, hash)` for the leaf and each
    /// perfect subtree it completes, lowest level first.
    fn push_with(&mut self, leaf: Hash, mut stored: impl FnMut(u32, Hash)) {
        let mut hash = leaf;
        let mut level = 0u32;
        stored(level, hash);
        while let Some(&(top_level, top)) = self.peaks.last() {
            if top_level != level {
                break;
            }
            self.peaks.pop();
            hash = node_hash(&top, &hash);
            level += 1;
            stored(level, hash);
        }
        self.peaks.push((level, hash));
        self.len += 1;
    }

    /// Root hash of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, peak) in iter {
            acc = node_hash(peak, &acc);
        }
        acc
    }
}

/// Root hash of a list of leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
        assert_eq!(split((1 << 63) + 1), 1 << 63);
    }

    #[test]
    fn pushed_nodes_are_what_a_store_append_takes() {
        let mut frontier = Frontier::new();
        for i in 0..64u64 {
            let nodes = frontier.push_nodes(crate::leaf_hash(&i.to_be_bytes()));
            assert_eq!(
                crate::store::check_append(i, &nodes).ok(),
                Some(()),
                "leaf {i}"
            );
        }
    }
}
