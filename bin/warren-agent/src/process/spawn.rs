//! Building and spawning a process: environment, user switch, session, PTY.
//!
//! Every process gets its own session (and so its own process group, pgid ==
//! pid) so signals reach the whole tree. The identity switch (supplementary
//! groups, gid, uid) happens in the child before `exec`; the environment is
//! built from scratch: PATH, HOME, USER, LOGNAME, SHELL, then `/init` vars,
//! then the request's vars.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{Winsize, openpty};
use warren_envd::process::PtySize;

use crate::users::User;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("executable {0:?} not found in PATH")]
    NotFound(String),
    #[error("working directory {0} does not exist or is not a directory")]
    BadCwd(PathBuf),
    #[error("the agent does not run as root and cannot switch to user {0:?}")]
    CannotSwitchUser(String),
    #[error("opening a pseudo-terminal failed: {0}")]
    Pty(#[source] nix::Error),
    #[error("spawning {cmd:?} failed: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
}

/// Everything needed to spawn.
pub struct SpawnSpec<'a> {
    pub cmd: &'a str,
    pub args: &'a [String],
    pub envs: &'a BTreeMap<String, String>,
    pub init_env: &'a BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub user: &'a User,
    pub pty: Option<PtySize>,
    pub stdin: bool,
}

/// The parent's ends of a spawned process's stdio.
pub enum Stdio3 {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Pty {
        master: OwnedFd,
    },
}

/// Builds the environment.
pub fn environment(spec: &SpawnSpec<'_>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), DEFAULT_PATH.to_string());
    env.insert("HOME".to_string(), spec.user.home.display().to_string());
    env.insert("USER".to_string(), spec.user.name.clone());
    env.insert("LOGNAME".to_string(), spec.user.name.clone());
    if !spec.user.shell.is_empty() {
        env.insert("SHELL".to_string(), spec.user.shell.clone());
    }
    if spec.pty.is_some() {
        env.insert("TERM".to_string(), "xterm-256color".to_string());
    }
    env.extend(spec.init_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(spec.envs.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves `cmd` like `execvp` would, relative paths against `cwd`.
pub fn resolve_program(cmd: &str, path_var: &str, cwd: &Path) -> Result<PathBuf, SpawnError> {
    if cmd.is_empty() {
        return Err(SpawnError::NotFound(String::new()));
    }
    if cmd.contains('/') {
        let path = cwd.join(cmd);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(SpawnError::NotFound(cmd.to_string()))
        };
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cwd.join(d).join(cmd))
        .find(|p| is_executable(p))
        .ok_or_else(|| SpawnError::NotFound(cmd.to_string()))
}

fn set_cloexec(fd: &OwnedFd) -> nix::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

/// Marks `fd` non-blocking (for tokio).
pub fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

fn winsize(size: PtySize) -> Winsize {
    Winsize {
        ws_row: u16::try_from(size.rows).unwrap_or(u16::MAX).max(1),
        ws_col: u16::try_from(size.cols).unwrap_or(u16::MAX).max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Resizes the terminal behind a PTY master.
pub fn resize(master: &OwnedFd, size: PtySize) -> std::io::Result<()> {
    let ws = winsize(size);
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const Winsize) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Builds the command and spawns it through `spawn` (the reaper's gate).
pub fn spawn<R>(
    spec: &SpawnSpec<'_>,
    spawn: impl FnOnce(&mut Command) -> std::io::Result<(Child, R)>,
) -> Result<(Child, R, Stdio3), SpawnError> {
    if !spec.cwd.is_dir() {
        return Err(SpawnError::BadCwd(spec.cwd.clone()));
    }
    let env = environment(spec);
    let path_var = env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
    let program = resolve_program(spec.cmd, path_var, &spec.cwd)?;

    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let switch = spec.user.uid != euid || euid == 0;
    if spec.user.uid != euid && euid != 0 {
        return Err(SpawnError::CannotSwitchUser(spec.user.name.clone()));
    }

    let mut cmd = Command::new(&program);
    cmd.arg0(spec.cmd)
        .args(spec.args)
        .env_clear()
        .envs(&env)
        .current_dir(&spec.cwd);

    let mut pty_master = None;
    if let Some(size) = spec.pty {
        let pair = openpty(Some(&winsize(size)), None).map_err(SpawnError::Pty)?;
        set_cloexec(&pair.master).map_err(SpawnError::Pty)?;
        set_cloexec(&pair.slave).map_err(SpawnError::Pty)?;
        let clone = |fd: &OwnedFd| {
            fd.try_clone().map_err(|e| SpawnError::Spawn {
                cmd: spec.cmd.into(),
                source: e,
            })
        };
        cmd.stdin(Stdio::from(clone(&pair.slave)?))
            .stdout(Stdio::from(clone(&pair.slave)?))
            .stderr(Stdio::from(pair.slave));
        pty_master = Some(pair.master);
    } else {
        cmd.stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    }

    let is_pty = pty_master.is_some();
    let (uid, gid) = (spec.user.uid, spec.user.gid);
    let groups: Vec<libc::gid_t> = spec.user.groups.clone();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls on memory allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if is_pty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if switch
                && (libc::setgroups(groups.len(), groups.as_ptr()) < 0
                    || libc::setgid(gid) < 0
                    || libc::setuid(uid) < 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    let (mut child, extra) = spawn(&mut cmd).map_err(|source| SpawnError::Spawn {
        cmd: spec.cmd.into(),
        source,
    })?;
    let stdio = match pty_master {
        Some(master) => Stdio3::Pty { master },
        None => {
            let stdin = child.stdin.take().map(OwnedFd::from);
            let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
                return Err(SpawnError::Spawn {
                    cmd: spec.cmd.into(),
                    source: std::io::Error::other("stdio pipes missing"),
                });
            };
            Stdio3::Pipes {
                stdin,
                stdout: stdout.into(),
                stderr: stderr.into(),
            }
        }
    };
    Ok((child, extra, stdio))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs_like_execvp() {
        let cwd = Path::new("/");
        assert_eq!(
            resolve_program("sh", DEFAULT_PATH, cwd)
                .unwrap()
                .file_name()
                .unwrap(),
            "sh"
        );
        assert!(matches!(
            resolve_program("no-such-program-x", DEFAULT_PATH, cwd),
            Err(SpawnError::NotFound(_))
        ));
        assert!(resolve_program("/bin/sh", "", cwd).is_ok());
        assert!(matches!(
            resolve_program("", DEFAULT_PATH, cwd),
            Err(SpawnError::NotFound(_))
        ));
    }
}
