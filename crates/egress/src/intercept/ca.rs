//! The installation's Warren CA and the leaf certificates it issues.
//!
//! Files (in the directory given to [`WarrenCa::load_or_create`], the data
//! directory's `secrets/`): `warren-ca.key`, the CA's ECDSA P-256 key as
//! PKCS#8 PEM, mode 0600; `warren-ca.crt`, its self-signed certificate as
//! PEM. Each is written atomically ([`warren_keyfile`]), key first: a crash
//! between the two leaves a key without a certificate, and the next start
//! issues the certificate for that key again. A key file that group or
//! others may read is refused.
//!
//! Leaves: one per host, minted on first use, valid from an hour ago (clock
//! skew) for [`LEAF_VALIDITY`], each with its own key, kept in a bounded
//! least-recently-used cache ([`LEAF_CACHE`] hosts) and minted again when
//! half their validity has passed. A leaf names exactly one DNS host and is
//! for server authentication only; the CA may issue no intermediate
//! (path length 0).
//!
//! Only the certificate ever leaves the daemon (sandboxes trust it); the
//! key stays in the data directory.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// How long a leaf certificate is valid.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Most leaves kept.
pub const LEAF_CACHE: usize = 1024;
/// How long the CA certificate is valid.
const CA_VALIDITY_DAYS: i64 = 3650;

pub const KEY_FILE: &str = "warren-ca.key";
pub const CERT_FILE: &str = "warren-ca.crt";

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("Warren CA: {0}")]
    File(#[from] warren_keyfile::KeyFileError),
    #[error("Warren CA file {path} is not a valid {what}")]
    Malformed {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot issue a certificate for '{host}'")]
    Issue {
        host: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("the TLS library refused the leaf key for '{host}'")]
    LeafKey {
        host: String,
        #[source]
        source: rustls::Error,
    },
}

struct Leaf {
    key: Arc<CertifiedKey>,
    minted: Instant,
    used: u64,
}

struct Leaves {
    by_host: HashMap<String, Leaf>,
    tick: u64,
}

/// The CA: issues leaves for intercepted hosts.
pub struct WarrenCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    leaves: Mutex<Leaves>,
}

