//! Building and spawning a process: environment, user switch, session, PTY.
//!
//! Every process gets its own session (and so its own process group, pgid ==
//! pid) so signals reach the whole tree. The identity switch (supplementary
//! groups, gid, uid) happens in the child before `exec`; the environment is
//! built from scratch: PATH, HOME, USER, LOGNAME, SHELL, then `/init` vars,
//! then the request's vars. The child itself is started by `super::vfork`.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{Winsize, openpty};
use nix::unistd::{Pid, pipe2};
use warren_envd::process::PtySize;

use super::vfork::{Command, Identity, VforkError};
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
    #[error("the {0} contains a NUL byte")]
    NulByte(&'static str),
    #[error("spawning {cmd:?} failed: {step}: {source}")]
    Spawn {
        cmd: String,
        step: &'static str,
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

/// The stdio of a process about to start: the child's ends, then the parent's.
fn stdio(spec: &SpawnSpec<'_>) -> Result<([OwnedFd; 3], Stdio3), SpawnError> {
    let failed = |step: &'static str| {
        move |e: nix::Error| SpawnError::Spawn {
            cmd: spec.cmd.into(),
            step,
            source: e.into(),
        }
    };
    if let Some(size) = spec.pty {
        let pair = openpty(Some(&winsize(size)), None).map_err(SpawnError::Pty)?;
        set_cloexec(&pair.master).map_err(SpawnError::Pty)?;
        set_cloexec(&pair.slave).map_err(SpawnError::Pty)?;
        let dup = |fd: &OwnedFd| {
            fd.try_clone().map_err(|source| SpawnError::Spawn {
                cmd: spec.cmd.into(),
                step: "duplicating the terminal",
                source,
            })
        };
        let child = [dup(&pair.slave)?, dup(&pair.slave)?, pair.slave];
        return Ok((
            child,
            Stdio3::Pty {
                master: pair.master,
            },
        ));
    }
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(failed("creating pipes"));
    let (stdin_child, stdin) = if spec.stdin {
        let (read, write) = pipe()?;
        (read, Some(write))
    } else {
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(failed("opening /dev/null"))?;
        (null, None)
    };
    let (stdout, stdout_child) = pipe()?;
    let (stderr, stderr_child) = pipe()?;
    Ok((
        [stdin_child, stdout_child, stderr_child],
        Stdio3::Pipes {
            stdin,
            stdout,
            stderr,
        },
    ))
}

/// Prepares the process and starts it through `start`, which runs the given
/// spawn under the reaper's gate. Returns the pid (== session and process
/// group id), what `start` added, and the parent's ends of stdio.
pub fn spawn<R>(
    spec: &SpawnSpec<'_>,
    start: impl FnOnce(&dyn Fn() -> Result<Pid, VforkError>) -> Result<(Pid, R), VforkError>,
) -> Result<(u32, R, Stdio3), SpawnError> {
    if !spec.cwd.is_dir() {
        return Err(SpawnError::BadCwd(spec.cwd.clone()));
    }
    let env = environment(spec);
    let path_var = env.get("PATH").map(String::as_str).unwrap_or(DEFAULT_PATH);
    let program = resolve_program(spec.cmd, path_var, &spec.cwd)?;

    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if spec.user.uid != euid && euid != 0 {
        return Err(SpawnError::CannotSwitchUser(spec.user.name.clone()));
    }
    // As root, always set the groups: the agent's own must not leak.
    let identity = (spec.user.uid != euid || euid == 0).then(|| Identity {
        uid: spec.user.uid,
        gid: spec.user.gid,
        groups: spec.user.groups.clone(),
    });

    let (child_stdio, parent_stdio) = stdio(spec)?;
    let argv: Vec<&str> = std::iter::once(spec.cmd)
        .chain(spec.args.iter().map(String::as_str))
        .collect();
    let launch_error = |source| SpawnError::from_vfork(spec.cmd, source);
    let cmd = Command::new(&program, &argv, &env, &spec.cwd, child_stdio)
        .map_err(launch_error)?
        .controlling_tty(spec.pty.is_some())
        .identity(identity);
    let (pid, extra) = start(&|| cmd.spawn()).map_err(launch_error)?;
    // Dropping `cmd` closes the parent's copies of the child's stdio.
    drop(cmd);
    let pid = u32::try_from(pid.as_raw()).unwrap_or_default();
    Ok((pid, extra, parent_stdio))
}

impl SpawnError {
    fn from_vfork(cmd: &str, e: VforkError) -> Self {
        match e {
            VforkError::NulByte(what) => Self::NulByte(what),
            VforkError::Step { step, source } => Self::Spawn {
                cmd: cmd.into(),
                step,
                source,
            },
        }
    }
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
