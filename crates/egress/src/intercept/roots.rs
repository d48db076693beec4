//! The certificates upstream servers are verified against: the system's
//! bundle plus, optionally, one extra CA file (a private CA, or a test CA).

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::InterceptError;

/// Debian's bundle of the system's trusted CAs.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The trusted roots from `system` (skipped when it does not exist) and
/// `extra` (which must exist and hold at least one certificate).
pub fn load(system: &Path, extra: Option<&Path>) -> Result<RootCertStore, InterceptError> {
    let mut roots = RootCertStore::empty();
    if system.exists() {
        add_file(&mut roots, system)?;
    }
    if let Some(extra) = extra
        && add_file(&mut roots, extra)? == 0
    {
        return Err(InterceptError::NoRoots {
            path: extra.to_owned(),
        });
    }
    if roots.is_empty() {
        return Err(InterceptError::NoRoots {
            path: system.to_owned(),
        });
    }
    Ok(roots)
}

fn add_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, InterceptError> {
    let bad = |detail: String| InterceptError::Roots {
        path: PathBuf::from(path),
        detail,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let (added, _unparsable) = roots.add_parsable_certificates(certs);
    Ok(added)
}
