//! Private files: the keys and secrets a daemon keeps on disk (API key
//! pepper, token and grant secrets, the secrets cipher's key, the audit
//! signing key, the egress CA's key).
//!
//! Invariants:
//! - A file is written to a new temporary file in the same directory
//!   (created exclusively, mode 0600 unless told otherwise), synced,
//!   renamed over the target, and the directory synced: a crash leaves the
//!   old file or the new one, never a partial one, and no moment exists
//!   when the content is readable by others.
//! - A private file is read only when group and others have no access
//!   (`mode & 0o077 == 0`); otherwise [`KeyFileError::Insecure`] says which
//!   `chmod` to run. Its owner is not checked: the daemon runs as root.
//! - Creating on first use is not a race between two daemons on one data
//!   directory: each writes a complete file and the last rename wins; a
//!   daemon reads the key back after writing it, so both end with the same.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rand::RngCore as _;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has mode {mode:o}, readable by others; run `chmod 600 {path}` (and rotate what it holds if others could have read it)"
    )]
    Insecure { path: PathBuf, mode: u32 },
    #[error("{path} does not hold {expected}")]
    Malformed {
        path: PathBuf,
        expected: &'static str,
    },
}

impl KeyFileError {
    fn io(path: &Path, op: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            op,
            source,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The content of the private file at `path`; `None` when it does not
/// exist. Refused when group or others may access it.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, KeyFileError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(KeyFileError::io(path, "stat", e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    fs::read(path)
        .map(Some)
        .map_err(|e| KeyFileError::io(path, "read", e))
}

/// Writes `bytes` to `path` with mode 0600, atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    write_with_mode(path, bytes, 0o600)
}

/// Writes `bytes` to `path` with `mode`, atomically (a public file, such
/// as a certificate, beside its private key).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(KeyFileError::io(path, "write", e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(KeyFileError::io(path, "rename", e));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new(".")))
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyFileError::io(path, "sync the directory of", e))
}

/// The private file at `path`, created with `make()`'s bytes when it does
/// not exist.
pub fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, KeyFileError> {
    if let Some(bytes) = read(path)? {
        return Ok(bytes);
    }
    write(path, &make())?;
    read(path)?.ok_or_else(|| {
        KeyFileError::io(
            path,
            "read back",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// A 32-byte random secret kept raw at `path`, created on first use.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let bytes = load_or_create(path, || {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key.to_vec()
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyFileError::Malformed {
        path: path.to_owned(),
        expected: "exactly 32 bytes",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_secret_is_created_private_once_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_file_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        load_or_create_secret(&path).unwrap();
        for loose in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
            let err = load_or_create_secret(&path).unwrap_err();
            assert!(matches!(err, KeyFileError::Insecure { mode, .. } if mode == loose));
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load_or_create_secret(&path).is_ok(), "stricter is fine");
    }

    #[test]
    fn a_secret_of_the_wrong_size_is_malformed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write(&path, b"short").unwrap();
        let err = load_or_create_secret(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn a_rewrite_replaces_the_whole_file_and_a_public_mode_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        write_with_mode(&path, b"a longer first content", 0o644).unwrap();
        write_with_mode(&path, b"second", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(mode(&path), 0o644);
        assert!(read(&dir.path().join("missing")).unwrap().is_none());
    }
}
