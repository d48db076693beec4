use warren_core::{ErrorKind, SandboxId, SandboxState, WarrenError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A row with this id exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A compare-and-set lost: the sandbox is in `actual`, not the expected state.
    #[error("sandbox is {actual}, not {expected}")]
    Conflict {
        expected: SandboxState,
        actual: SandboxState,
    },
    /// The state machine in warren-core has no transition from `from` to `to`.
    #[error("a sandbox cannot go from {from} to {to}")]
    IllegalTransition {
        from: SandboxState,
        to: SandboxState,
    },
    /// The operation needs a killed or failed sandbox.
    #[error("sandbox is {0}, not killed or failed: kill it first")]
    NotTerminal(SandboxState),
    /// A dead sandbox's row cannot go before its network teardown is
    /// confirmed ([`crate::Store::release_slot`]).
    #[error(
        "sandbox {0} still holds its network slot: its network teardown is not confirmed yet, retry once it is"
    )]
    SlotNotReleased(SandboxId),
    /// The row is still used (a volume mounted by a live sandbox).
    #[error("{0}")]
    InUse(String),
    /// Every network slot is held.
    #[error(
        "no free network slot: too many live sandboxes, or dead ones whose network teardown is not confirmed yet"
    )]
    SlotsExhausted,
    /// The team's quota would be exceeded; the text names the limit and
    /// the team's usage.
    #[error("{0}")]
    QuotaExceeded(String),
    /// An acknowledgement names an event the inbox does not have yet.
    #[error("event {seq} is not in the inbox yet: its newest event is {last_seq}")]
    InvalidSeq { seq: u64, last_seq: u64 },
    /// A stored value could not be decoded (corruption or a newer schema).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for storage")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The database file could not be opened or created.
    #[error("cannot open database {}: check that the directory exists and is writable", path.display())]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: sqlx::Error,
    },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Whether SQLite failed for want of disk (`SQLITE_FULL`, or an I/O error
/// that says so): the caller gets a 507, not a 500.
pub(crate) fn is_disk_full(e: &sqlx::Error) -> bool {
    const SQLITE_FULL: &str = "13";
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some(SQLITE_FULL)
                || warren_core::error::says_no_space(db.message())
        }
        sqlx::Error::Io(io) => warren_core::error::is_no_space(io),
        _ => false,
    }
}

impl From<StoreError> for WarrenError {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            StoreError::Conflict { .. }
            | StoreError::IllegalTransition { .. }
            | StoreError::NotTerminal(_)
            | StoreError::SlotNotReleased(_)
            | StoreError::InUse(_) => ErrorKind::FailedPrecondition,
            StoreError::SlotsExhausted => ErrorKind::ResourceExhausted,
            StoreError::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            StoreError::InvalidSeq { .. } => ErrorKind::InvalidArgument,
            // Every connection is busy: the caller may retry later.
            StoreError::Database(sqlx::Error::PoolTimedOut) => ErrorKind::Unavailable,
            StoreError::Database(db) if is_disk_full(db) => {
                tracing::warn!(error = %db, "the database could not be written: the disk is full");
                return warren_core::error::disk_full("the daemon's database");
            }
            _ => {
                let detail = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                return WarrenError::internal(format!("{e}{detail}"));
            }
        };
        WarrenError::new(kind, e.to_string())
    }
}
