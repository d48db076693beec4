use std::io;

/// Why an egress service failed.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A TLS interception for secret injection failed.
    #[error("TLS interception failed")]
    Intercept(#[from] crate::intercept::InterceptError),
    /// Another socket holds the firewall's NFLOG group.
    #[error(
        "NFLOG group {0} is held by another process (another warren daemon whose table maps to the same group, or a logger such as ulogd); stop it to get packet events"
    )]
    LogGroupTaken(u16),
    /// A host I/O operation failed (binding a listener, opening a socket).
    #[error("{op} failed")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl EgressError {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }
}
