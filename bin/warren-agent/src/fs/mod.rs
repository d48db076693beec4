//! Files: path resolution, entry info, the `filesystem.Filesystem` service,
//! watchers and the `/files` HTTP endpoints.
//!
//! The agent runs as root, but like envd it acts on files as the caller's
//! user: every operation runs with that user's credentials ([`as_user`]),
//! so the kernel grants exactly what a process of that user would get, and
//! everything created for a caller (files, parent directories) is owned by
//! the caller's user. Paths are not confined otherwise (the sandbox is its
//! own machine).

pub mod as_user;
pub mod entry;
pub mod files;
pub mod metadata;
pub mod paths;
pub mod service;
pub mod staged;
pub mod watch;

use std::path::Path;

use warren_envd::{Code, ConnectError};

/// A failed file operation: what was done, on which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

impl FsError {
    pub fn new(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    pub fn code(&self) -> Code {
        use std::io::ErrorKind as K;
        match self.source.kind() {
            K::NotFound => Code::NotFound,
            K::PermissionDenied => Code::PermissionDenied,
            K::AlreadyExists => Code::AlreadyExists,
            K::NotADirectory
            | K::IsADirectory
            | K::InvalidInput
            | K::DirectoryNotEmpty
            | K::InvalidFilename => Code::InvalidArgument,
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => Code::ResourceExhausted,
            _ => Code::Internal,
        }
    }
}

impl From<as_user::AsUserError> for ConnectError {
    fn from(e: as_user::AsUserError) -> Self {
        ConnectError::internal(e.to_string())
    }
}

impl From<FsError> for ConnectError {
    fn from(e: FsError) -> Self {
        ConnectError::new(e.code(), e.to_string())
    }
}

/// Creates `dir` and its missing parents; run as the caller's user, they
/// are the user's.
pub fn create_dirs(dir: &Path) -> Result<(), FsError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if p.exists() {
            break;
        }
        missing.push(p);
        cur = p.parent();
    }
    for p in missing.into_iter().rev() {
        match std::fs::create_dir(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(FsError::new("create directory", p, e)),
        }
    }
    Ok(())
}
