//! Why an image could not be imported.

use std::io;

/// An import failure: the image is malformed or hostile ([`OciError::Invalid`],
/// [`OciError::Digest`], [`OciError::Unsafe`], [`OciError::Limit`]), or
/// the host failed us ([`OciError::Io`]).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The archive is not an image Warren can read.
    #[error("invalid image: {0}")]
    Invalid(String),
    /// A blob's content does not match the digest that names it.
    #[error("blob {blob} does not match its digest: expected {expected}, got {actual}")]
    Digest {
        blob: String,
        expected: String,
        actual: String,
    },
    /// A layer entry would write outside the root or through a symlink.
    #[error("layer {layer}: refusing entry {entry}: {reason}")]
    Unsafe {
        layer: usize,
        entry: String,
        reason: String,
    },
    /// The image is larger than the import allows.
    #[error("image exceeds the import limit: {0}")]
    Limit(String),
    /// Reading the archive or writing the root filesystem failed.
    #[error("could not {op}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl OciError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    /// Shorthand: `op` reads "could not <op>".
    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let op = op.into();
        move |source| Self::Io { op, source }
    }

    /// Whether the image (not the host) is at fault.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Io { .. })
    }
}
