//! The log's Ed25519 signing key on disk.
//!
//! Format: the 32-byte secret seed as 64 lower-case hex digits and a newline,
//! kept as a private file ([`warren_keyfile`]): written 0600 and atomically,
//! refused when group or others may read it.

use std::path::Path;

use ed25519_dalek::SigningKey;
use rand::RngCore as _;

pub use warren_keyfile::KeyFileError;

/// Loads the key at `path`, creating a new random key there if none exists.
pub fn load_or_create(path: &Path) -> Result<SigningKey, KeyFileError> {
    match load(path) {
        Err(e) if e.is_not_found() => create(path),
        other => other,
    }
}

/// Loads the key at `path`, refusing a file readable by group or others.
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = warren_keyfile::read(path)?.ok_or_else(|| KeyFileError::Io {
        path: path.to_owned(),
        op: "read",
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let malformed = || KeyFileError::Malformed {
        path: path.to_owned(),
        expected: "64 hex digits and a newline (an audit signing key)",
    };
    let text = std::str::from_utf8(&text).map_err(|_| malformed())?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim_end_matches('\n'), &mut seed).map_err(|_| malformed())?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a new random key at `path`.
pub fn create(path: &Path) -> Result<SigningKey, KeyFileError> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    warren_keyfile::write(path, format!("{}\n", hex::encode(seed)).as_bytes())?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

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
