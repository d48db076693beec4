use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use warren_core::{KeyId, WarrenError};

const PREFIX: &str = "wrn_";
/// E2B's SDKs (2.4x, and the newest again) refuse keys that are not
/// `e2b_` + lowercase hex: a Warren key is also accepted spelled `e2b_` + the
/// hex of its `wrn_…` text. Both spellings are the same key: one id, one
/// HMAC, one revocation.
const E2B_PREFIX: &str = "e2b_";
const SECRET_BYTES: usize = 32;

/// Why a key or the pepper could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("malformed API key: expected wrn_<id>_<secret> or its e2b_<hex> spelling")]
    Malformed,
    #[error("cannot read or create a daemon secret: {0}")]
    Secret(#[from] warren_keyfile::KeyFileError),
}

impl From<KeyError> for WarrenError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Malformed => WarrenError::new(
                warren_core::ErrorKind::Unauthenticated,
                "malformed API key: expected wrn_<id>_<secret> or its e2b_<hex> spelling",
            ),
            other => {
                WarrenError::internal(format!("{other}: {:?}", std::error::Error::source(&other)))
            }
        }
    }
}

/// The server-side secret mixed into every key hash.
#[derive(Clone)]
pub struct Pepper([u8; 32]);

impl Pepper {
    /// Loads the secret from `path`, creating it on first use (see
    /// [`warren_keyfile`]: 0600, atomic, refused when others may read it).
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        Ok(Self(warren_keyfile::load_or_create_secret(path)?))
    }

    /// A hex token bound to this secret and `context`.
    pub fn derive(&self, context: &str) -> String {
        hex::encode(self.hash(context))
    }

    fn hash(&self, secret: &str) -> Vec<u8> {
        self.mac(secret.as_bytes())
    }

    /// HMAC-SHA256 of `data` under this secret.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

/// A freshly minted key: the full text is shown once, only the hash is kept.
pub struct ApiKey {
    pub id: KeyId,
    pub text: String,
    pub hash: Vec<u8>,
}

impl ApiKey {
    pub fn generate(pepper: &Pepper) -> Self {
        let id = KeyId::generate();
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let hash = pepper.hash(&secret);
        Self {
            text: format!("{PREFIX}{id}_{secret}"),
            id,
            hash,
        }
    }

    /// `key` spelled as E2B's SDKs insist: `e2b_` + lowercase hex of the text.
    pub fn e2b_form(key: &str) -> String {
        format!("{E2B_PREFIX}{}", hex::encode(key))
    }

    /// The `wrn_…` text of a key presented in its [`Self::e2b_form`], or
    /// `None` when `text` is not one.
    pub fn from_e2b_form(text: &str) -> Option<String> {
        let raw = hex::decode(text.strip_prefix(E2B_PREFIX)?).ok()?;
        String::from_utf8(raw)
            .ok()
            .filter(|k| k.starts_with(PREFIX))
    }

    /// Splits a presented key into its id and secret.
    pub fn parse(text: &str) -> Result<(KeyId, &str), KeyError> {
        let rest = text.strip_prefix(PREFIX).ok_or(KeyError::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(KeyError::Malformed)?;
        let id: KeyId = id.parse().map_err(|_| KeyError::Malformed)?;
        if secret.len() != SECRET_BYTES * 2 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Malformed);
        }
        Ok((id, secret))
    }

    /// Whether `secret` matches `stored_hash`, in constant time.
    pub fn verify(pepper: &Pepper, secret: &str, stored_hash: &[u8]) -> bool {
        pepper.hash(secret).ct_eq(stored_hash).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2b_spelling_round_trips() {
        let key = "wrn_abcdefghijkl_00ff";
        let e2b = ApiKey::e2b_form(key);
        assert!(e2b.starts_with("e2b_") && e2b[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(ApiKey::from_e2b_form(&e2b).as_deref(), Some(key));
        assert_eq!(ApiKey::from_e2b_form(key), None);
        assert_eq!(ApiKey::from_e2b_form("e2b_zz"), None);
        // Hex of something that is not a Warren key is no key.
        assert_eq!(
            ApiKey::from_e2b_form(&format!("e2b_{}", hex::encode("x"))),
            None
        );
    }

    #[test]
    fn generated_keys_verify_and_tampered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let pepper = Pepper::load_or_create(&dir.path().join("pepper")).unwrap();
        let key = ApiKey::generate(&pepper);
        let (id, secret) = ApiKey::parse(&key.text).unwrap();
        assert_eq!(id, key.id);
        assert!(ApiKey::verify(&pepper, secret, &key.hash));
        let mut wrong = secret.to_owned();
        wrong.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });
        assert!(!ApiKey::verify(&pepper, &wrong, &key.hash));
    }

    #[test]
    fn pepper_is_stable_across_loads_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        let a = Pepper::load_or_create(&path).unwrap();
        let b = Pepper::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in ["", "wrn_", "wrn_abc_def", "Bearer x", "wrn_abcdefghijkl_zz"] {
            assert!(ApiKey::parse(bad).is_err(), "{bad}");
        }
    }
}
