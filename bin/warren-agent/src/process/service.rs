//! The `process.Process` service.

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use tokio::net::unix::pipe;
use tokio_stream_shim::ReceiverStream;
use warren_envd::process::{
    self as p, KeepAlive, ProcessEvent, ProcessInput, Signal, StartEvent, StreamInputRequest,
};
use warren_envd::{Code, ConnectError};

use super::spawn::{self, SpawnError, SpawnSpec, Stdio3};
use super::{Input, Output, Proc, PtyMaster, pump, write_stdin};
use crate::methods::{self, Method, streaming, unary};
use crate::rpc::{self, RpcResult};
use crate::state::Shared;

mod tokio_stream_shim {
    //! A `Stream` over an mpsc receiver.
    pub struct ReceiverStream<T>(pub tokio::sync::mpsc::Receiver<T>);

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

/// The methods of `process.Process`.
pub(crate) static METHODS: &[Method<Shared>] = &[
    streaming!("Start", start_rpc),
    streaming!("Connect", connect_rpc),
    streaming!("StreamInput", stream_input_rpc),
    unary!("List", list),
    unary!("SendInput", send_input_rpc),
    unary!("CloseStdin", close_stdin),
    unary!("SendSignal", send_signal),
    unary!("Update", update),
];

/// Dispatches one `process.Process` method (see [`crate::methods`]).
pub async fn dispatch(state: Shared, method: String, headers: HeaderMap, body: Body) -> Response {
    let found = methods::find(METHODS, &method);
    if let Err(e) = rpc::check_content_type(&headers, found.is_some_and(|m| m.streaming)) {
        return rpc::error_response(&e);
    }
    match found {
        Some(m) => (m.handler)(state, headers, body).await,
        None => methods::unknown(p::SERVICE, &method),
    }
}

async fn start_rpc(state: Shared, headers: HeaderMap, body: Body) -> Response {
    match rpc::stream_request(body).await {
        Ok(req) => event_stream(&headers, start(&state, &headers, req), |event| {
            p::StartResponse { event: Some(event) }
        }),
        Err(e) => rpc::stream_error(e),
    }
}

async fn connect_rpc(state: Shared, headers: HeaderMap, body: Body) -> Response {
    match rpc::stream_request::<p::ConnectRequest>(body).await {
        Ok(req) => event_stream(&headers, connect(&state, req), |event| p::ConnectResponse {
            event: Some(event),
        }),
        Err(e) => rpc::stream_error(e),
    }
}

async fn stream_input_rpc(state: Shared, _headers: HeaderMap, body: Body) -> Response {
    rpc::client_stream_response(stream_input(&state, body).await)
}

async fn list(state: Shared, _req: p::ListRequest) -> RpcResult<p::ListResponse> {
    Ok(p::ListResponse {
        processes: state.procs.list(),
    })
}

async fn send_input_rpc(
    state: Shared,
    req: p::SendInputRequest,
) -> RpcResult<p::SendInputResponse> {
    let proc = state.procs.find(req.process.as_ref())?;
    let input = req
        .input
        .ok_or_else(|| ConnectError::invalid_argument("input is required"))?;
    send_input(&proc, input).await?;
    Ok(p::SendInputResponse {})
}

async fn close_stdin(state: Shared, req: p::CloseStdinRequest) -> RpcResult<p::CloseStdinResponse> {
    let proc = state.procs.find(req.process.as_ref())?;
    match &proc.input {
        Input::Stdin(stdin) => {
            stdin.lock().await.take();
            Ok(p::CloseStdinResponse {})
        }
        Input::Pty(_) => Err(ConnectError::new(
            Code::FailedPrecondition,
            "a PTY has no separate stdin; send Ctrl+D (0x04) instead",
        )),
        Input::None => Err(ConnectError::new(
            Code::FailedPrecondition,
            "the process was started without stdin",
        )),
    }
}

async fn send_signal(state: Shared, req: p::SendSignalRequest) -> RpcResult<p::SendSignalResponse> {
    let proc = state.procs.find(req.process.as_ref())?;
    let sig = match req.signal {
        Signal::Sigterm => nix::sys::signal::Signal::SIGTERM,
        Signal::Sigkill => nix::sys::signal::Signal::SIGKILL,
        other => {
            return Err(ConnectError::invalid_argument(format!(
                "unsupported signal {other:?}; use SIGNAL_SIGTERM or SIGNAL_SIGKILL"
            )));
        }
    };
    proc.signal(sig)?;
    Ok(p::SendSignalResponse {})
}

async fn update(state: Shared, req: p::UpdateRequest) -> RpcResult<p::UpdateResponse> {
    let proc = state.procs.find(req.process.as_ref())?;
    let size = req
        .pty
        .and_then(|p| p.size)
        .ok_or_else(|| ConnectError::invalid_argument("pty.size is required"))?;
    match &proc.input {
        Input::Pty(master) => spawn::resize(master.raw(), size)
            .map_err(|e| ConnectError::internal(format!("resizing the terminal failed: {e}")))?,
        _ => {
            return Err(ConnectError::new(
                Code::FailedPrecondition,
                "the process has no PTY",
            ));
        }
    }
    Ok(p::UpdateResponse {})
}

/// Wraps an event stream (or the error that prevented it) as a Connect stream.
fn event_stream<R, F>(
    headers: &HeaderMap,
    events: RpcResult<tokio::sync::mpsc::Receiver<ProcessEvent>>,
    wrap: F,
) -> Response
where
    R: serde::Serialize + Clone + Send + 'static,
    F: Fn(ProcessEvent) -> R + Send + Sync + 'static,
{
    match events {
        Ok(rx) => {
            let keepalive = rpc::keepalive_interval(headers)
                .map(|d| (d, wrap(ProcessEvent::Keepalive(KeepAlive {}))));
            rpc::stream_response(ReceiverStream(rx).map(move |e| Ok(wrap(e))), keepalive)
        }
        Err(e) => rpc::stream_error(e),
    }
}

fn spawn_error(e: SpawnError) -> ConnectError {
    let code = match &e {
        SpawnError::NotFound(_) => Code::NotFound,
        SpawnError::BadCwd(_) | SpawnError::NulByte(_) => Code::InvalidArgument,
        SpawnError::CannotSwitchUser(_) => Code::PermissionDenied,
        SpawnError::Spawn { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Code::PermissionDenied
        }
        SpawnError::Pty(_) | SpawnError::Spawn { .. } => Code::Internal,
    };
    ConnectError::new(code, e.to_string())
}

fn start(
    state: &Shared,
    headers: &HeaderMap,
    req: p::StartRequest,
) -> RpcResult<tokio::sync::mpsc::Receiver<ProcessEvent>> {
    let user = state.rpc_user(headers)?;
    let deadline = rpc::connect_timeout(headers)?;
    let config = req
        .process
        .ok_or_else(|| ConnectError::invalid_argument("process config is required"))?;
    if let Some(tag) = &req.tag
        && state.procs.tag_in_use(tag)
    {
        return Err(ConnectError::new(
            Code::AlreadyExists,
            format!("a process with tag {tag:?} is already running"),
        ));
    }
    let defaults = state.defaults();
    let workdir = state.workdir(&user);
    let cwd = match config.cwd.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => crate::fs::paths::resolve(c, &user, &workdir)?,
        None => workdir,
    };
    let pty = req
        .pty
        .map(|p| p.size.unwrap_or(p::PtySize { cols: 80, rows: 24 }));
    let spec = SpawnSpec {
        cmd: &config.cmd,
        args: &config.args,
        envs: &config.envs,
        init_env: &defaults.env,
        cwd,
        user: &user,
        pty,
        stdin: req.stdin.unwrap_or(false),
    };
    let reaper = state.reaper.clone();
    let (pid, exit, stdio) =
        spawn::spawn(&spec, |launch| reaper.spawn(launch)).map_err(spawn_error)?;
    let (input, output) = match stdio {
        Stdio3::Pty { master } => {
            let master = Arc::new(
                PtyMaster::new(master)
                    .map_err(|e| ConnectError::internal(format!("pty setup: {e}")))?,
            );
            (Input::Pty(master.clone()), Output::Pty(master))
        }
        Stdio3::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            let input = match stdin.map(pipe::Sender::from_owned_fd).transpose() {
                Ok(Some(tx)) => Input::Stdin(tokio::sync::Mutex::new(Some(tx))),
                Ok(None) => Input::None,
                Err(e) => return Err(ConnectError::internal(format!("stdin setup: {e}"))),
            };
            (input, Output::Pipes { stdout, stderr })
        }
    };
    let proc = Arc::new(Proc::new(pid, config, req.tag, input));
    let rx = subscribe_with_start(&proc, None);
    state.procs.insert(proc.clone());
    tokio::spawn(pump(state.clone(), proc, output, exit, deadline));
    Ok(rx)
}