impl WarrenCa {
    /// Loads the CA from `dir`, creating what is missing (see the module
    /// docs).
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        let key = match warren_keyfile::read(&key_path)? {
            Some(pem) => {
                let pem = String::from_utf8_lossy(&pem);
                KeyPair::from_pem(&pem).map_err(|source| CaError::Malformed {
                    path: key_path.clone(),
                    what: "PKCS#8 PEM key",
                    source,
                })?
            }
            None => {
                let key = KeyPair::generate().map_err(|source| CaError::Issue {
                    host: "the Warren CA".into(),
                    source,
                })?;
                warren_keyfile::write(&key_path, key.serialize_pem().as_bytes())?;
                key
            }
        };
        let cert_pem = match read(&cert_path)? {
            Some(pem) => pem,
            None => {
                let pem = ca_params()
                    .self_signed(&key)
                    .map_err(|source| CaError::Issue {
                        host: "the Warren CA".into(),
                        source,
                    })?
                    .pem();
                warren_keyfile::write_with_mode(&cert_path, pem.as_bytes(), 0o644)?;
                pem
            }
        };
        Self::from_parts(&cert_path, cert_pem, key)
    }

    fn from_parts(cert_path: &Path, cert_pem: String, key: KeyPair) -> Result<Self, CaError> {
        let malformed = |source| CaError::Malformed {
            path: cert_path.to_owned(),
            what: "PEM certificate",
            source,
        };
        let der = pem_to_der(&cert_pem).ok_or(malformed(rcgen::Error::CouldNotParseCertificate))?;
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(malformed)?;
        Ok(Self {
            issuer,
            cert_pem,
            cert_der: der,
            leaves: Mutex::new(Leaves {
                by_host: HashMap::new(),
                tick: 0,
            }),
        })
    }

    /// The CA certificate, PEM: what sandboxes install and trust.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The leaf certificate and key for `host`, from the cache or minted.
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        leaves.tick += 1;
        let tick = leaves.tick;
        if let Some(leaf) = leaves.by_host.get_mut(host)
            && leaf.minted.elapsed() < LEAF_VALIDITY / 2
        {
            leaf.used = tick;
            return Ok(leaf.key.clone());
        }
        let key = Arc::new(self.mint(host)?);
        if leaves.by_host.len() >= LEAF_CACHE && !leaves.by_host.contains_key(host) {
            let oldest = leaves
                .by_host
                .iter()
                .min_by_key(|(_, l)| l.used)
                .map(|(h, _)| h.clone());
            if let Some(oldest) = oldest {
                leaves.by_host.remove(&oldest);
            }
        }
        leaves.by_host.insert(
            host.to_owned(),
            Leaf {
                key: key.clone(),
                minted: Instant::now(),
                used: tick,
            },
        );
        Ok(key)
    }

    /// How many leaves are cached.
    pub fn cached_leaves(&self) -> usize {
        self.leaves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_host
            .len()
    }

    fn mint(&self, host: &str) -> Result<CertifiedKey, CaError> {
        let issue = |source| CaError::Issue {
            host: host.to_owned(),
            source,
        };
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(issue)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(random_serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(issue)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(issue)?;
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing =
            rustls::crypto::ring::sign::any_supported_type(&private).map_err(|source| {
                CaError::LeafKey {
                    host: host.to_owned(),
                    source,
                }
            })?;
        Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Warren");
    dn.push(
        DnType::CommonName,
        format!("Warren CA {}", hex_id(&random_bytes::<6>())),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    params
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .expect("the system random source works");
    b
}

fn random_serial() -> SerialNumber {
    let mut b = random_bytes::<16>();
    b[0] &= 0x7f; // a positive integer
    SerialNumber::from_slice(&b)
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_to_der(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}

/// The certificate's text (public), or `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, CaError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(warren_keyfile::KeyFileError::Io {
            path: path.to_owned(),
            op: "read",
            source,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls_pki_types::{ServerName, UnixTime};
    use std::os::unix::fs::PermissionsExt as _;

    fn verify(ca: &WarrenCa, leaf: &CertifiedKey, host: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.certificate_der().clone()).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &[],
                &ServerName::try_from(host.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(drop)
    }

    #[test]
    fn a_leaf_verifies_against_the_ca_for_its_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = WarrenCa::load_or_create(dir.path()).unwrap();
        let leaf = ca.leaf("api.example.com").unwrap();
        verify(&ca, &leaf, "api.example.com").unwrap();
        assert!(verify(&ca, &leaf, "evil.example.com").is_err());
        assert!(verify(&ca, &leaf, "example.com").is_err());

        // Another installation's CA does not vouch for it.
        let other_dir = tempfile::tempdir().unwrap();
        let other = WarrenCa::load_or_create(other_dir.path()).unwrap();
        assert!(verify(&other, &leaf, "api.example.com").is_err());
    }

    #[test]
    fn the_ca_is_created_once_privately_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let ca = WarrenCa::load_or_create(dir.path()).unwrap();
        let key_mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
        assert!(
            ca.certificate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(!ca.certificate_pem().contains("PRIVATE KEY"));

        // Reloaded, the same CA: a leaf minted by the new instance verifies
        // against the old certificate.
        let again = WarrenCa::load_or_create(dir.path()).unwrap();
        assert_eq!(again.certificate_pem(), ca.certificate_pem());
        verify(&ca, &again.leaf("h.example.org").unwrap(), "h.example.org").unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp files"
        );

        // A lost certificate is issued again for the same key.
        fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let reissued = WarrenCa::load_or_create(dir.path()).unwrap();
        verify(
            &reissued,
            &ca.leaf("h.example.org").unwrap(),
            "h.example.org",
        )
        .expect_err("a new certificate has a new name");
        verify(
            &reissued,
            &reissued.leaf("h.example.org").unwrap(),
            "h.example.org",
        )
        .unwrap();

        fs::set_permissions(dir.path().join(KEY_FILE), fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            WarrenCa::load_or_create(dir.path()),
            Err(CaError::File(warren_keyfile::KeyFileError::Insecure {
                mode: 0o640,
                ..
            }))
        ));
    }

    #[test]
    fn leaves_are_cached_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = WarrenCa::load_or_create(dir.path()).unwrap();
        let a = ca.leaf("a.example.com").unwrap();
        let again = ca.leaf("a.example.com").unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        ca.leaf("b.example.com").unwrap();
        assert_eq!(ca.cached_leaves(), 2);
    }
}
