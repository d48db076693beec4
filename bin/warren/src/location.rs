//! The two sides of `warren cp`: a local path, or `ID:/abs/path` in a sandbox.
//!
//! An argument is remote exactly when the text before its first `:` is a
//! well-formed sandbox id; everything else is a local path, so a local file
//! whose name happens to look like `ID:/x` can be written `./ID:/x`. Remote
//! paths must be absolute and free of NUL bytes; the daemon resolves them
//! inside the sandbox.

use std::ffi::OsStr;
use std::path::PathBuf;

use warren_core::SandboxId;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote { id: SandboxId, path: String },
}

/// Why a `cp` argument or argument pair was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocationError {
    #[error("'{0}' has no path after the sandbox id; write ID:/absolute/path")]
    EmptyRemotePath(String),
    #[error("'{0}': paths inside a sandbox must be absolute (start with '/')")]
    RelativeRemotePath(String),
    #[error("'{0}': a path cannot contain a NUL byte")]
    Nul(String),
    #[error("copying between two sandboxes is not supported; copy to a local file first")]
    BothRemote,
    #[error("neither side names a sandbox: write one side as ID:/path{hint}")]
    BothLocal { hint: String },
}

/// Classifies one command-line argument.
pub fn parse(raw: &OsStr) -> Result<Location, LocationError> {
    let Some(text) = raw.to_str() else {
        // Non-UTF-8 can only be a local path: ids are ASCII.
        return Ok(Location::Local(PathBuf::from(raw)));
    };
    let shown = || text.chars().take(200).collect::<String>();
    let Some((prefix, path)) = text.split_once(':') else {
        return Ok(Location::Local(PathBuf::from(raw)));
    };
    let Ok(id) = prefix.parse::<SandboxId>() else {
        return Ok(Location::Local(PathBuf::from(raw)));
    };
    if path.is_empty() {
        return Err(LocationError::EmptyRemotePath(shown()));
    }
    if !path.starts_with('/') {
        return Err(LocationError::RelativeRemotePath(shown()));
    }
    if path.contains('\0') {
        return Err(LocationError::Nul(shown()));
    }
    Ok(Location::Remote {
        id,
        path: path.to_owned(),
    })
}

/// A validated copy direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    Upload {
        local: PathBuf,
        id: SandboxId,
        remote: String,
    },
    Download {
        id: SandboxId,
        remote: String,
        local: PathBuf,
    },
}

/// Classifies `SRC DST`: exactly one side must be remote.
pub fn transfer(src: &OsStr, dst: &OsStr) -> Result<Transfer, LocationError> {
    match (parse(src)?, parse(dst)?) {
        (Location::Local(local), Location::Remote { id, path }) => Ok(Transfer::Upload {
            local,
            id,
            remote: path,
        }),
        (Location::Remote { id, path }, Location::Local(local)) => Ok(Transfer::Download {
            id,
            remote: path,
            local,
        }),
        (Location::Remote { .. }, Location::Remote { .. }) => Err(LocationError::BothRemote),
        (Location::Local(_), Location::Local(_)) => Err(LocationError::BothLocal {
            hint: id_hint(src).or_else(|| id_hint(dst)).unwrap_or_default(),
        }),
    }
}

/// If `raw` looks like a mistyped `ID:/path`, says what is wrong with the id.
fn id_hint(raw: &OsStr) -> Option<String> {
    let (prefix, _) = raw.to_str()?.split_once(':')?;
    if prefix.is_empty() || prefix.contains('/') {
        return None;
    }
    let err = prefix.parse::<SandboxId>().err()?;
    Some(format!(" ({})", err.message))
}

/// The remote path to write to: a path ending in `/` names a directory, and
/// the local file's name is appended.
pub fn upload_target(remote: &str, local: &std::path::Path) -> String {
    if !remote.ends_with('/') {
        return remote.to_owned();
    }
    match local.file_name().and_then(OsStr::to_str) {
        Some(name) => format!("{remote}{name}"),
        None => remote.to_owned(),
    }
}

/// The base name of a remote path, if it has one.
pub fn remote_file_name(remote: &str) -> Option<&str> {
    remote
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    const ID: &str = "abcdefghij0123456789";

    fn os(s: &str) -> OsString {
        OsString::from(s)
    }

    fn remote(path: &str) -> Location {
        Location::Remote {
            id: ID.parse().unwrap(),
            path: path.into(),
        }
    }

    #[test]
    fn remote_and_local_arguments() {
        assert_eq!(parse(&os(&format!("{ID}:/tmp/x"))), Ok(remote("/tmp/x")));
        assert_eq!(parse(&os(&format!("{ID}:/a:b"))), Ok(remote("/a:b")));
        assert_eq!(parse(&os(&format!("{ID}:/"))), Ok(remote("/")));
        for local in [
            "file.txt",
            "/abs/file",
            "./x:/y",
            "abc:/x",
            "C:\\windows",
            ":",
            ":/x",
            "ABCDEFGHIJ0123456789:/x",
            "abcdefghij012345678:/x",
            "../abcdefghij0123456789:/x",
        ] {
            assert_eq!(
                parse(&os(local)),
                Ok(Location::Local(PathBuf::from(local))),
                "{local}"
            );
        }
    }

    #[test]
    fn hostile_remote_paths_are_rejected() {
        assert!(matches!(
            parse(&os(&format!("{ID}:"))),
            Err(LocationError::EmptyRemotePath(_))
        ));
        assert!(matches!(
            parse(&os(&format!("{ID}:etc/passwd"))),
            Err(LocationError::RelativeRemotePath(_))
        ));
        assert!(matches!(
            parse(&os(&format!("{ID}:/a\0b"))),
            Err(LocationError::Nul(_))
        ));
        let huge = format!("{ID}:{}", "x".repeat(100_000));
        let msg = parse(&os(&huge)).unwrap_err().to_string();
        assert!(msg.len() < 400, "message echoes the whole input");
    }

    #[test]
    fn non_utf8_is_local() {
        let raw = OsStr::from_bytes(b"\xff\xfe:/x");
        assert_eq!(parse(raw), Ok(Location::Local(PathBuf::from(raw))));
    }

    #[test]
    fn exactly_one_side_is_remote() {
        let r = os(&format!("{ID}:/tmp/x"));
        assert!(matches!(
            transfer(&os("a"), &r),
            Ok(Transfer::Upload { .. })
        ));
        assert!(matches!(
            transfer(&r, &os("a")),
            Ok(Transfer::Download { .. })
        ));
        assert_eq!(transfer(&r, &r), Err(LocationError::BothRemote));
        let msg = transfer(&os("a"), &os("b")).unwrap_err().to_string();
        assert!(msg.contains("ID:/path"), "{msg}");
        let msg = transfer(&os("sbx1:/tmp/x"), &os("b"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not a valid sandbox id"), "{msg}");
    }

    #[test]
    fn directory_targets_take_the_file_name() {
        let local = std::path::Path::new("/home/me/data.bin");
        assert_eq!(upload_target("/tmp/", local), "/tmp/data.bin");
        assert_eq!(upload_target("/tmp/y", local), "/tmp/y");
        assert_eq!(remote_file_name("/a/b.txt"), Some("b.txt"));
        assert_eq!(remote_file_name("/a/"), None);
        assert_eq!(remote_file_name("/a/.."), None);
    }
}