/// Subscribes and queues the `start` event first (with how many events
/// before `replay_from` are no longer kept).
fn subscribe_with_start(
    proc: &Proc,
    replay_from: Option<u64>,
) -> tokio::sync::mpsc::Receiver<ProcessEvent> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let mut sub = proc.subscribe(replay_from);
    // The channel is new and empty, so this first send cannot fail for lack of room.
    let _ = tx.try_send(ProcessEvent::Start(StartEvent {
        pid: proc.pid,
        replay_lost: sub.lost,
    }));
    tokio::spawn(async move {
        while let Some(event) = sub.events.recv().await {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// `Connect`: from now on, or, with Warren's `replayFrom` and a pid, the
/// kept events from that data event on, of a process that may have ended
/// meanwhile (see [`super::fanout`]).
fn connect(
    state: &Shared,
    req: p::ConnectRequest,
) -> RpcResult<tokio::sync::mpsc::Receiver<ProcessEvent>> {
    let proc = match (&req.process, req.replay_from) {
        (Some(p::ProcessSelector::Pid(pid)), Some(_)) => state.procs.find_for_replay(*pid)?,
        _ => state.procs.find(req.process.as_ref())?,
    };
    Ok(subscribe_with_start(&proc, req.replay_from))
}

async fn send_input(proc: &Proc, input: ProcessInput) -> RpcResult<()> {
    let data = match &input {
        ProcessInput::Stdin(d) | ProcessInput::Pty(d) => d,
    };
    match &proc.input {
        Input::Stdin(stdin) => write_stdin(stdin, data).await,
        Input::Pty(master) => master.write_all(data).await.map_err(|e| {
            ConnectError::new(
                Code::FailedPrecondition,
                format!("writing to the terminal failed: {e}"),
            )
        }),
        Input::None => Err(ConnectError::new(
            Code::FailedPrecondition,
            "the process was started without stdin; start it with stdin: true",
        )),
    }
}

async fn stream_input(state: &Shared, body: Body) -> RpcResult<p::StreamInputResponse> {
    let mut messages = Box::pin(rpc::client_stream::<StreamInputRequest>(body));
    let mut target: Option<Arc<Proc>> = None;
    while let Some(message) = messages.next().await {
        match message? {
            StreamInputRequest::Start(start) => {
                target = Some(state.procs.find(start.process.as_ref())?)
            }
            StreamInputRequest::Data(data) => {
                let proc = target.as_ref().ok_or_else(|| {
                    ConnectError::invalid_argument("the first message must be start{process}")
                })?;
                if let Some(input) = data.input {
                    send_input(proc, input).await?;
                }
            }
            StreamInputRequest::Keepalive(_) => {}
        }
    }
    Ok(p::StreamInputResponse {})
}
