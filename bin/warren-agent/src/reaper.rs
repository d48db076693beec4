//! Child reaping for PID 1.
//!
//! A SIGCHLD-driven task calls `waitpid(-1, WNOHANG)` until nothing is left,
//! so every zombie is reaped, including orphans re-parented to the agent.
//! Exit statuses of children the agent spawned are routed to the waiter
//! registered at spawn time. Invariants:
//! - nothing else waits for children (no `Child::wait`, no `tokio::process`);
//! - spawns hold the gate for reading and the reaper holds it for writing, so
//!   the reaper never steals the status the spawner collects itself when
//!   `exec` fails (see `process::vfork`), and a waiter is always registered
//!   before the reaper can look its pid up.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::sync::oneshot;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Default)]
pub struct Reaper {
    gate: RwLock<()>,
    waiters: Mutex<HashMap<i32, oneshot::Sender<Exit>>>,
}

impl Reaper {
    /// Runs `start` (which spawns a child and returns its pid) under the
    /// gate and registers for the child's exit status.
    pub fn spawn<E>(
        &self,
        start: impl FnOnce() -> Result<Pid, E>,
    ) -> Result<(Pid, oneshot::Receiver<Exit>), E> {
        let _gate = self.gate.read().unwrap_or_else(|e| e.into_inner());
        let pid = start()?;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid.as_raw(), tx);
        Ok((pid, rx))
    }

    /// Reaps every exited child.
    pub fn reap(&self) {
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        loop {
            let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    return;
                }
            };
            let waiter = self
                .waiters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid.as_raw());
            match waiter {
                Some(tx) => {
                    let _ = tx.send(exit);
                }
                None => tracing::debug!(pid = pid.as_raw(), ?exit, "reaped an orphan"),
            }
        }
    }

    /// Reaps on every SIGCHLD, forever.
    pub async fn run(self: std::sync::Arc<Self>) -> std::io::Result<()> {
        let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
        loop {
            self.reap();
            if sigchld.recv().await.is_none() {
                return Ok(());
            }
        }
    }
}
