//! Running processes and the fan-out of their events.
//!
//! Each process has one pump task that reads its output (two pipes, or a
//! PTY master), forwards `data` events to every subscriber in order and,
//! once the reaper reports the exit and the output is drained (or a short
//! grace period passed, for background children holding the pipes), sends
//! `end` and moves the process to the table's ended ones, kept
//! [`ENDED_KEPT`] for a re-attach. A subscriber is a bounded channel: a
//! slow client slows the process down instead of growing memory; a client
//! that went away is dropped. Subscribers joining later (`Connect`) get
//! output from that moment on, or, asking for a replay, the kept output
//! they missed first ([`fanout`]).

pub mod fanout;
pub mod service;
pub mod spawn;
pub mod vfork;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};
use warren_envd::process::{
    DataEvent, EndEvent, ProcessConfig, ProcessEvent, ProcessInfo, ProcessSelector,
};
use warren_envd::{Code, ConnectError};

use crate::reaper::Exit;

const READ_CHUNK: usize = 32 * 1024;
/// How long output is still forwarded after the process exited.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How long an ended process's kept output and end stay for a re-attach.
pub const ENDED_KEPT: Duration = Duration::from_secs(60);

/// A PTY master, non-blocking.
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
    write_lock: tokio::sync::Mutex<()>,
}

impl PtyMaster {
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        spawn::set_nonblocking(&fd).map_err(std::io::Error::from)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until
        // dropped, so the descriptor stays open and unchanged meanwhile.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
        Ok(Self {
            fd,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from))
            {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        let _lock = self.write_lock.lock().await;
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    pub fn raw(&self) -> &OwnedFd {
        self.fd.get_ref()
    }
}

/// Where a process's input goes.
pub enum Input {
    None,
    Stdin(tokio::sync::Mutex<Option<pipe::Sender>>),
    Pty(Arc<PtyMaster>),
}

/// One running process.
pub struct Proc {
    pub pid: u32,
    pub config: ProcessConfig,
    pub tag: Option<String>,
    pub input: Input,
    fanout: Mutex<fanout::Fanout>,
}

impl Proc {
    fn fanout(&self) -> std::sync::MutexGuard<'_, fanout::Fanout> {
        self.fanout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscriber: events from now on, or with `replay_from` the
    /// kept ones from that data event on first (see [`fanout`]).
    pub fn subscribe(&self, replay_from: Option<u64>) -> fanout::Subscription {
        self.fanout().subscribe(replay_from)
    }

    async fn broadcast(&self, event: ProcessEvent) {
        let subs = self.fanout().publish(&event);
        let mut gone = Vec::new();
        for tx in &subs {
            if tx.send(event.clone()).await.is_err() {
                gone.push(tx.clone());
            }
        }
        if !gone.is_empty() {
            self.fanout().forget(&gone);
        }
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo {
            config: Some(self.config.clone()),
            pid: self.pid,
            tag: self.tag.clone(),
        }
    }

    /// Sends `sig` to the process's group (its session).
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> Result<(), ConnectError> {
        let pgid = nix::unistd::Pid::from_raw(i32::try_from(self.pid).unwrap_or(i32::MAX));
        match nix::sys::signal::killpg(pgid, sig) {
            Ok(()) => Ok(()),
            // The leader may be gone while the group still exists, or both.
            Err(nix::errno::Errno::ESRCH) => nix::sys::signal::kill(pgid, sig).map_err(|_| {
                ConnectError::not_found(format!("process {} already exited", self.pid))
            }),
            Err(e) => Err(ConnectError::internal(format!(
                "signalling process {}: {e}",
                self.pid
            ))),
        }
    }
}

/// The output side handed to the pump.
pub enum Output {
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    Pty(Arc<PtyMaster>),
}

/// All processes the agent started that have not ended yet, and those
/// that ended within [`ENDED_KEPT`] (for a re-attach's replay only).
#[derive(Default)]
pub struct ProcessTable {
    procs: Mutex<HashMap<u32, Arc<Proc>>>,
    ended: Mutex<HashMap<u32, (Arc<Proc>, Instant)>>,
}

impl ProcessTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<Proc>>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, proc: Arc<Proc>) {
        self.lock().insert(proc.pid, proc);
    }

    pub fn tag_in_use(&self, tag: &str) -> bool {
        self.lock().values().any(|p| p.tag.as_deref() == Some(tag))
    }

    pub fn find(&self, selector: Option<&ProcessSelector>) -> Result<Arc<Proc>, ConnectError> {
        let procs = self.lock();
        let found = match selector {
            Some(ProcessSelector::Pid(pid)) => procs.get(pid).cloned(),
            Some(ProcessSelector::Tag(tag)) => procs
                .values()
                .find(|p| p.tag.as_deref() == Some(tag))
                .cloned(),
            None => {
                return Err(ConnectError::invalid_argument(
                    "a process selector (pid or tag) is required",
                ));
            }
        };
        found.ok_or_else(|| match selector {
            Some(ProcessSelector::Pid(pid)) => {
                ConnectError::not_found(format!("process with pid {pid} not found"))
            }
            Some(ProcessSelector::Tag(tag)) => {
                ConnectError::not_found(format!("process with tag {tag:?} not found"))
            }
            None => ConnectError::new(Code::InvalidArgument, "no selector"),
        })
    }

    pub fn list(&self) -> Vec<ProcessInfo> {
        let mut list: Vec<_> = self.lock().values().map(|p| p.info()).collect();
        list.sort_by_key(|p| p.pid);
        list
    }

    pub fn all(&self) -> Vec<Arc<Proc>> {
        self.lock().values().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A live process by pid, or one that ended within [`ENDED_KEPT`].
    pub fn find_for_replay(&self, pid: u32) -> Result<Arc<Proc>, ConnectError> {
        if let Some(live) = self.lock().get(&pid).cloned() {
            return Ok(live);
        }
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended
            .get(&pid)
            .map(|(proc, _)| proc.clone())
            .ok_or_else(|| ConnectError::not_found(format!("process with pid {pid} not found")))
    }

    fn remove(&self, pid: u32) {
        let Some(proc) = self.lock().remove(&pid) else {
            return;
        };
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        ended.retain(|_, (_, at)| now.duration_since(*at) < ENDED_KEPT);
        ended.insert(pid, (proc, now));
    }
}

