//! The `runsc` command line, always with `--root <state_dir>/runsc` so that
//! a runtime only ever sees its own containers.
//!
//! `run` and `restore` start inside the sandbox's network namespace and a
//! private mount namespace (see `warren_net::NetnsEntry`) with
//! `--network=sandbox --net-disconnect-ok` (a checkpoint otherwise fails
//! while any TCP connection exists) and `--overlay2=all:dir=<overlay>`: the
//! root filesystem and every writable bind mount (`/tmp`, see `bundle`) get
//! an overlay whose upper layer is a filestore in `<overlay>`, the
//! sandbox's disk (see `disk`).
//! Their stdout/stderr go to the sandbox's console log: a detached sandbox
//! keeps those descriptors open, so they must not be pipes we wait on.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde::Deserialize;
use tokio::process::Command;
use warren_core::SandboxId;
use warren_net::NetnsEntry;

use super::quirks;
use crate::RuntimeError;

/// How to start a container: fresh or from a checkpoint image.
pub(super) enum Launch<'a> {
    Run,
    /// `direct`: read the pages with `O_DIRECT` (see `direct_io`).
    Restore {
        image: &'a Path,
        direct: bool,
    },
}

/// Paths one `run`/`restore` needs.
pub(super) struct LaunchPaths<'a> {
    pub bundle: &'a Path,
    pub overlay: &'a Path,
    /// `--overlay2`'s mount selector: `all` or `root` (see `disk::Layout`).
    pub overlay_scope: &'a str,
    pub console_log: &'a Path,
}

#[derive(Debug, Clone)]
pub(super) struct Runsc {
    binary: PathBuf,
    root: PathBuf,
    /// Whether `run` and `restore` get `--allow-suid` (see [`ALLOW_SUID`]).
    allow_suid: bool,
}

/// `runsc --allow-suid`: honour set-user-ID and set-group-ID bits inside the
/// sandbox, so `sudo` works there (the bundle already turns
/// `noNewPrivileges` off). gVisor has it from release 20250818; before, the
/// Sentry ignores those bits and acts as if no_new_privs were always set,
/// which is why `sudo` fails with "no new privileges" under Debian's runsc
/// 0.0~20240729. Privileges gained this way stay inside the sandbox, whose
/// root a caller may have anyway (exec as `root`): gVisor is the boundary.
pub(super) const ALLOW_SUID: &str = "allow-suid";

/// Whether `runsc flags` (which prints every global flag, one `-name` per
/// line, on stderr) lists `flag`.
pub(super) fn lists_flag(flags_output: &str, flag: &str) -> bool {
    flags_output.lines().any(|line| {
        line.trim_start()
            .strip_prefix('-')
            .and_then(|rest| rest.strip_prefix(flag))
            .is_some_and(|after| after.is_empty() || after.starts_with(' '))
    })
}

/// Whether the runsc at `binary` knows the global flag `flag`; `false` when
/// it cannot be asked.
pub(super) fn supports_flag(binary: &Path, flag: &str) -> bool {
    match std::process::Command::new(binary)
        .arg("flags")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            lists_flag(&text, flag)
        }
        Err(_) => false,
    }
}

#[derive(Deserialize)]
struct StateEntry {
    status: String,
}

impl Runsc {
    pub fn new(binary: PathBuf, root: PathBuf) -> Self {
        let allow_suid = supports_flag(&binary, ALLOW_SUID);
        if allow_suid {
            tracing::info!("runsc honours set-user-ID bits: sudo works inside sandboxes");
        } else {
            tracing::info!(
                "this runsc has no --allow-suid (gVisor before 20250818): set-user-ID bits are ignored inside sandboxes, so sudo goes through the agent there"
            );
        }
        Self {
            binary,
            root,
            allow_suid,
        }
    }

    /// Whether `run` and `restore` get `--allow-suid`.
    pub fn allow_suid(&self) -> bool {
        self.allow_suid
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .stdin(Stdio::null())
            .kill_on_drop(false);
        cmd
    }

