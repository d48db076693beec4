use std::io;
use std::path::PathBuf;

use warren_core::{ErrorKind, SnapshotId, WarrenError};

/// Why a snapshot store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// There is no complete image of this id.
    #[error("snapshot image {0} not found")]
    NotFound(SnapshotId),
    /// An image of this id is committed already.
    #[error("snapshot image {0} exists already")]
    AlreadyExists(SnapshotId),
    /// A host I/O operation failed.
    #[error("{op} {} failed", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<SnapshotError> for WarrenError {
    fn from(e: SnapshotError) -> Self {
        let kind = match &e {
            SnapshotError::NotFound(_) => ErrorKind::NotFound,
            SnapshotError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            SnapshotError::Io { source, .. } if warren_core::error::is_no_space(source) => {
                tracing::warn!(error = %warren_core::error::chain(&e), "the snapshot store ran out of disk");
                return warren_core::error::disk_full("the snapshot image");
            }
            SnapshotError::Io { .. } => ErrorKind::Internal,
        };
        WarrenError::with_chain(kind, &e)
    }
}
