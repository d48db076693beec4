//! The agent's side of `sudo` (protocol in the module above): one task per
//! connection, at most [`MAX_RELAYED`] at once. A request must arrive
//! within [`REQUEST_TIMEOUT`], carry exactly three descriptors and fit in
//! [`MAX_REQUEST`] bytes; forwarded lines longer than [`MAX_FORWARD`] end
//! the connection (and the command).

use std::collections::BTreeMap;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, oneshot};

use super::command::{Prepared, prepare};
use super::policy::{self, Caller};
use super::{Forward, MAX_REQUEST, Mode, Reply, Request, SOCKET};
use crate::process::spawn::SpawnError;
use crate::process::vfork::{Command, Identity, VforkError};
use crate::reaper::Exit;
use crate::state::Shared;
use crate::users::User;

/// Relayed commands that may run at once.
const MAX_RELAYED: usize = 64;
/// How long a client has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest forwarded line.
const MAX_FORWARD: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the request is not valid: {0}")]
    BadRequest(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Spawn(#[from] SpawnError),
}

/// Serves the relay at `<root>/run/warren-sudo.sock` for as long as the
/// agent runs.
pub async fn serve(state: Shared) -> std::io::Result<()> {
    let path = state.root.join(SOCKET);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    setsockopt(&listener, sockopt::PassCred, &true).map_err(std::io::Error::from)?;
    // Anyone may ask; the relay decides by the caller's uid.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    let slots = Arc::new(Semaphore::new(MAX_RELAYED));
    loop {
        // A failed accept (no descriptor left, say) is waited out: the
        // relay must outlive whatever exhausted the sandbox for a moment.
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "the sudo relay could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = setsockopt(&stream, sockopt::PassCred, &true) {
            tracing::debug!(error = %e, "a sudo connection without credentials passing");
            continue;
        }
        let state = state.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            let reply = match slots.try_acquire() {
                Ok(_slot) => match relay(&state, &mut stream).await {
                    Ok(Some(reply)) => reply,
                    Ok(None) => return,
                    Err(e) => Reply::Error(e.to_string()),
                },
                Err(_) => Reply::Error(format!(
                    "{MAX_RELAYED} sudo commands are already running here; wait for one to end"
                )),
            };
            let mut line = serde_json::to_vec(&reply).unwrap_or_default();
            line.push(b'\n');
            let _ = stream.write_all(&line).await;
        });
    }
}

/// Runs one request; `None` when the client went away before the end.
async fn relay(state: &Shared, stream: &mut UnixStream) -> Result<Option<Reply>, RelayError> {
    let (uid, stdio, request) = tokio::time::timeout(REQUEST_TIMEOUT, receive(stream))
        .await
        .map_err(|_| RelayError::BadRequest("it did not arrive in time".into()))??;
    let caller = identify(state, uid)?;
    let rule = if uid == 0 {
        "(ALL : ALL) ALL".to_owned()
    } else {
        let names = state.users.names();
        let groups: Vec<String> = caller.groups.iter().map(|g| names.group(*g)).collect();
        let who = Caller {
            name: &caller.name,
            groups: &groups,
        };
        match policy::decide(state.users.etc(), &who) {
            Some((true, rule)) => rule,
            _ => {
                return Err(RelayError::Refused(format!(
                    "{0} may not run commands as another user here: no sudoers rule gives {0} `ALL=(ALL) NOPASSWD: ALL`",
                    caller.name
                )));
            }
        }
    };
    match request.asked.mode {
        Mode::List => {
            return Ok(Some(Reply::Print(format!(
                "User {} may run the following commands in this sandbox:\n    {rule}\n",
                caller.name
            ))));
        }
        Mode::Validate => return Ok(Some(Reply::Exit(0))),
        Mode::Run | Mode::Shell | Mode::Login => {}
    }
    let target_name = request.asked.user.as_deref().unwrap_or("root");
    let target = state
        .users
        .lookup(target_name)
        .map_err(|_| RelayError::Refused(format!("unknown user {target_name}")))?;
    let prepared = prepare(&request, &caller, &target).map_err(|e| match e {
        SpawnError::NotFound(program) => {
            RelayError::Refused(format!("{program}: command not found"))
        }
        other => RelayError::Spawn(other),
    })?;
    if !prepared.cwd.is_dir() {
        return Err(RelayError::Refused(format!(
            "the working directory {} does not exist",
            prepared.cwd.display()
        )));
    }
    let (pid, exit) = spawn(state, prepared, &target, stdio)
        .map_err(|e| RelayError::Refused(format!("{}: {e}", request.asked.command.join(" "))))?;
    Ok(supervise(stream, pid, exit).await)
}

