//! Template start commands (`warren_template::Recipe::start`): a freshly
//! booted sandbox of such a template runs the command, started through the
//! agent right after it is initialised, and counts as started once the
//! command's port accepts connections and its ready command (E2B's ready
//! check: a shell command run every [`POLL`] until it exits 0) succeeds. The command is detached from the
//! daemon (the agent keeps it running with no client attached), so a
//! snapshot holds it and a restored sandbox (resume, fork, create from a
//! snapshot) never starts it again, except after a pause that kept only
//! the filesystem (`service::fs_pause`), whose resume boots the sandbox
//! again. It is recorded in the audit log like
//! any exec, with the system actor `template-start`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use warren_audit::Outcome;
use warren_core::{PauseMode, WarrenError};
use warren_envd::process::{ProcessConfig, ProcessEvent, StartRequest};
use warren_runtime::Instance;
use warren_store::SandboxRecord;
use warren_template::StartCommand;

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// How long a start command gets to open its port.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a restored sandbox's start command gets to accept on its port
/// again.
const RESTORED_PORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Between two connection attempts or ready checks.
const POLL: Duration = Duration::from_millis(50);

impl Sandboxes {
    /// Starts `start` in the sandbox `rec`, whose agent listens on
    /// `agent_ip`, and waits until its port answers.
    pub(super) async fn run_start_command(
        &self,
        rec: &SandboxRecord,
        agent_ip: IpAddr,
        start: &StartCommand,
    ) -> Result<(), WarrenError> {
        let client = self.agents.client(&rec.id, Some(&start.user)).await?;
        let mut argv = start.cmd.iter().cloned();
        let req = StartRequest {
            process: Some(ProcessConfig {
                cmd: argv.next().unwrap_or_default(),
                args: argv.collect(),
                envs: Default::default(),
                cwd: Some(start.cwd.clone()),
            }),
            pty: None,
            tag: Some(warren_envd::http_api::START_COMMAND_TAG.to_owned()),
            stdin: Some(false),
        };
        let mut events = client.start(&req, None).await.map_err(crate::agent_error)?;
        let pid = match events.next().await {
            Some(Ok(ProcessEvent::Start(s))) => s.pid,
            Some(Ok(other)) => {
                return Err(WarrenError::internal(format!(
                    "agent sent {other:?} before the start event of the template's start command"
                )));
            }
            Some(Err(e)) => return Err(crate::agent_error(e)),
            None => {
                return Err(WarrenError::unavailable(
                    "the sandbox agent closed the stream of the template's start command",
                ));
            }
        };
        // Let go of the stream: the process runs on without a client.
        drop(events);
        let event = Event::sandbox(Action::ProcessExec, &rec.id, Outcome::Ok)
            .with("argv", start.cmd.clone())
            .with("user", start.user.as_str())
            .with("cwd", start.cwd.as_str())
            .with("pid", pid)
            .with("via", "template-start");
        self.audit
            .record_done(&AuditActor::system("template-start"), event)
            .await;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        if let Some(port) = start.ready_port {
            let addr = SocketAddr::new(agent_ip, port);
            wait_port(addr, deadline).await.map_err(|()| {
                WarrenError::unavailable(format!(
                    "the template's start command ({}) did not open port {port} within {}s",
                    start.cmd.join(" "),
                    READY_TIMEOUT.as_secs()
                ))
            })?;
        }
        if let Some(check) = &start.ready_cmd {
            self.wait_ready_command(rec, start, check, deadline).await?;
        }
        Ok(())
    }

    /// After a restore (resume from an image, fork, create from a
    /// snapshot or a template snapshot), waits until the start command's
    /// port accepts again: gVisor brings restored listening sockets back a
    /// moment after the processes run, so the agent may answer while the
    /// server's port still refuses. At most [`RESTORED_PORT_TIMEOUT`]: a
    /// start command the user stopped only costs that wait. A sandbox
    /// paused with its filesystem alone has none to wait for.
    pub(super) async fn wait_restored_start_port(&self, rec: &SandboxRecord, instance: &Instance) {
        if rec.pause_mode == Some(PauseMode::Filesystem) {
            return;
        }
        let Some(port) = self
            .template_of(rec)
            .ok()
            .and_then(|t| t.start())
            .and_then(|s| s.ready_port)
        else {
            return;
        };
        let addr = SocketAddr::new(instance.agent_addr.ip(), port);
        let deadline = tokio::time::Instant::now() + RESTORED_PORT_TIMEOUT;
        if wait_port(addr, deadline).await.is_err() {
            tracing::warn!(sandbox = %rec.id, port, "the start command's port did not accept after the restore");
        }
    }

    /// Runs `check` until it exits 0 or `deadline` passes.
    async fn wait_ready_command(
        &self,
        rec: &SandboxRecord,
        start: &StartCommand,
        check: &str,
        deadline: tokio::time::Instant,
    ) -> Result<(), WarrenError> {
        let mut last = String::from("it never ran");
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let args = ["-c", check];
            let run = self.run_to_end(&rec.id, Some(&start.user), "/bin/sh", &args, &start.cwd);
            match tokio::time::timeout(remaining, run).await {
                Ok(Ok(end)) if end.exited && end.exit_code == 0 => return Ok(()),
                Ok(Ok(end)) => last = end.status,
                Ok(Err(e)) => last = e.message,
                Err(_) => {}
            }
            if tokio::time::Instant::now() + POLL >= deadline {
                return Err(WarrenError::unavailable(format!(
                    "the template's ready check ({check}) did not succeed within {}s (last: {last})",
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Sandboxes {
    /// Runs `cmd args` in the sandbox `id` as `user` (the agent's default
    /// when `None`) in `cwd`, through the agent alone (no audit entry: for
    /// the daemon's own checks), and waits for its end.
    pub(super) async fn run_to_end(
        &self,
        id: &warren_core::SandboxId,
        user: Option<&str>,
        cmd: &str,
        args: &[&str],
        cwd: &str,
    ) -> Result<warren_envd::process::EndEvent, WarrenError> {
        let client = self.agents.client(id, user).await?;
        let req = StartRequest {
            process: Some(ProcessConfig {
                cmd: cmd.to_owned(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                envs: Default::default(),
                cwd: Some(cwd.to_owned()),
            }),
            pty: None,
            tag: None,
            stdin: Some(false),
        };
        let mut events = client.start(&req, None).await.map_err(crate::agent_error)?;
        while let Some(event) = events.next().await {
            if let ProcessEvent::End(end) = event.map_err(crate::agent_error)? {
                return Ok(end);
            }
        }
        Err(WarrenError::unavailable(format!(
            "the stream of {cmd} ended without an exit"
        )))
    }
}

/// Waits until `addr` accepts a connection (closed again at once).
async fn wait_port(addr: SocketAddr, deadline: tokio::time::Instant) -> Result<(), ()> {
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
        if let Ok(Ok(stream)) = attempt.await {
            drop(stream);
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(());
        }
        tokio::time::sleep(POLL).await;
    }
}
