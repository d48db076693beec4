//! Running commands: the native `exec` maps onto the agent's
//! `process.Process/Start` stream, with argv spawned directly (no shell).
//!
//! Stream contract (what the API promises): exactly one `start` first, any
//! number of `stdout`/`stderr`, exactly one `exit` last — also when the agent
//! connection breaks (then `exit_code` -1 with an `error`). A program that
//! cannot be started yields only the `exit` (127 not found, 126 not
//! executable, with an `error`).
//!
//! A checkpoint (snapshot, fork) resets every connection to the sandbox
//! while the command runs on: the stream then follows the process by
//! re-attaching to it (`process.Process/Connect` with its pid) once the
//! checkpoint is over, asking the agent to replay the output events after
//! the last one received: none is lost or repeated while the agent still
//! keeps it (the newest 1 MiB of a process's output, and a process that
//! ended meanwhile for a minute). Output past that is reported in the
//! `exit`'s error, never silently dropped. A pause ends the stream with an
//! `exit` whose error says so; the command itself is paused with the
//! sandbox and continues at resume.
//!
//! Audit: every started exec is recorded as one `process.exec` entry when
//! its `exit` event is produced (argv, user, cwd, exit code, signal, error,
//! duration). The `exit` line is sent after the entry is committed, so a
//! client that saw the exit finds the command in the log.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use futures::{Stream, StreamExt};
use warren_api_types::{ExecEvent, ExecRequest};
use warren_audit::Outcome;
use warren_core::spec::validate_env;
use warren_core::{SandboxId, WarrenError};
use warren_envd::process::{
    DataEvent, EndEvent, ProcessConfig, ProcessEvent, ProcessInput, ProcessSelector, StartRequest,
};

use warren_core::SandboxState;
use warren_envd::client::RpcStream;
use warren_store::Store;

use super::Sandboxes;
use super::traced::{op_span, traced};
use crate::agents::Agents;
use crate::audit::Action;
use crate::audit::{Audit, AuditActor, Event};

pub type ExecStream = Pin<Box<dyn Stream<Item = ExecEvent> + Send>>;

const MAX_ARGS: usize = 4096;
const MAX_STDIN: usize = 512 * 1024;

fn validate(req: &ExecRequest) -> Result<(), WarrenError> {
    match req.cmd.first() {
        None => {
            return Err(WarrenError::invalid(
                "cmd must name a program: e.g. [\"ls\", \"-l\"]",
            ));
        }
        Some(p) if p.is_empty() => return Err(WarrenError::invalid("cmd[0] must not be empty")),
        _ => {}
    }
    if req.cmd.len() > MAX_ARGS {
        return Err(WarrenError::invalid(format!(
            "cmd has more than {MAX_ARGS} arguments"
        )));
    }
    if req.cmd.iter().any(|a| a.contains('\0')) {
        return Err(WarrenError::invalid(
            "cmd arguments must not contain NUL bytes",
        ));
    }
    if req.stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
        return Err(WarrenError::invalid(format!(
            "stdin is limited to {MAX_STDIN} bytes; upload larger input as a file"
        )));
    }
    validate_env(&req.env)
}

/// The exit event for an envd `end` event. envd reports a signal death as
/// exit code -1 with a status like `signal: killed`. `lost` output events
/// (see the module docs) are named in the error.
fn exit_event(end: EndEvent, lost: u64) -> ExecEvent {
    let signal = end
        .status
        .strip_prefix("signal: ")
        .map(|s| s.trim().to_owned());
    let lost = (lost > 0).then(|| {
        format!(
            "{lost} chunks of output written while the sandbox was checkpointed were lost \
             (the agent keeps the newest 1 MiB); the command itself ran on"
        )
    });
    let error = match (end.error.filter(|e| !e.is_empty()), lost) {
        (Some(e), Some(l)) => Some(format!("{e}; {l}")),
        (e, l) => e.or(l),
    };
    ExecEvent::Exit {
        exit_code: end.exit_code,
        signal,
        error,
    }
}

/// A program that could not be started ends the stream at once with the
/// shell's conventions: 127 when it was not found, 126 when it could not be
/// executed. Other agent failures are errors of the request.
fn spawn_failure(e: warren_envd::ClientError) -> Result<ExecStream, WarrenError> {
    use warren_envd::Code;
    let exit_code = match e.code() {
        Code::NotFound => 127,
        Code::PermissionDenied | Code::InvalidArgument => 126,
        _ => return Err(crate::agent_error(e)),
    };
    let error = crate::agent_error(e).message;
    let exit = ExecEvent::Exit {
        exit_code,
        signal: None,
        error: Some(error),
    };
    Ok(futures::stream::once(async move { exit }).boxed())
}

