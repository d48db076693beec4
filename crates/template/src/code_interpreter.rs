//! The `code-interpreter` recipe: the `base` root filesystem plus Jupyter
//! kernels and the data stack analysts reach for, installed from PyPI by the
//! root filesystem's own pip in a chroot, every package pinned
//! (`code_interpreter/requirements.lock`, wheels only, then `pip check`),
//! and Warren's code-interpreter server (`code_interpreter/server.py`, at
//! [`SERVER_PATH`]), which serves what the `e2b-code-interpreter` SDKs call
//! on port 49999. Kernels: IPython with E2B's display formats
//! (`code_interpreter/display.py`), Deno's kernel for JavaScript and
//! TypeScript, and bash_kernel. The recipe's start command runs the server
//! as `user` in every sandbox of the template.

use std::fs;
use std::io;
use std::path::Path;

use tokio::process::Command;

use crate::error::TemplateError;
use crate::progress::Progress;
use crate::recipe::StartCommand;
use crate::{base, command};

/// Every Python package installed, pinned (the lock of `requirements.txt`).
const LOCK: &str = include_str!("code_interpreter/requirements.lock");
/// Where the server and the kernels' start-up file live inside the root
/// filesystem.
const DIR: &str = "/opt/warren/code-interpreter";
/// Where the server lives inside the root filesystem.
pub const SERVER_PATH: &str = "/opt/warren/code-interpreter/server.py";
/// The server's source.
const SERVER: &str = include_str!("code_interpreter/server.py");
/// What every Python kernel runs at start: E2B's display formats.
const DISPLAY: &str = include_str!("code_interpreter/display.py");
/// Where kernel specs go (the system's Jupyter data directory).
const KERNELS: &str = "/usr/local/share/jupyter/kernels";
/// Where the host's CA bundle and the lock are copied for the install.
const HOST_CA: &str = "/tmp/warren-host-ca.crt";
const LOCK_IN_ROOTFS: &str = "/tmp/warren-requirements.lock";
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
    let packages = LOCK.lines().filter(|l| l.contains("==")).count();
    progress
        .line(format!(
            "installing {packages} pinned Python packages (kernels and the data stack) with the root filesystem's pip (takes 1-2 min)"
        ))
        .await;
    pip(rootfs, progress).await?;

    progress
        .line(format!(
            "installing the code-interpreter server and kernel specs under {DIR} and {KERNELS}"
        ))
        .await;
    write(rootfs, SERVER_PATH, SERVER)?;
    write(rootfs, &format!("{DIR}/display.py"), DISPLAY)?;
    for (name, spec) in kernel_specs() {
        write(
            rootfs,
            &format!("{KERNELS}/{name}/kernel.json"),
            &spec.to_string(),
        )?;
    }
    progress
        .line("code-interpreter root filesystem complete")
        .await;
    Ok(())
}

/// The kernels the server starts, by spec name (see `server.py`'s KERNELS).
fn kernel_specs() -> [(&'static str, serde_json::Value); 3] {
    [
        (
            "warren-python",
            serde_json::json!({
                "argv": [
                    "/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                    format!("--IPKernelApp.exec_files={DIR}/display.py"),
                    "--InteractiveShell.colors=NoColor",
                    "--PlainTextFormatter.max_seq_length=0",
                ],
                "display_name": "Python 3",
                "language": "python",
            }),
        ),
        (
            "warren-deno",
            serde_json::json!({
                "argv": ["/usr/local/bin/deno", "jupyter", "--kernel", "--conn", "{connection_file}"],
                "display_name": "Deno (JavaScript and TypeScript)",
                "language": "typescript",
                "env": {"NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1", "DENO_NO_PROMPT": "1"},
            }),
        ),
        (
            "warren-bash",
            serde_json::json!({
                "argv": ["/usr/bin/python3", "-m", "bash_kernel", "-f", "{connection_file}"],
                "display_name": "Bash",
                "language": "bash",
                "env": {"PS1": "$"},
            }),
        ),
    ]
}

/// Writes `contents` at `path` (absolute, inside the root filesystem).
fn write(rootfs: &Path, path: &str, contents: &str) -> Result<(), TemplateError> {
    let target = rootfs.join(path.trim_start_matches('/'));
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir).map_err(TemplateError::io("create", dir))?;
    }
    fs::write(&target, contents).map_err(TemplateError::io("write", &target))
}

/// Installs [`LOCK`] with the root filesystem's pip, then checks that every
/// package's requirements are met, with the host's name resolution and
/// trusted certificates (a host may reach PyPI through a proxy with its own
/// CA) for the install only.
async fn pip(rootfs: &Path, progress: &Progress) -> Result<(), TemplateError> {
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
    let lock = rootfs.join(LOCK_IN_ROOTFS.trim_start_matches('/'));
    fs::write(&lock, LOCK).map_err(TemplateError::io("write", &lock))?;
    let chroot_pip = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg(rootfs)
            .args(["/usr/bin/python3", "-m", "pip"])
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .env("HOME", "/root")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env_remove("PIP_FIND_LINKS");
        // pip and the libraries under it read any of these; inherited from
        // the host they would name the chroot's own bundle.
        for var in ["PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"] {
            match host_ca {
                Some(_) => cmd.env(var, HOST_CA),
                None => cmd.env_remove(var),
            };
        }
        cmd.env_remove("SSL_CERT_DIR");
        cmd
    };
    let installed = async {
        let install = chroot_pip(&[
            "install",
            "--no-cache-dir",
            "--break-system-packages",
            "--progress-bar",
            "off",
            "--only-binary=:all:",
            "--no-deps",
            "--requirement",
            LOCK_IN_ROOTFS,
        ]);
        command::run(install, progress).await?;
        command::run(chroot_pip(&["check"]), progress).await
    }
    .await;
    let mut leftovers = vec![ca, lock];
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
    installed
}
