//! User metadata on files, as envd keeps it: extended attributes named
//! `user.e2b.<key>`.
//!
//! An upload's `X-Metadata-<key>: <value>` headers ([`from_headers`]) are
//! the file's whole metadata: keys are lowercased, the first of repeated
//! headers counts, keys and values are printable US-ASCII, a key at most
//! [`MAX_KEY`] bytes and all of it (each name with its prefix, plus the
//! values) at most [`MAX_TOTAL`] bytes; anything else is refused before the
//! upload is written. Uploads write a fresh file and rename it into place,
//! so the keys of an earlier upload never survive an overwrite. [`read`]
//! gives the metadata back on every entry (stat, list, watch, rename);
//! other `user.*` attributes are not shown.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use axum::http::HeaderMap;

/// The attribute namespace of metadata keys.
pub const PREFIX: &str = "user.e2b.";
/// Longest key: the kernel's 255-byte attribute name less the prefix.
pub const MAX_KEY: usize = 255 - PREFIX.len();
/// Most bytes of one file's metadata, names (with prefix) and values.
pub const MAX_TOTAL: usize = 4096;
/// The header prefix that carries metadata on uploads.
const HEADER: &str = "x-metadata-";

/// The metadata an upload's headers carry, or why it is refused.
pub fn from_headers(headers: &HeaderMap) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(HEADER) else {
            continue;
        };
        if key.is_empty() || out.contains_key(key) {
            continue;
        }
        if key.len() > MAX_KEY {
            return Err(format!(
                "metadata key {key:?} is longer than {MAX_KEY} bytes"
            ));
        }
        let value = value
            .to_str()
            .ok()
            .filter(|v| v.bytes().all(|b| (0x20..=0x7e).contains(&b)))
            .ok_or_else(|| format!("metadata {key:?}: values must be printable US-ASCII"))?;
        total += PREFIX.len() + key.len() + value.len();
        if total > MAX_TOTAL {
            return Err(format!(
                "metadata is larger than {MAX_TOTAL} bytes (keys with their prefix, and values)"
            ));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// Sets `metadata` on the open file `file` (a fresh file: it has none).
pub fn write(file: &impl AsRawFd, metadata: &BTreeMap<String, String>) -> std::io::Result<()> {
    for (key, value) in metadata {
        let name = CString::new(format!("{PREFIX}{key}")).map_err(std::io::Error::other)?;
        // SAFETY: `name` is NUL-terminated and `value` valid for its length;
        // the descriptor is open for the call.
        let rc = unsafe {
            libc::fsetxattr(
                file.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The metadata of `path` (not following a final symlink); none where the
/// filesystem keeps no attributes.
pub fn read(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
        return out;
    };
    let mut names = vec![0u8; 4096];
    // SAFETY: `cpath` is NUL-terminated and `names` valid for its length.
    let len = unsafe { libc::llistxattr(cpath.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let Ok(len) = usize::try_from(len) else {
        return out;
    };
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Some(key) = name.strip_prefix(PREFIX.as_bytes()) else {
            continue;
        };
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let mut value = vec![0u8; MAX_TOTAL];
        // SAFETY: as above, for the attribute's name and value buffer.
        let got = unsafe {
            libc::lgetxattr(
                cpath.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if let Ok(got) = usize::try_from(got) {
            out.insert(
                String::from_utf8_lossy(key).into_owned(),
                String::from_utf8_lossy(&value[..got]).into_owned(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_become_lowercased_keys_and_the_first_value_wins() {
        let h = headers(&[
            ("X-Metadata-Author", b"mish"),
            ("x-metadata-author", b"second"),
            ("X-Metadata-", b"ignored"),
            ("Content-Type", b"text/plain"),
        ]);
        let m = from_headers(&h).unwrap();
        assert_eq!(m, BTreeMap::from([("author".into(), "mish".into())]));
    }

    #[test]
    fn bad_values_and_oversized_metadata_are_refused() {
        let err = from_headers(&headers(&[("X-Metadata-k", b"caf\xc3\xa9")])).unwrap_err();
        assert!(err.contains("printable US-ASCII"), "{err}");
        let long = "k".repeat(MAX_KEY + 1);
        assert!(from_headers(&headers(&[(&format!("x-metadata-{long}"), b"v")])).is_err());
        let big = vec![b'v'; 3000];
        let err =
            from_headers(&headers(&[("x-metadata-a", &big), ("x-metadata-b", &big)])).unwrap_err();
        assert!(err.contains("larger than 4096"), "{err}");
    }

    #[test]
    fn metadata_round_trips_through_attributes_where_the_filesystem_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        let m = BTreeMap::from([("author".to_owned(), "mish".to_owned())]);
        match write(&file, &m) {
            Ok(()) => assert_eq!(read(&path), m),
            // A host filesystem without user attributes (tmpfs on old kernels).
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
            Err(e) => panic!("{e}"),
        }
    }
}
