//! RFC 9162 §2.1.1 hashing: SHA-256 with domain separation between leaves
//! and interior nodes.
//!
//! - empty tree: `SHA-256("")`
//! - leaf: `SHA-256(0x00 ‖ entry bytes)`
//! - interior node: `SHA-256(0x01 ‖ left ‖ right)`
//!
//! [`Hash`] is a 32-byte digest; its text form (serde, `Display`,
//! `FromStr`) is 64 lower-case hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Length of a SHA-256 digest in bytes.
pub const HASH_LEN: usize = 32;

/// Errors from parsing a hash.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// The text is not 64 hex digits.
    #[error("hash must be 64 hex digits, got {0:?}")]
    BadHex(String),
    /// A byte slice of the wrong length.
    #[error("hash must be {HASH_LEN} bytes, got {0}")]
    BadLength(usize),
}

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Builds a hash from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, HashError> {
        <[u8; HASH_LEN]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashError::BadLength(bytes.len()))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; HASH_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashError::BadHex(s.to_owned()))?;
        Ok(Hash(out))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// Leaf hash of `data`: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    Hash(hasher.finalize().into())
}

/// Interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    Hash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_bad_text() {
        let h = leaf_hash(b"x");
        assert_eq!(h.to_string().parse::<Hash>(), Ok(h));
        assert!(matches!("zz".parse::<Hash>(), Err(HashError::BadHex(_))));
        assert_eq!(Hash::from_slice(&[0; 31]), Err(HashError::BadLength(31)));
    }
}
