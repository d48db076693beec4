//! Installs the Warren CA certificate the daemon sends in `/init`, so
//! programs in the sandbox trust the certificates the egress proxy presents
//! for hosts it injects secrets into.
//!
//! Idempotent, at every `/init` (a restored sandbox gets it again):
//! - `usr/local/share/ca-certificates/warren-ca.crt` holds the certificate;
//! - `etc/ssl/certs/ca-certificates.crt` (the bundle OpenSSL, curl, Python
//!   and git read) gets it appended once, created if missing;
//! - processes started afterwards get `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`
//!   and `NODE_EXTRA_CA_CERTS` unless the caller set them.
//!
//! Paths are under the agent's `--root` (default `/`). Only a
//! certificate is accepted: a PEM holding anything else is refused.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

pub const CERT_PATH: &str = "usr/local/share/ca-certificates/warren-ca.crt";
pub const BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";

/// Why the certificate was not installed.
#[derive(Debug, thiserror::Error)]
pub enum CaInstallError {
    #[error("warrenCaCert must be one PEM certificate and nothing else")]
    NotACertificate,
    #[error("installing the Warren CA at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Checks `pem` and installs it under `root` (see the module docs).
pub fn install(root: &Path, pem: &str) -> Result<(), CaInstallError> {
    let pem = pem.trim();
    let one_cert = pem.starts_with("-----BEGIN CERTIFICATE-----")
        && pem.ends_with("-----END CERTIFICATE-----")
        && pem.matches("-----BEGIN").count() == 1;
    if !one_cert {
        return Err(CaInstallError::NotACertificate);
    }
    let pem = format!("{pem}\n");
    let cert = root.join(CERT_PATH);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| CaInstallError::Io { path, source }
    };
    if std::fs::read_to_string(&cert).ok().as_deref() != Some(pem.as_str()) {
        write_file(&cert, pem.as_bytes()).map_err(io(&cert))?;
    }
    let bundle = root.join(BUNDLE_PATH);
    let current = match std::fs::read_to_string(&bundle) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&bundle)(e)),
    };
    if !current.contains(pem.trim_end()) {
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&pem);
        write_file(&bundle, text.as_bytes()).map_err(io(&bundle))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` (parents created, mode 0644) through a
/// temporary file and a rename.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("warren-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Sets the variables that point TLS clients at the trusted certificates,
/// keeping any the caller set.
pub fn add_default_env(env: &mut BTreeMap<String, String>) {
    let bundle = format!("/{BUNDLE_PATH}");
    for (k, v) in [
        ("SSL_CERT_FILE", bundle.clone()),
        ("REQUESTS_CA_BUNDLE", bundle),
        ("NODE_EXTRA_CA_CERTS", format!("/{CERT_PATH}")),
    ] {
        env.entry(k.to_owned()).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn installs_once_and_keeps_the_bundle() {
        let root = tempfile::tempdir().unwrap();
        let bundle = root.path().join(BUNDLE_PATH);
        std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
        std::fs::write(
            &bundle,
            "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----",
        )
        .unwrap();
        install(root.path(), PEM).unwrap();
        install(root.path(), &format!("{PEM}\n")).unwrap();
        let text = std::fs::read_to_string(&bundle).unwrap();
        assert!(text.contains("OLD"));
        assert_eq!(text.matches("MIIB").count(), 1, "{text}");
        assert_eq!(
            std::fs::read_to_string(root.path().join(CERT_PATH)).unwrap(),
            format!("{PEM}\n")
        );
    }

    #[test]
    fn creates_a_missing_bundle_and_refuses_keys() {
        let root = tempfile::tempdir().unwrap();
        install(root.path(), PEM).unwrap();
        assert!(root.path().join(BUNDLE_PATH).exists());
        let key = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----";
        assert!(install(root.path(), key).is_err());
        assert!(install(root.path(), &format!("{PEM}\n{key}")).is_err());
    }

    #[test]
    fn default_env_keeps_what_the_caller_set() {
        let mut env = BTreeMap::from([("SSL_CERT_FILE".to_owned(), "/mine.pem".to_owned())]);
        add_default_env(&mut env);
        assert_eq!(env["SSL_CERT_FILE"], "/mine.pem");
        assert_eq!(
            env["REQUESTS_CA_BUNDLE"],
            "/etc/ssl/certs/ca-certificates.crt"
        );
        assert_eq!(
            env["NODE_EXTRA_CA_CERTS"],
            "/usr/local/share/ca-certificates/warren-ca.crt"
        );
    }
}