/// Starts `prepared` as `target` with the client's descriptors; the
/// agent's copies of them are closed when it returns.
fn spawn(
    state: &Shared,
    prepared: Prepared,
    target: &User,
    stdio: [OwnedFd; 3],
) -> Result<(Pid, oneshot::Receiver<Exit>), VforkError> {
    let env: BTreeMap<String, String> = prepared.env.into_iter().collect();
    let argv: Vec<&str> = prepared.argv.iter().map(String::as_str).collect();
    let command = Command::new(&prepared.program, &argv, &env, &prepared.cwd, stdio)?.identity(
        Some(Identity {
            uid: target.uid,
            gid: target.gid,
            groups: target.groups.clone(),
        }),
    );
    state.reaper.spawn(|| command.spawn())
}

/// The account of `uid`.
fn identify(state: &Shared, uid: u32) -> Result<User, RelayError> {
    let name = state.users.names().user(uid);
    state
        .users
        .lookup(&name)
        .map_err(|_| RelayError::Refused(format!("uid {uid} has no account in /etc/passwd")))
}

/// Reads the request line, the three descriptors sent with it and the uid
/// its first bytes were sent under.
async fn receive(stream: &UnixStream) -> Result<(u32, [OwnedFd; 3], Request), RelayError> {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    let mut uid = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        stream.readable().await?;
        let n = match stream.try_io(Interest::READABLE, || {
            receive_some(stream.as_raw_fd(), &mut buf, &mut fds)
        }) {
            Ok((n, sender)) => {
                if data.is_empty() && n > 0 {
                    uid = sender;
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        };
        if fds.len() > 3 {
            return Err(RelayError::BadRequest(
                "more than 3 descriptors came with it".into(),
            ));
        }
        if n == 0 {
            return Err(RelayError::BadRequest(
                "the connection closed before it ended".into(),
            ));
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.iter().position(|&b| b == b'\n') {
            data.truncate(end);
            break;
        }
        if data.len() > MAX_REQUEST {
            return Err(RelayError::BadRequest(format!(
                "it is longer than {MAX_REQUEST} bytes"
            )));
        }
    }
    let uid = uid
        .ok_or_else(|| RelayError::BadRequest("it came without the sender's credentials".into()))?;
    let request: Request =
        serde_json::from_slice(&data).map_err(|e| RelayError::BadRequest(e.to_string()))?;
    let stdio: [OwnedFd; 3] = fds.try_into().map_err(|v: Vec<OwnedFd>| {
        RelayError::BadRequest(format!("{} descriptors came with it, not 3", v.len()))
    })?;
    Ok((uid, stdio, request))
}

/// One `recvmsg`: its bytes into `buf`, its descriptors onto `fds`; the
/// byte count and the sender's uid, as the kernel vouches for it.
fn receive_some(
    fd: RawFd,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> std::io::Result<(usize, Option<u32>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 3], libc::ucred);
    let mut uid = None;
    let msg = recvmsg::<()>(
        fd,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    for cmsg in msg.cmsgs().map_err(std::io::Error::from)? {
        match cmsg {
            // SAFETY: the kernel just installed these descriptors in this
            // process for this message; nothing else owns them.
            ControlMessageOwned::ScmRights(received) => fds.extend(
                received
                    .into_iter()
                    .map(|r| unsafe { OwnedFd::from_raw_fd(r) }),
            ),
            ControlMessageOwned::ScmCredentials(creds) => uid = Some(creds.uid()),
            _ => {}
        }
    }
    Ok((msg.bytes, uid))
}

/// Forwards the client's signals to the command's process group until the
/// command ends (its reply) or the client goes (SIGKILL to the group).
async fn supervise(
    stream: &mut UnixStream,
    pid: Pid,
    mut exit: oneshot::Receiver<Exit>,
) -> Option<Reply> {
    let mut pending = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            ended = &mut exit => {
                return Some(match ended {
                    Ok(Exit::Code(code)) => Reply::Exit(code),
                    Ok(Exit::Signal(sig)) => Reply::Signal(sig),
                    Err(_) => Reply::Error("the command's end was lost".into()),
                });
            }
            read = stream.read(&mut buf) => {
                let n = match read {
                    Ok(n) if n > 0 => n,
                    _ => {
                        let _ = killpg(pid, Signal::SIGKILL);
                        let _ = exit.await;
                        return None;
                    }
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(Forward::Signal(sig)) = serde_json::from_slice(&line)
                        && let Ok(sig) = Signal::try_from(sig)
                    {
                        let _ = killpg(pid, sig);
                    }
                }
                if pending.len() > MAX_FORWARD {
                    let _ = killpg(pid, Signal::SIGKILL);
                    let _ = exit.await;
                    return None;
                }
            }
        }
    }
}