fn lost(detail: impl std::fmt::Display) -> ExecEvent {
    ExecEvent::Exit {
        exit_code: -1,
        signal: None,
        error: Some(format!(
            "lost the connection to the sandbox agent: {detail}"
        )),
    }
}

/// A command's event stream and what it has delivered.
struct Following {
    events: RpcStream<ProcessEvent>,
    /// Data events received (and replayed ones counted as received).
    received: u64,
    /// Data events a re-attach could no longer replay.
    lost: u64,
}

/// A running command whose stream may have to be picked up again.
struct Follow {
    store: Arc<dyn Store>,
    agents: Agents,
    id: SandboxId,
    user: Option<String>,
    pid: u32,
}

impl Follow {
    /// The process's events again, from data event `received` on, after
    /// its stream broke, if the sandbox still runs it (see the module
    /// docs), with how many of the missed events are no longer kept;
    /// otherwise why not.
    async fn reattach(&self, received: u64) -> Result<(RpcStream<ProcessEvent>, u64), String> {
        // Waits for a checkpoint in progress to end.
        let client = self
            .agents
            .client(&self.id, self.user.as_deref())
            .await
            .map_err(|e| e.message)?;
        match self.store.get_sandbox(&self.id).await {
            Ok(Some(rec)) if rec.state == SandboxState::Running => {}
            Ok(Some(rec))
                if rec.state == SandboxState::Paused || rec.state == SandboxState::Pausing =>
            {
                return Err(format!(
                    "the sandbox was paused; pid {} continues when it resumes",
                    self.pid
                ));
            }
            _ => return Err("the sandbox is no longer running".to_owned()),
        }
        let mut events = client
            .connect_from(ProcessSelector::Pid(self.pid), Some(received), None)
            .await
            .map_err(|e| format!("could not re-attach to pid {}: {e}", self.pid))?;
        // Connect answers with the process's start event first.
        match events.next().await {
            Some(Ok(ProcessEvent::Start(start))) => Ok((events, start.replay_lost)),
            _ => Err(format!("could not re-attach to pid {}", self.pid)),
        }
    }
}

/// Records a finished exec: what ran, as whom, how it ended, how long it took.
struct ExecRecord {
    audit: Audit,
    actor: AuditActor,
    /// The entry without its end: argv, user, cwd.
    started: Event,
    at: Instant,
    /// The exec's span: open until the stream is dropped.
    span: tracing::Span,
}

impl ExecRecord {
    async fn finish(&self, exit: &ExecEvent) {
        let ExecEvent::Exit {
            exit_code,
            signal,
            error,
        } = exit
        else {
            return;
        };
        let mut event = self.started.clone();
        if error.is_some() {
            event.outcome = Outcome::Error;
        }
        self.span.record("exit_code", *exit_code);
        if let Some(e) = error {
            self.span.record("error", e.as_str());
        }
        let event = event
            .with("exit_code", *exit_code)
            .with("signal", signal.clone())
            .with("error", error.clone())
            .with("duration_ms", self.at.elapsed().as_millis() as u64);
        self.audit.record_done(&self.actor, event).await;
    }
}

impl Sandboxes {
    /// Runs `req` in sandbox `id` on behalf of `actor`; see the module docs.
    pub async fn exec(
        &self,
        id: &SandboxId,
        req: ExecRequest,
        actor: AuditActor,
    ) -> Result<ExecStream, WarrenError> {
        let started = Event::sandbox(Action::ProcessExec, id, Outcome::Ok)
            .with("argv", req.cmd.clone())
            .with(
                "user",
                req.user.clone().unwrap_or_else(|| "user".to_owned()),
            )
            .with("cwd", req.cwd.clone());
        let at = Instant::now();
        let span = op_span!(
            "sandbox.exec",
            actor.team,
            exit_code = tracing::field::Empty
        );
        span.record("sandbox.id", id.as_str());
        let events = traced(&span, self.start_exec(id, req)).await?;
        let record = Arc::new(ExecRecord {
            audit: self.audit.clone(),
            actor,
            started,
            at,
            span,
        });
        Ok(events
            .then(move |ev| {
                let record = record.clone();
                async move {
                    record.finish(&ev).await;
                    ev
                }
            })
            .boxed())
    }

