//! Types of the persisted audit log: what an append carries, how entries are
//! filtered, and the errors of the audit tables. The SQLite implementation
//! is [`crate::SqliteAudit`]; the format is specified in `docs/audit.md`.
//!
//! Invariants the store keeps:
//! - one append (any number of entries) is one transaction: every entry
//!   row, every tree node and the new size are committed together or not
//!   at all;
//! - entry `i` has index `i`, and the append of entry `i` carries exactly
//!   the nodes appending leaf `i` creates ([`warren_audit::store::check_append`]);
//! - an append fails with [`AuditStoreError::Conflict`] when the log is not
//!   at the size the writer expected, so a second writer cannot interleave;
//! - nothing is ever updated or deleted.

use warren_audit::{AuditEntry, Node};
use warren_core::{ErrorKind, WarrenError};

/// One entry on its way into the log, with the tree nodes its leaf creates
/// (from [`warren_audit::Frontier::push_nodes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAppend {
    /// The entry, its `index` already set.
    pub entry: AuditEntry,
    /// The sandbox the entry is about, if any (indexed, not hashed).
    pub sandbox: Option<String>,
    /// The leaf and the perfect subtrees it completes, leaf first.
    pub nodes: Vec<Node>,
}

/// Which entries to read; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries of this team.
    pub team: Option<String>,
    /// Entries about this sandbox.
    pub sandbox: Option<String>,
    /// Entries with this actor anywhere in their chain.
    pub actor: Option<String>,
    /// Entries with this action.
    pub action: Option<String>,
    /// Entries at or after this time (Unix ms).
    pub since_ms: Option<u64>,
    /// Entries before this time (Unix ms).
    pub until_ms: Option<u64>,
    /// Entries with an index above this one (paging).
    pub after: Option<u64>,
    /// At most this many entries.
    pub limit: u64,
}

/// Failures of the audit tables.
#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    /// Another writer appended first.
    #[error("audit log has {actual} entries, the append expected {expected}")]
    Conflict { expected: u64, actual: u64 },
    /// The append does not describe the next entries of the log.
    #[error("malformed audit append")]
    BadAppend(#[source] warren_audit::StoreError),
    /// An entry's index is not its position in the append.
    #[error("audit append carries entry index {found} at position {expected}")]
    BadIndex { expected: u64, found: u64 },
    /// A stored row cannot be decoded.
    #[error("corrupt audit row {table}[{key}]: {detail}")]
    Corrupt {
        table: &'static str,
        key: u64,
        detail: String,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for the audit log")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{what} {value} is too large for the audit log")]
    OutOfRange { what: &'static str, value: u64 },
    /// The database failed.
    #[error("audit database error")]
    Database(#[from] sqlx::Error),
}

impl From<AuditStoreError> for WarrenError {
    fn from(e: AuditStoreError) -> Self {
        match e {
            AuditStoreError::Database(sqlx::Error::PoolTimedOut) => {
                WarrenError::new(ErrorKind::Unavailable, e.to_string())
            }
            AuditStoreError::Database(db) if crate::error::is_disk_full(&db) => {
                tracing::warn!(error = %db, "the audit log could not be written: the disk is full");
                warren_core::error::disk_full("the audit log")
            }
            other => WarrenError::internal(warren_core::error::chain(&other)),
        }
    }
}

impl From<AuditStoreError> for warren_audit::StoreError {
    fn from(e: AuditStoreError) -> Self {
        match e {
            AuditStoreError::Conflict { expected, actual } => {
                warren_audit::StoreError::Conflict { expected, actual }
            }
            AuditStoreError::BadAppend(inner) => inner,
            other => warren_audit::StoreError::Backend(Box::new(other)),
        }
    }
}
