//! Sandbox networking. To be written.

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{op} failed: {detail}")]
    Command { op: String, detail: String },
}
