//! Encryption of secret values at rest.
//!
//! Scheme: XChaCha20-Poly1305 under a 256-bit key, a fresh random 192-bit
//! nonce per write (random nonces of this size never repeat in practice),
//! and associated data `"warren-secret/v1" 0x00 team 0x00 name`, so a
//! ciphertext only decrypts in the row it was written for: copied to
//! another team or name, it fails authentication.
//!
//! The key lives in `<data_dir>/secrets/secrets-key` (32 raw bytes, mode
//! 0600, created at first start, see [`warren_keyfile`]), never in the
//! database: a copy of the database alone reveals no value. A key file
//! that group or others may read is refused.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use warren_core::TeamId;
use zeroize::Zeroizing;

use super::value::SecretValue;

/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;

/// Failures of the key file or of decryption.
#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    /// The key file cannot be read or created, or others may read it.
    #[error("secrets key: {0}")]
    KeyFile(#[from] warren_keyfile::KeyFileError),
    /// The ciphertext does not authenticate under this key and row: another
    /// key, another row's ciphertext, or corruption.
    #[error("secret '{name}' cannot be decrypted: wrong key, moved or corrupt ciphertext")]
    Decrypt { name: String },
}

/// The key that encrypts every secret of the installation.
pub struct SecretsCipher {
    aead: XChaCha20Poly1305,
}

impl SecretsCipher {
    /// Loads the key at `path`, creating it (0600, write-then-rename) on
    /// first use.
    pub fn load_or_create(path: &Path) -> Result<Self, CipherError> {
        let key = Zeroizing::new(warren_keyfile::load_or_create_secret(path)?);
        Ok(Self::from_key(&key))
    }

    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// `(ciphertext, nonce)` of `value` for the row `(team, name)`.
    pub fn seal(&self, team: &TeamId, name: &str, value: &SecretValue) -> (Vec<u8>, Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(team, name);
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB");
        (ciphertext, nonce.to_vec())
    }

    /// The value sealed for the row `(team, name)`.
    pub fn open(
        &self,
        team: &TeamId,
        name: &str,
        ciphertext: &[u8],
        nonce: &[u8],
    ) -> Result<SecretValue, CipherError> {
        let fail = || CipherError::Decrypt {
            name: name.to_owned(),
        };
        if nonce.len() != NONCE_LEN {
            return Err(fail());
        }
        let aad = associated_data(team, name);
        let plain = Zeroizing::new(
            self.aead
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| fail())?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| fail())?;
        Ok(SecretValue::new(text.to_owned()))
    }
}

fn associated_data(team: &TeamId, name: &str) -> Vec<u8> {
    let mut aad = b"warren-secret/v1\0".to_vec();
    aad.extend_from_slice(team.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> SecretValue {
        SecretValue::new(s.to_owned())
    }

    #[test]
    fn round_trip_and_ciphertext_hides_the_value() {
        let c = SecretsCipher::from_key(&[1; 32]);
        let team = TeamId::generate();
        let (ct, nonce) = c.seal(&team, "gh", &value("ghp_s3cr3t"));
        assert!(!ct.windows(10).any(|w| w == b"ghp_s3cr3t"));
        assert_eq!(
            c.open(&team, "gh", &ct, &nonce).unwrap().expose(),
            "ghp_s3cr3t"
        );
        let (ct2, nonce2) = c.seal(&team, "gh", &value("ghp_s3cr3t"));
        assert_ne!(nonce, nonce2, "a fresh nonce per write");
        assert_ne!(ct, ct2);
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_key_fails() {
        let c = SecretsCipher::from_key(&[1; 32]);
        let team = TeamId::generate();
        let (ct, nonce) = c.seal(&team, "gh", &value("v"));
        assert!(matches!(
            c.open(&team, "other", &ct, &nonce),
            Err(CipherError::Decrypt { .. })
        ));
        assert!(c.open(&TeamId::generate(), "gh", &ct, &nonce).is_err());
        let wrong = SecretsCipher::from_key(&[2; 32]);
        assert!(wrong.open(&team, "gh", &ct, &nonce).is_err());
        let mut flipped = ct.clone();
        flipped[0] ^= 1;
        assert!(c.open(&team, "gh", &flipped, &nonce).is_err());
        assert!(c.open(&team, "gh", &ct, &nonce[..12]).is_err());
    }

    #[test]
    fn the_key_file_is_private_stable_and_refused_when_readable() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets-key");
        let team = TeamId::generate();
        let (ct, nonce) =
            SecretsCipher::load_or_create(&path)
                .unwrap()
                .seal(&team, "a", &value("v"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretsCipher::load_or_create(&path).unwrap();
        assert_eq!(again.open(&team, "a", &ct, &nonce).unwrap().expose(), "v");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SecretsCipher::load_or_create(&path),
            Err(CipherError::KeyFile(
                warren_keyfile::KeyFileError::Insecure { mode: 0o644, .. }
            ))
        ));
    }
}
