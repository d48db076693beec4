use warren_core::{ErrorKind, SandboxState, WarrenError};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A compare-and-set lost: the sandbox is in `actual`, not the expected state.
    #[error("sandbox is {actual}, not {expected}")]
    Conflict {
        expected: SandboxState,
        actual: SandboxState,
    },
    /// Every network slot is in use.
    #[error("no free network slot: too many live sandboxes")]
    SlotsExhausted,
    /// A stored value could not be decoded (corruption or a newer schema).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoreError> for WarrenError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(_) => WarrenError::new(ErrorKind::NotFound, e.to_string()),
            StoreError::Conflict { .. } => {
                WarrenError::new(ErrorKind::FailedPrecondition, e.to_string())
            }
            StoreError::SlotsExhausted => {
                WarrenError::new(ErrorKind::ResourceExhausted, e.to_string())
            }
            _ => {
                let detail = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                WarrenError::internal(format!("{e}{detail}"))
            }
        }
    }
}
