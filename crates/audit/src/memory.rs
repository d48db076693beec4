//! An in-memory [`NodeStore`] for tests, benchmarks and short-lived tools.

use std::sync::RwLock;

use async_trait::async_trait;

use crate::hash::Hash;
use crate::store::{Node, NodeStore, StoreError, check_append};

/// Errors specific to the in-memory store.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// A thread panicked while holding the lock; the store may be inconsistent.
    #[error("in-memory node store lock poisoned by a panicked writer")]
    Poisoned,
}

/// Node hashes held in one vector per level.
#[derive(Debug, Default)]
pub struct MemoryStore {
    levels: RwLock<Vec<Vec<Hash>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend(Box::new(MemoryError::Poisoned))
}

#[async_trait]
impl NodeStore for MemoryStore {
    async fn size(&self) -> Result<u64, StoreError> {
        let levels = self.levels.read().map_err(|_| poisoned())?;
        Ok(levels.first().map_or(0, |l| l.len() as u64))
    }

    async fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        let levels = self.levels.read().map_err(|_| poisoned())?;
        let Ok(index) = usize::try_from(index) else {
            return Ok(None);
        };
        Ok(levels
            .get(level as usize)
            .and_then(|l| l.get(index))
            .copied())
    }

    async fn append(&self, old_size: u64, nodes: &[Node]) -> Result<(), StoreError> {
        let mut levels = self.levels.write().map_err(|_| poisoned())?;
        let actual = levels.first().map_or(0, |l| l.len() as u64);
        if actual != old_size {
            return Err(StoreError::Conflict {
                expected: old_size,
                actual,
            });
        }
        check_append(old_size, nodes)?;
        for node in nodes {
            let level = node.level as usize;
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(node.hash);
        }
        Ok(())
    }
}
