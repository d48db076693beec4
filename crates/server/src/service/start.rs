//! Template start commands (`warren_template::Recipe::start`): a freshly
//! booted sandbox of such a template runs the command, started through the
//! agent right after it is initialised, and counts as started once the
//! command's port accepts connections. The command is detached from the
//! daemon (the agent keeps it running with no client attached), so a
//! snapshot holds it and a restored sandbox (resume, fork, create from a
//! snapshot) never starts it again. It is recorded in the audit log like
//! any exec, with the system actor `template-start`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use warren_audit::Outcome;
use warren_core::WarrenError;
use warren_envd::process::{ProcessConfig, ProcessEvent, StartRequest};
use warren_runtime::Instance;
use warren_store::SandboxRecord;
use warren_template::StartCommand;

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// How long a start command gets to open its port.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two connection attempts.
const POLL: Duration = Duration::from_millis(50);

impl Sandboxes {
    /// Starts `start` in the sandbox `rec` and waits until its port answers.
    pub(super) async fn run_start_command(
        &self,
        rec: &SandboxRecord,
        instance: &Instance,
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
            tag: Some("template-start".to_owned()),
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
        let addr = SocketAddr::new(instance.agent_addr.ip(), start.ready_port);
        wait_port(addr).await.map_err(|()| {
            WarrenError::unavailable(format!(
                "the template's start command ({}) did not open port {} within {}s",
                start.cmd.join(" "),
                start.ready_port,
                READY_TIMEOUT.as_secs()
            ))
        })
    }
}

/// Waits until `addr` accepts a connection (closed again at once).
async fn wait_port(addr: SocketAddr) -> Result<(), ()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
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
