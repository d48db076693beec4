//! A volume's files read and written without a sandbox (E2B's volume
//! content API, `e2b::volume_content`; `docs/volumes.md`).
//!
//! Invariants:
//! - paths are names below the volume's directory ([`path`]), resolved by
//!   the kernel beneath an fd of it with no symlink followed ([`fs`]);
//!   sandboxes mounting the volume may plant links at any moment, and a
//!   link on the way is refused (400), never crossed;
//! - a write is whole or absent: temporary name, sync, rename, directory
//!   sync; a temporary file never outlives the request that made it;
//! - what is created belongs to the templates' sandbox user (uid and gid
//!   1000) unless the caller names an owner, with permission bits only
//!   (no set-user-ID, set-group-ID or sticky bit), so sandboxes use it as
//!   their own;
//! - an upload is bounded by the team's disk headroom
//!   (`Sandboxes::volume_headroom`): volumes count against `max_disk_mb`.

pub mod fs;
pub mod path;

use warren_core::{ErrorKind, WarrenError};

pub use fs::{Entry, Kind, Owner};
pub use path::VolumePath;

/// The templates' sandbox user: what the API's writes belong to by default.
pub const DEFAULT_OWNER: u32 = warren_template::USER.uid;
/// Mode of a file written without one.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a directory made without one.
pub const DEFAULT_DIR_MODE: u32 = 0o755;
/// Highest uid or gid the API gives (65535 is the kernel's overflow id).
pub const MAX_ID: u32 = 65534;
/// Deepest listing.
pub const MAX_DEPTH: u32 = 16;

/// Why a content operation is refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("path {0}")]
    BadPath(String),
    #[error("path {0} crosses a symbolic link: the volume content API never follows links")]
    Symlink(String),
    #[error("path {0} not found")]
    NotFound(String),
    #[error("path {0} already exists")]
    Exists(String),
    #[error("path {0} is not a directory")]
    NotADirectory(String),
    #[error("path {0} is a directory")]
    IsADirectory(String),
    #[error("path {0} is neither a regular file nor a directory")]
    NotFileOrDir(String),
    #[error("the volume's own directory cannot be written, made or removed")]
    IsRoot,
    #[error("{0}")]
    BadMetadata(String),
    #[error("more than {0} entries: list with a smaller depth or a deeper path")]
    TooMany(usize),
    #[error("the directory tree is deeper than {0} levels: remove its deepest parts first")]
    TooDeep(usize),
    #[error("path {0}: permission denied")]
    Denied(String),
    #[error("the host's disk is full")]
    NoSpace,
    #[error(
        "the upload is over the team's disk headroom of {0} bytes (volumes count against max_disk_mb)"
    )]
    OverQuota(u64),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<ContentError> for WarrenError {
    fn from(e: ContentError) -> Self {
        let kind = match &e {
            ContentError::BadPath(_)
            | ContentError::Symlink(_)
            | ContentError::NotADirectory(_)
            | ContentError::IsADirectory(_)
            | ContentError::NotFileOrDir(_)
            | ContentError::IsRoot
            | ContentError::BadMetadata(_)
            | ContentError::TooMany(_) => ErrorKind::InvalidArgument,
            ContentError::NotFound(_) => ErrorKind::NotFound,
            ContentError::Exists(_) => ErrorKind::AlreadyExists,
            ContentError::TooDeep(_) => ErrorKind::FailedPrecondition,
            ContentError::Denied(_) => ErrorKind::PermissionDenied,
            ContentError::NoSpace | ContentError::OverQuota(_) => ErrorKind::InsufficientStorage,
            ContentError::Io { .. } => ErrorKind::Internal,
        };
        WarrenError::new(kind, e.to_string())
    }
}

/// A uid or gid the API gives: 0 to [`MAX_ID`].
pub fn check_id(what: &str, id: u32) -> Result<u32, ContentError> {
    if id > MAX_ID {
        return Err(ContentError::BadMetadata(format!(
            "{what} {id} is out of range: 0 to {MAX_ID}"
        )));
    }
    Ok(id)
}

/// Permission bits the API sets: at most 0o777.
pub fn check_mode(mode: u32) -> Result<u32, ContentError> {
    if mode > 0o777 {
        return Err(ContentError::BadMetadata(format!(
            "mode {mode:#o} is out of range: permission bits 0 to 0o777 (no set-user-ID, set-group-ID or sticky bit)"
        )));
    }
    Ok(mode)
}

/// The owner of what a write or make creates, from the request's values
/// or the defaults.
pub fn owner(
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
    default_mode: u32,
) -> Result<Owner, ContentError> {
    Ok(Owner {
        uid: uid
            .map(|u| check_id("uid", u))
            .transpose()?
            .unwrap_or(DEFAULT_OWNER),
        gid: gid
            .map(|g| check_id("gid", g))
            .transpose()?
            .unwrap_or(DEFAULT_OWNER),
        mode: mode.map(check_mode).transpose()?.unwrap_or(default_mode),
        explicit: uid.is_some() || gid.is_some(),
    })
}

/// The listing depth asked for: 1 when absent, refused past [`MAX_DEPTH`].
pub fn check_depth(depth: Option<u32>) -> Result<u32, ContentError> {
    match depth.unwrap_or(1) {
        0 => Ok(1),
        d if d > MAX_DEPTH => Err(ContentError::BadMetadata(format!(
            "depth {d} is over the most, {MAX_DEPTH}"
        ))),
        d => Ok(d),
    }
}