    async fn start_exec(
        &self,
        id: &SandboxId,
        req: ExecRequest,
    ) -> Result<ExecStream, WarrenError> {
        validate(&req)?;
        self.get_running(id).await?;
        let client = self.agents.client(id, req.user.as_deref()).await?;
        let mut argv = req.cmd.into_iter();
        let cmd = argv.next().unwrap_or_default();
        let start = StartRequest {
            process: Some(ProcessConfig {
                cmd,
                args: argv.collect(),
                envs: req.env,
                cwd: req.cwd,
            }),
            pty: None,
            tag: None,
            stdin: Some(req.stdin.is_some()),
        };
        let mut events = match client.start(&start, None).await {
            Ok(events) => events,
            Err(e) => return spawn_failure(e),
        };

        // The first event names the process; stdin is written once it exists.
        let first = match events.next().await {
            Some(Ok(ProcessEvent::Start(s))) => s,
            Some(Ok(other)) => {
                return Err(WarrenError::internal(format!(
                    "agent sent {other:?} before the start event"
                )));
            }
            Some(Err(e)) => return spawn_failure(e),
            None => {
                return Err(WarrenError::unavailable(
                    "the sandbox agent closed the stream",
                ));
            }
        };
        if let Some(stdin) = req.stdin {
            let pid = ProcessSelector::Pid(first.pid);
            if !stdin.is_empty() {
                client
                    .send_input(pid.clone(), ProcessInput::Stdin(stdin.into_bytes()))
                    .await
                    .map_err(crate::agent_error)?;
            }
            client.close_stdin(pid).await.map_err(crate::agent_error)?;
        }

        let pid = first.pid;
        let head = futures::stream::once(async move { ExecEvent::Start { pid } });
        let follow = Arc::new(Follow {
            store: self.store.clone(),
            agents: self.agents.clone(),
            id: id.clone(),
            user: req.user,
            pid,
        });
        // `None` state: the terminal event has been sent.
        let following = Following {
            events,
            received: 0,
            lost: 0,
        };
        let body = futures::stream::unfold(Some(following), move |following| {
            let follow = follow.clone();
            async move {
                let mut f = following?;
                let b64 = base64::engine::general_purpose::STANDARD;
                loop {
                    let ev = match f.events.next().await {
                        Some(Ok(ProcessEvent::Data(data))) => {
                            f.received += 1;
                            match data {
                                DataEvent::Stdout(b) | DataEvent::Pty(b) => ExecEvent::Stdout {
                                    data: b64.encode(b),
                                },
                                DataEvent::Stderr(b) => ExecEvent::Stderr {
                                    data: b64.encode(b),
                                },
                            }
                        }
                        Some(Ok(ProcessEvent::End(end))) => {
                            return Some((exit_event(end, f.lost), None));
                        }
                        Some(Ok(ProcessEvent::Start(_) | ProcessEvent::Keepalive(_))) => continue,
                        broken => match follow.reattach(f.received).await {
                            Ok((again, lost)) => {
                                f.events = again;
                                f.received += lost;
                                f.lost += lost;
                                continue;
                            }
                            Err(why) => {
                                let detail = match broken {
                                    Some(Err(e)) => format!("{e}; {why}"),
                                    _ => format!("the stream ended without an exit event; {why}"),
                                };
                                return Some((lost(detail), None));
                            }
                        },
                    };
                    return Some((ev, Some(f)));
                }
            }
        });
        Ok(head.chain(body).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_hostile_commands_are_rejected() {
        let bad = [
            ExecRequest::default(),
            ExecRequest {
                cmd: vec![String::new()],
                ..Default::default()
            },
            ExecRequest {
                cmd: vec!["a\0b".into()],
                ..Default::default()
            },
            ExecRequest {
                cmd: vec!["cat".into()],
                stdin: Some("x".repeat(MAX_STDIN + 1)),
                ..Default::default()
            },
        ];
        for req in bad {
            assert!(validate(&req).is_err(), "{req:?}");
        }
        assert!(
            validate(&ExecRequest {
                cmd: vec!["true".into()],
                ..Default::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn signal_deaths_are_named() {
        let ev = exit_event(
            EndEvent {
                exit_code: -1,
                exited: false,
                status: "signal: killed".into(),
                error: None,
            },
            0,
        );
        assert_eq!(
            ev,
            ExecEvent::Exit {
                exit_code: -1,
                signal: Some("killed".into()),
                error: None
            }
        );
    }
}
