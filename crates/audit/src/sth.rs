//! Signed tree heads: the log's Ed25519-signed commitment to its size and
//! root at a moment.
//!
//! The signed message is 68 bytes:
//! `"warren-audit/sth/v1" ‖ 0x00 ‖ size (u64 big-endian) ‖ timestamp_ms
//! (u64 big-endian) ‖ root_hash (32 bytes)`, signed with Ed25519 (RFC 8032,
//! pure). In JSON the root is hex and the signature standard base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// Domain separation prefix of the signed message.
pub const STH_CONTEXT: &[u8] = b"warren-audit/sth/v1\0";

/// Why a signed tree head is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SthError {
    /// The signature field is not base64 of 64 bytes.
    #[error("tree head of size {size}: signature is not base64 of 64 bytes")]
    BadSignatureEncoding {
        /// Size of the head.
        size: u64,
    },
    /// The signature does not verify under the key.
    #[error("tree head of size {size}: signature does not verify with the log's public key")]
    BadSignature {
        /// Size of the head.
        size: u64,
    },
}

/// The log's state at a moment: how many entries, and their root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    /// Number of entries covered.
    pub size: u64,
    /// Root hash of the first `size` entries.
    pub root_hash: Hash,
    /// When the head was made, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl TreeHead {
    /// The exact bytes that are signed.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut msg = Vec::with_capacity(STH_CONTEXT.len() + 48);
        msg.extend_from_slice(STH_CONTEXT);
        msg.extend_from_slice(&self.size.to_be_bytes());
        msg.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        msg.extend_from_slice(self.root_hash.as_bytes());
        msg
    }

    /// Signs this head.
    pub fn sign(&self, key: &SigningKey) -> SignedTreeHead {
        let signature = key.sign(&self.signed_message());
        SignedTreeHead {
            size: self.size,
            root_hash: self.root_hash,
            timestamp_ms: self.timestamp_ms,
            signature: B64.encode(signature.to_bytes()),
        }
    }
}

/// A tree head with its Ed25519 signature, as published and exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTreeHead {
    /// Number of entries covered.
    pub size: u64,
    /// Root hash of the first `size` entries, hex.
    pub root_hash: Hash,
    /// When the head was made, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Ed25519 signature over [`TreeHead::signed_message`], base64.
    pub signature: String,
}

impl SignedTreeHead {
    /// The head without its signature (unverified).
    pub fn head(&self) -> TreeHead {
        TreeHead {
            size: self.size,
            root_hash: self.root_hash,
            timestamp_ms: self.timestamp_ms,
        }
    }

    /// Checks the signature and returns the head it covers.
    pub fn verify(&self, key: &VerifyingKey) -> Result<TreeHead, SthError> {
        let size = self.size;
        let bytes = B64
            .decode(self.signature.as_bytes())
            .map_err(|_| SthError::BadSignatureEncoding { size })?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| SthError::BadSignatureEncoding { size })?;
        let signature = Signature::from_bytes(&bytes);
        let head = self.head();
        key.verify_strict(&head.signed_message(), &signature)
            .map_err(|_| SthError::BadSignature { size })?;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn sign_then_verify_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let head = TreeHead {
            size: 10,
            root_hash: leaf_hash(b"r"),
            timestamp_ms: 1_700_000_000_000,
        };
        let sth = head.sign(&key);
        assert_eq!(sth.verify(&key.verifying_key()), Ok(head));

        let mut bigger = sth.clone();
        bigger.size = 11;
        assert_eq!(
            bigger.verify(&key.verifying_key()),
            Err(SthError::BadSignature { size: 11 })
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(sth.verify(&other.verifying_key()).is_err());
        let mut garbled = sth;
        garbled.signature = "not base64!".into();
        assert_eq!(
            garbled.verify(&key.verifying_key()),
            Err(SthError::BadSignatureEncoding { size: 10 })
        );
    }
}
