use std::io;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configured address pool is not a usable IPv4 CIDR.
    #[error(
        "'{0}' is not a usable sandbox address pool (expected an IPv4 CIDR such as 10.77.0.0/16 with a prefix between /8 and /30)"
    )]
    InvalidPool(String),
    /// A network slot does not fit in the pool.
    #[error(
        "network slot {slot} does not fit in pool {pool} ({capacity} slots); use a larger pool"
    )]
    SlotOutOfRange {
        slot: u32,
        pool: String,
        capacity: u32,
    },
    /// An external command (`ip`, `nft`) failed.
    #[error("{op} failed: {detail}")]
    Command { op: String, detail: String },
    /// A host I/O operation failed.
    #[error("{op} failed")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl NetError {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }
}
