//! Warren's tamper-evident audit log.
//!
//! Every state-changing event becomes an [`AuditEntry`]; entries are the
//! leaves of an append-only Merkle tree hashed as in RFC 9162 (Certificate
//! Transparency v2). The log periodically signs its size and root with
//! Ed25519 ([`SignedTreeHead`]). Anyone holding the public key can then check
//! offline, trusting nothing the log says, that:
//! - an entry is in the log ([`verify_inclusion`]);
//! - a later log extends an earlier one ([`verify_consistency`]);
//! - an exported log matches every signed head and checkpoint
//!   ([`verify_log`]), with the first bad index when it does not.
//!
//! Storage is a trait ([`NodeStore`]) so the daemon's database can hold the
//! hashes; [`MemoryStore`] serves tests and tools. The format is specified
//! in `docs/audit.md`.

pub mod canonical;
pub mod entry;
pub mod hash;
pub mod keyfile;
pub mod log;
pub mod memory;
pub mod proof;
pub mod sth;
pub mod store;
pub mod tree;
pub mod verify;

pub use entry::{AuditEntry, Outcome};
pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use log::{LogError, MerkleLog};
pub use memory::MemoryStore;
pub use proof::{ProofError, verify_consistency, verify_inclusion};
pub use sth::{SignedTreeHead, SthError, TreeHead};
pub use store::{Node, NodeStore, StoreError};
pub use tree::{Frontier, root_of};
pub use verify::{ExportedEntry, VerifiedLog, VerifyError, verify_log};

pub use ed25519_dalek::{SigningKey, VerifyingKey};
