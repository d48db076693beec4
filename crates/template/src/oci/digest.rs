//! Content digests (`sha256:<64 lowercase hex>`; the only algorithm Warren
//! accepts) and verification of blobs against them.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::error::OciError;

/// A sha256 digest as the OCI spec writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest(String);

impl Digest {
    pub(crate) fn parse(s: &str) -> Result<Self, OciError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| OciError::invalid(format!("digest {s:?} is not sha256")))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(OciError::invalid(format!("digest {s:?} is malformed")));
        }
        Ok(Self(s.to_owned()))
    }

    pub(crate) fn hex(&self) -> &str {
        &self.0[7..]
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Where an OCI layout keeps this blob.
    pub(crate) fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

/// Hashes what is read through it.
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    pub(crate) read: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// Reads what is left, then checks the whole stream against `expected`.
    pub(crate) fn finish(mut self, blob: &str, expected: &Digest) -> Result<(), OciError> {
        io::copy(&mut self, &mut io::sink()).map_err(OciError::io(format!("read {blob}")))?;
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != expected.as_str() {
            return Err(OciError::Digest {
                blob: blob.to_owned(),
                expected: expected.as_str().to_owned(),
                actual,
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Checks `data` against `expected`.
pub(crate) fn verify_bytes(blob: &str, data: &[u8], expected: &Digest) -> Result<(), OciError> {
    Hashing::new(data).finish(blob, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_verifies() {
        let empty = Digest::parse(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        verify_bytes("empty", b"", &empty).unwrap();
        let err = verify_bytes("blobs/sha256/x", b"x", &empty)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("blob blobs/sha256/x does not match its digest"),
            "{err}"
        );
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    }
}
