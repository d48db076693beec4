//! Offline verification of an exported log against signed tree heads.
//!
//! Input: the exported entries in order (each with the leaf hash the log
//! recorded for it, when the export carries it) and any number of signed
//! tree heads: those the log published and checkpoints an auditor saved
//! earlier. Nothing from the log is trusted: every leaf hash is recomputed
//! from the entry's canonical bytes and every root from those leaves.
//!
//! Checks, reported as the first failure in log order:
//! 1. every head's signature verifies under the public key;
//! 2. entry at position `p` says `index == p` (catches deleted, inserted,
//!    duplicated and reordered entries at the first position affected);
//! 3. the recomputed leaf hash equals the recorded one (catches an entry
//!    edited without rewriting the hash tree, at its exact index);
//! 4. for each head of size `s ≤ n`, the root of the first `s` recomputed
//!    leaves equals the head's root. A mismatch means an entry in
//!    `[v, s)` changed, `v` being the largest size already verified, or the
//!    head is a checkpoint that this log does not extend;
//! 5. no head is larger than the log (a rollback below a signed head).

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::canonical::CanonicalError;
use crate::entry::AuditEntry;
use crate::hash::Hash;
use crate::sth::{SignedTreeHead, SthError, TreeHead};
use crate::tree::Frontier;

/// One line of an export: the entry and the leaf hash the log stored for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEntry {
    /// The entry, hashed as its canonical JSON.
    pub entry: AuditEntry,
    /// Leaf hash recorded by the log; a witness, never trusted alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<Hash>,
}

/// The first problem found in an exported log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// A head's signature is malformed or does not verify.
    #[error("signed head #{position} in the input is not valid")]
    BadHead {
        /// Position of the head in the input list.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: SthError,
    },
    /// An entry sits at a position other than its index.
    #[error(
        "entry at position {position} carries index {found}: an entry was deleted, inserted or moved here"
    )]
    IndexMismatch {
        /// Position in the export.
        position: u64,
        /// Index the entry claims.
        found: u64,
    },
    /// An entry has no canonical encoding.
    #[error("entry {index} cannot be hashed")]
    Unhashable {
        /// The entry's index.
        index: u64,
        /// Why.
        #[source]
        source: CanonicalError,
    },
    /// An entry's content does not match its recorded leaf hash.
    #[error(
        "entry {index} does not match the leaf hash the log recorded for it: the entry was edited"
    )]
    LeafHashMismatch {
        /// The entry's index.
        index: u64,
    },
    /// The first `head_size` entries do not hash to a signed head's root.
    #[error(
        "the first {head_size} entries do not hash to the root signed at {timestamp_ms} ms: an entry in [{from}, {head_size}) was changed, or this log does not extend that head"
    )]
    HeadMismatch {
        /// Size of the head.
        head_size: u64,
        /// Its timestamp.
        timestamp_ms: u64,
        /// First index not already covered by a verified head.
        from: u64,
    },
    /// A signed head covers more entries than the log has.
    #[error(
        "a head signed at {timestamp_ms} ms covers {head_size} entries but the log has {log_size}: entries from index {log_size} on were removed"
    )]
    Truncated {
        /// Size of the head.
        head_size: u64,
        /// Its timestamp.
        timestamp_ms: u64,
        /// Entries in the export.
        log_size: u64,
    },
}

impl VerifyError {
    /// The first entry index the failure points at, if it points at one.
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            VerifyError::BadHead { .. } => None,
            VerifyError::IndexMismatch { position, .. } => Some(*position),
            VerifyError::Unhashable { index, .. } | VerifyError::LeafHashMismatch { index } => {
                Some(*index)
            }
            VerifyError::HeadMismatch { from, .. } => Some(*from),
            VerifyError::Truncated { log_size, .. } => Some(*log_size),
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLog {
    /// Number of entries checked.
    pub size: u64,
    /// Root hash of all of them.
    pub root_hash: Hash,
    /// Number of heads checked.
    pub heads: usize,
    /// The largest verified head; entries past its size are not yet covered
    /// by any signature.
    pub latest_head: Option<TreeHead>,
}

/// Verifies `entries` against `heads` signed by `key`; see the module docs.
pub fn verify_log(
    entries: &[ExportedEntry],
    heads: &[SignedTreeHead],
    key: &VerifyingKey,
) -> Result<VerifiedLog, VerifyError> {
    let mut verified: Vec<TreeHead> = Vec::with_capacity(heads.len());
    for (position, sth) in heads.iter().enumerate() {
        let head = sth
            .verify(key)
            .map_err(|source| VerifyError::BadHead { position, source })?;
        verified.push(head);
    }
    verified.sort_by_key(|h| h.size);

    let log_size = entries.len() as u64;
    let mut frontier = Frontier::new();
    let mut cursor = HeadCursor {
        sorted: &verified,
        next: 0,
        covered: 0,
    };
    cursor.check(&frontier)?;
    for (position, line) in (0u64..).zip(entries) {
        let entry = &line.entry;
        if entry.index != position {
            return Err(VerifyError::IndexMismatch {
                position,
                found: entry.index,
            });
        }
        let leaf = entry
            .leaf_hash()
            .map_err(|source| VerifyError::Unhashable {
                index: position,
                source,
            })?;
        if line.leaf_hash.is_some_and(|recorded| recorded != leaf) {
            return Err(VerifyError::LeafHashMismatch { index: position });
        }
        frontier.push(leaf);
        cursor.check(&frontier)?;
    }
    if let Some(head) = verified.iter().find(|h| h.size > log_size) {
        return Err(VerifyError::Truncated {
            head_size: head.size,
            timestamp_ms: head.timestamp_ms,
            log_size,
        });
    }
    Ok(VerifiedLog {
        size: log_size,
        root_hash: frontier.root(),
        heads: verified.len(),
        latest_head: verified.last().copied(),
    })
}

/// Walks the heads in size order alongside the entries.
struct HeadCursor<'a> {
    sorted: &'a [TreeHead],
    next: usize,
    /// Largest size below the current one that a head vouched for.
    covered: u64,
}

impl HeadCursor<'_> {
    /// Checks every head whose size equals the number of leaves so far.
    fn check(&mut self, frontier: &Frontier) -> Result<(), VerifyError> {
        let mut matched = false;
        while let Some(head) = self.sorted.get(self.next) {
            if head.size != frontier.len() {
                break;
            }
            if head.root_hash != frontier.root() {
                return Err(VerifyError::HeadMismatch {
                    head_size: head.size,
                    timestamp_ms: head.timestamp_ms,
                    from: self.covered,
                });
            }
            matched = true;
            self.next += 1;
        }
        if matched {
            self.covered = frontier.len();
        }
        Ok(())
    }
}