    /// Starts the container detached inside `entry`'s namespaces.
    pub async fn launch(
        &self,
        id: &SandboxId,
        how: Launch<'_>,
        paths: &LaunchPaths<'_>,
        entry: NetnsEntry,
    ) -> Result<(), RuntimeError> {
        let op = match how {
            Launch::Run => "runsc run",
            Launch::Restore { .. } => "runsc restore",
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.console_log)
            .map_err(|e| RuntimeError::Io {
                op: format!("opening {}", paths.console_log.display()),
                source: e,
            })?;
        let log_err = log.try_clone().map_err(|e| RuntimeError::Io {
            op: format!("opening {}", paths.console_log.display()),
            source: e,
        })?;
        let mut cmd = self.command();
        cmd.arg(match paths.overlay_scope {
            "none" => "--overlay2=none".to_owned(),
            scope => format!("--overlay2={scope}:dir={}", paths.overlay.display()),
        })
        .arg("--network=sandbox")
        .arg(quirks::NET_DISCONNECT_OK);
        if self.allow_suid {
            cmd.arg(format!("--{ALLOW_SUID}"));
        }
        match how {
            Launch::Run => {
                cmd.arg("run");
            }
            Launch::Restore { image, direct } => {
                cmd.arg("restore")
                    .arg(format!("--image-path={}", image.display()));
                if direct {
                    cmd.arg("--direct");
                }
            }
        }
        cmd.arg("--detach")
            .arg("--bundle")
            .arg(paths.bundle)
            .arg(id.as_str())
            .stdout(log)
            .stderr(log_err);
        quirks::enter_netns_before_exec(&mut cmd, entry);
        let status = cmd.status().await.map_err(|e| RuntimeError::Io {
            op: format!("starting {} ({})", op, self.binary.display()),
            source: e,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Command {
                op: format!("{op} {id}"),
                detail: format!("exited with {status}"),
            })
        }
    }

    /// `runsc checkpoint --compression=none --image-path=dest
    /// [--leave-running] [--direct]`: an uncompressed image, its pages
    /// written with `O_DIRECT` if `direct` (see `direct_io`).
    pub async fn checkpoint(
        &self,
        id: &SandboxId,
        dest: &Path,
        leave_running: bool,
        direct: bool,
    ) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.arg("checkpoint")
            .arg(format!("--image-path={}", dest.display()))
            .arg("--compression=none");
        if leave_running {
            cmd.arg("--leave-running");
        }
        if direct {
            cmd.arg("--direct");
        }
        cmd.arg(id.as_str());
        self.output("runsc checkpoint", id, cmd).await.map(drop)
    }

    /// `runsc pause <id>`: every task of the sandbox stops where it is.
    pub async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["pause", id.as_str()]);
        self.output("runsc pause", id, cmd).await.map(drop)
    }

    /// `runsc resume <id>`: a paused sandbox goes on.
    pub async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["resume", id.as_str()]);
        self.output("runsc resume", id, cmd).await.map(drop)
    }

    /// `runsc kill <id> KILL`.
    pub async fn kill(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["kill", id.as_str(), "KILL"]);
        self.output("runsc kill", id, cmd).await.map(drop)
    }

    /// `runsc delete --force <id>`.
    pub async fn delete(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["delete", "--force", id.as_str()]);
        self.output("runsc delete", id, cmd).await.map(drop)
    }

    /// runsc's status of container `id` (`created`, `running`, `paused`,
    /// `stopped`), or `None` when runsc does not know it. `runsc state`
    /// asks only that container's sandbox, where `runsc list` asks every
    /// one and waits for ever on one frozen by the cgroup freezer.
    pub async fn status(&self, id: &SandboxId) -> Result<Option<String>, RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["state", id.as_str()]);
        let out = match self.output("runsc state", id, cmd).await {
            Ok(out) => out,
            Err(RuntimeError::Command { detail, .. }) => {
                tracing::debug!(sandbox = %id, detail, "runsc state: taken as unknown");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let state: StateEntry =
            serde_json::from_slice(&out.stdout).map_err(|e| RuntimeError::Command {
                op: format!("runsc state {id}"),
                detail: format!("unexpected output ({e})"),
            })?;
        Ok(Some(state.status))
    }

    async fn output(
        &self,
        op: &str,
        id: &SandboxId,
        mut cmd: Command,
    ) -> Result<Output, RuntimeError> {
        let op = format!("{op} {id}");
        let out = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| RuntimeError::Io {
                op: format!("starting {op} ({})", self.binary.display()),
                source: e,
            })?;
        if out.status.success() {
            return Ok(out);
        }
        Err(RuntimeError::Command {
            op,
            detail: format!(
                "exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_is_listed_only_by_its_whole_name() {
        let flags = "  -allow-packet-socket-write\n    \tallows writes.\n  -allow-suid\n    \tallows ID elevation.\n  -debug\n";
        assert!(lists_flag(flags, "allow-suid"));
        assert!(lists_flag(flags, "debug"));
        assert!(!lists_flag(flags, "allow-packet-socket"));
        assert!(!lists_flag("  -allow-suid-later value\n", "allow-suid"));
        assert!(lists_flag("  -allow-suid value\n", "allow-suid"));
        assert!(!lists_flag("", "allow-suid"));
    }

    /// The installed runsc answers `flags` with its list: a flag every
    /// version has is found, so a missing `allow-suid` means missing.
    #[test]
    fn root_the_installed_runsc_lists_its_flags() {
        let binary = super::super::config::resolve_binary(Path::new("runsc")).expect("runsc");
        assert!(supports_flag(&binary, "net-disconnect-ok"));
        assert!(!supports_flag(&binary, "no-such-flag-anywhere"));
    }
}
