//! The `code-interpreter` recipe: the `base` root filesystem plus a Jupyter
//! kernel (`ipykernel` and `jupyter_client` from PyPI, pinned, installed by
//! the rootfs's own pip in a chroot) and Warren's code-interpreter server
//! (`code_interpreter/server.py`, at [`SERVER_PATH`]), which serves what the
//! `e2b-code-interpreter` SDK calls on port 49999. The recipe's start
//! command runs that server as `user` in every sandbox of the template.

use std::fs;
use std::io;
use std::path::Path;

use tokio::process::Command;

use crate::error::TemplateError;
use crate::progress::Progress;
use crate::recipe::StartCommand;
use crate::{base, command};

/// The Python packages the kernel needs, pinned.
const PACKAGES: [&str; 2] = ["ipykernel==7.4.0", "jupyter_client==8.10.0"];
/// Where the server lives inside the root filesystem.
pub const SERVER_PATH: &str = "/opt/warren/code-interpreter/server.py";
/// The server's source.
const SERVER: &str = include_str!("code_interpreter/server.py");
/// Where the host's CA bundle is copied for the install.
const HOST_CA: &str = "/tmp/warren-host-ca.crt";
/// The host's CA bundles, first found wins.
const CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];
/// The port the server answers on (E2B's `JUPYTER_PORT`).
pub const PORT: u16 = 49999;

pub(crate) fn start() -> StartCommand {
    StartCommand {
        cmd: vec!["/usr/bin/python3".into(), SERVER_PATH.into()],
        user: "user".into(),
        cwd: "/home/user".into(),
        ready_port: Some(PORT),
        ready_cmd: None,
    }
}

/// The CA bundle the host trusts: `PIP_CERT` if set, else the system's.
fn host_ca_bundle() -> Option<std::path::PathBuf> {
    std::env::var_os("PIP_CERT")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(CA_BUNDLES.iter().map(std::path::PathBuf::from))
        .find(|p| p.is_file())
}

pub(crate) async fn build(rootfs: &Path, progress: &Progress) -> Result<(), TemplateError> {
    base::build(rootfs, progress).await?;
    progress
        .line(format!(
            "installing {} with the root filesystem's pip (takes ~30 s)",
            PACKAGES.join(" ")
        ))
        .await;
    // The host's name resolution and trusted certificates (a host may
    // reach PyPI through a proxy with its own CA), for the install only.
    let resolv = rootfs.join("etc/resolv.conf");
    let had_resolv = resolv.exists();
    if !had_resolv {
        fs::copy("/etc/resolv.conf", &resolv)
            .map_err(TemplateError::io("copy the host's resolv.conf to", &resolv))?;
    }
    let ca = rootfs.join(HOST_CA.trim_start_matches('/'));
    let host_ca = host_ca_bundle();
    if let Some(bundle) = &host_ca {
        fs::copy(bundle, &ca).map_err(TemplateError::io("copy the host's CA bundle to", &ca))?;
    }
    let mut cmd = Command::new("chroot");
    cmd.arg(rootfs)
        .args([
            "/usr/bin/python3",
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--break-system-packages",
            "--progress-bar",
            "off",
        ])
        .args(PACKAGES)
        .env("LC_ALL", "C.UTF-8")
        .env("HOME", "/root")
        .env_remove("PIP_FIND_LINKS");
    // pip and the libraries under it read any of these; inherited from the
    // host they would name the chroot's own bundle.
    for var in ["PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
        match host_ca {
            Some(_) => cmd.env(var, HOST_CA),
            None => cmd.env_remove(var),
        };
    }
    cmd.env_remove("SSL_CERT_DIR");
    let installed = command::run(cmd, progress).await;
    let mut leftovers = vec![ca];
    if !had_resolv {
        leftovers.push(resolv);
    }
    for path in leftovers {
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(TemplateError::io("remove", &path)(e));
        }
    }
    installed?;

    progress
        .line(format!(
            "installing the code-interpreter server at {SERVER_PATH}"
        ))
        .await;
    let server = rootfs.join(SERVER_PATH.trim_start_matches('/'));
    if let Some(dir) = server.parent() {
        fs::create_dir_all(dir).map_err(TemplateError::io("create", dir))?;
    }
    fs::write(&server, SERVER).map_err(TemplateError::io("write", &server))?;
    progress
        .line("code-interpreter root filesystem complete")
        .await;
    Ok(())
}
