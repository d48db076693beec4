use std::io;

use warren_core::{ErrorKind, WarrenError};

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The backend cannot run on this host (e.g. `runsc` missing).
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// No such sandbox in this runtime.
    #[error("sandbox {0} is not known to the runtime")]
    NotFound(String),
    /// A command the backend runs failed.
    #[error("{op} failed: {detail}")]
    Command { op: String, detail: String },
    /// The network could not be set up or torn down.
    #[error("network setup failed")]
    Network(#[from] warren_net::NetError),
    /// A host I/O operation failed.
    #[error("{op} failed")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl From<RuntimeError> for WarrenError {
    fn from(e: RuntimeError) -> Self {
        let no_space = match &e {
            RuntimeError::Io { source, .. } => warren_core::error::is_no_space(source),
            RuntimeError::Command { detail, .. } => warren_core::error::says_no_space(detail),
            _ => false,
        };
        if no_space {
            // A checkpoint image or a disk image the data directory had no
            // room for: 507; the detail names host paths.
            tracing::warn!(error = %warren_core::error::chain(&e), "the runtime ran out of disk");
            let what = match &e {
                RuntimeError::Io { op, .. } | RuntimeError::Command { op, .. } => op.as_str(),
                _ => "the sandbox's state",
            };
            return warren_core::error::disk_full(&format!("the output of {what}"));
        }
        let kind = match &e {
            RuntimeError::Unavailable(_) => ErrorKind::Unavailable,
            RuntimeError::NotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        };
        // Keep the whole chain in the message: runtime failures are rare and
        // the operator needs the detail.
        WarrenError::with_chain(kind, &e)
    }
}