impl Proc {
    pub fn new(pid: u32, config: ProcessConfig, tag: Option<String>, input: Input) -> Self {
        Self {
            pid,
            config,
            tag,
            input,
            fanout: Mutex::new(fanout::Fanout::default()),
        }
    }
}

fn end_event(exit: Option<Exit>) -> EndEvent {
    match exit {
        Some(Exit::Code(code)) => EndEvent {
            exit_code: code,
            exited: true,
            status: format!("exit status {code}"),
            error: None,
        },
        Some(Exit::Signal(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| match s {
                    nix::sys::signal::Signal::SIGKILL => "killed".to_string(),
                    nix::sys::signal::Signal::SIGTERM => "terminated".to_string(),
                    nix::sys::signal::Signal::SIGINT => "interrupt".to_string(),
                    other => other.as_str().to_lowercase(),
                })
                .unwrap_or_else(|_| sig.to_string());
            EndEvent {
                exit_code: -1,
                exited: false,
                status: format!("signal: {name}"),
                error: None,
            }
        }
        None => EndEvent {
            exit_code: -1,
            exited: false,
            status: "unknown".into(),
            error: Some("the exit status was lost".into()),
        },
    }
}

async fn read_pipe(fd: OwnedFd, wrap: fn(Vec<u8>) -> DataEvent, tx: mpsc::Sender<DataEvent>) {
    let Ok(mut rx) = pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match rx.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(wrap(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn read_pty(master: Arc<PtyMaster>, tx: mpsc::Sender<DataEvent>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match master.read(&mut buf).await {
            // EIO: every slave handle is closed.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(DataEvent::Pty(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards a process's output and end to its subscribers, then unregisters it.
/// A process still running at `deadline` (the `Start` call's Connect
/// timeout, measured from now) is killed, its group with it, as envd ends a
/// command whose deadline passed; it then ends as killed.
pub async fn pump(
    table: Arc<crate::state::AppState>,
    proc: Arc<Proc>,
    output: Output,
    exit: oneshot::Receiver<Exit>,
    deadline: Option<Duration>,
) {
    let (tx, mut data) = mpsc::channel::<DataEvent>(16);
    let mut readers = Vec::new();
    match output {
        Output::Pipes { stdout, stderr } => {
            readers.push(tokio::spawn(read_pipe(
                stdout,
                DataEvent::Stdout,
                tx.clone(),
            )));
            readers.push(tokio::spawn(read_pipe(stderr, DataEvent::Stderr, tx)));
        }
        Output::Pty(master) => readers.push(tokio::spawn(read_pty(master, tx))),
    }
    let mut exit = exit;
    let mut status: Option<Option<Exit>> = None;
    let mut readers_done = false;
    let grace = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(grace);
    let overdue = tokio::time::sleep(deadline.unwrap_or(Duration::ZERO));
    tokio::pin!(overdue);
    let mut killed = deadline.is_none();
    loop {
        if readers_done && status.is_some() {
            break;
        }
        tokio::select! {
            chunk = data.recv(), if !readers_done => match chunk {
                Some(chunk) => {
                    if proc.tag.as_deref() == Some(crate::logs::START_COMMAND_TAG) {
                        let (stream, bytes) = match &chunk {
                            DataEvent::Stdout(b) => ("stdout", b),
                            DataEvent::Stderr(b) => ("stderr", b),
                            DataEvent::Pty(b) => ("pty", b),
                        };
                        table.logs.append(stream, bytes);
                    }
                    proc.broadcast(ProcessEvent::Data(chunk)).await
                }
                None => readers_done = true,
            },
            result = &mut exit, if status.is_none() => {
                status = Some(result.ok());
                grace.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
            },
            _ = &mut grace, if status.is_some() => break,
            // Only until the exit is known, as for `SendSignal`.
            _ = &mut overdue, if !killed && status.is_none() => {
                killed = true;
                let _ = proc.signal(nix::sys::signal::Signal::SIGKILL);
            },
        }
    }
    for reader in readers {
        reader.abort();
    }
    if let Input::Stdin(stdin) = &proc.input {
        stdin.lock().await.take();
    }
    table.procs.remove(proc.pid);
    proc.broadcast(ProcessEvent::End(end_event(status.flatten())))
        .await;
    proc.fanout().close();
}

/// Writes to a process's stdin pipe.
pub async fn write_stdin(
    stdin: &tokio::sync::Mutex<Option<pipe::Sender>>,
    data: &[u8],
) -> Result<(), ConnectError> {
    let mut guard = stdin.lock().await;
    let Some(sender) = guard.as_mut() else {
        return Err(ConnectError::new(
            Code::FailedPrecondition,
            "stdin of this process is closed",
        ));
    };
    sender.write_all(data).await.map_err(|e| {
        ConnectError::new(
            Code::FailedPrecondition,
            format!("writing to stdin failed: {e}"),
        )
    })
}
