//! The log's Ed25519 signing key on disk.
//!
//! Format: the 32-byte secret seed as 64 lower-case hex digits and a newline.
//! The file must have mode 0600 (or stricter): a key file that group or
//! others may read is refused. A new key is written to a
//! temporary file created with mode 0600 in the same directory, synced, then
//! renamed into place, so a crash never leaves a partial key behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand::RngCore as _;

/// Failures loading or creating the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading, writing or renaming failed.
    #[error("audit signing key {path}: {op} failed")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key file can be read by others.
    #[error(
        "audit signing key {path} has mode {mode:o}; run `chmod 600` on it (and rotate the key if others could read it)"
    )]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not 64 hex digits.
    #[error("audit signing key {path} is not 64 hex digits and a newline")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// Loads the key at `path`, creating a new random key there if none exists.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyFileError> {
    match load(path) {
        Err(KeyFileError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            create(path)
        }
        other => other,
    }
}

/// Loads the key at `path`, refusing a file readable by group or others.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |op, source| KeyFileError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    let meta = fs::metadata(path).map_err(|e| io("stat", e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(|e| io("read", e))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim_end_matches('\n'), &mut seed).map_err(|_| {
        KeyFileError::Malformed {
            path: path.to_owned(),
        }
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a new random key at `path` (write to a temporary file, then rename).
pub fn create(path: &Path) -> Result<SigningKey, KeyFileError> {
    let io = |op, source| KeyFileError::Io {
        path: path.to_owned(),
        op,
        source,
    };
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);

    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io("rename", e));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync directory", e))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let key = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn refuses_readable_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load(&path),
            Err(KeyFileError::Insecure { mode: 0o644, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "xyz\n").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Malformed { .. })));
    }
}
