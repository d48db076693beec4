//! The fake instance's agent: an in-process HTTP server speaking as much
//! envd as the conformance suite and the daemon's routing need.
//!
//! Served: `GET /health`; `POST /init` (access token, environment); `GET`
//! and `POST /files?path=` (raw bytes; files live in memory, and
//! `/proc/meminfo` shows the memory limit); `process.Process/Start`
//! (streamed, see [`super::commands`]; with stdin or a PTY see
//! [`super::interactive`]), `List`, `SendSignal`, `SendInput`,
//! `CloseStdin` and `Update` (a PTY's size); `POST /quiesce` (every
//! process ends). Anything else is
//! `unimplemented`. Once `/init` set a token every call but
//! `/health` must carry it, as with the real agent.
//!
//! A frozen agent accepts connections but answers nothing until thawed; a
//! stopped or crashed one closes its listener and every connection (its
//! accept loop owns them).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use warren_core::Limits;
use warren_envd::envelope::{self, FrameDecoder};
use warren_envd::http_api::{ACCESS_TOKEN_HEADER, HttpError, InitRequest, WriteInfo};
use warren_envd::process::{
    CloseStdinRequest, DataEvent, EndEvent, ListResponse, ProcessConfig, ProcessEvent, ProcessInfo,
    ProcessInput, ProcessSelector, SendInputRequest, SendSignalRequest, StartEvent, StartRequest,
    StartResponse, UpdateRequest,
};
use warren_envd::{CONTENT_TYPE_CONNECT_JSON, CONTENT_TYPE_JSON, Code, ConnectError};

use super::commands::{Builtin, CommandHandler, CommandOutput, Inside, builtin};
use super::interactive::{self, Input, Kind};

/// The installed command handler, shared by every instance of a host.
pub(super) type HandlerSlot = Arc<RwLock<Option<Arc<dyn CommandHandler>>>>;

/// A process the agent keeps running.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Process {
    pub tag: Option<String>,
    pub config: ProcessConfig,
}

/// What the agent holds in memory; a checkpoint image is this, as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Memory {
    pub files: BTreeMap<String, Vec<u8>>,
    pub processes: BTreeMap<u32, Process>,
    pub next_pid: u32,
    pub token: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// One instance's agent: its memory and its run state.
pub(super) struct AgentState {
    memory: Mutex<Memory>,
    /// Wakes the stream of a long-running process when it is signalled.
    signals: Mutex<HashMap<u32, Arc<Notify>>>,
    /// The input of each process that takes some (see `interactive`).
    inputs: Mutex<HashMap<u32, tokio::sync::mpsc::UnboundedSender<Input>>>,
    /// Counts file writes, for processes waiting for a file.
    files_written: watch::Sender<u64>,
    frozen: watch::Sender<bool>,
    /// Set when PID 1 died: the accept loop ends, taking every connection.
    ended: watch::Sender<bool>,
    commands: AtomicU64,
    limits: Limits,
    handler: HandlerSlot,
}

const BASE_MEMORY: u64 = 8 * 1024 * 1024;

impl AgentState {
    pub fn new(memory: Memory, limits: Limits, handler: HandlerSlot) -> Arc<Self> {
        Arc::new(Self {
            memory: Mutex::new(memory),
            signals: Mutex::new(HashMap::new()),
            inputs: Mutex::new(HashMap::new()),
            files_written: watch::Sender::new(0),
            frozen: watch::Sender::new(false),
            ended: watch::Sender::new(false),
            commands: AtomicU64::new(0),
            limits,
            handler,
        })
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of what a checkpoint keeps.
    pub fn snapshot(&self) -> Memory {
        self.memory().clone()
    }

    pub fn set_frozen(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    /// Every process of the instance ends.
    pub fn end(&self) {
        self.ended.send_replace(true);
    }

    pub fn has_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// (CPU time, memory, tasks) as the fake counts them.
    pub fn usage(&self) -> (u64, u64, u64) {
        let memory = self.memory();
        let files: u64 = memory.files.values().map(|f| f.len() as u64).sum();
        let cpu = self.commands.load(Ordering::Relaxed) * 1_000_000;
        (cpu, BASE_MEMORY + files, 1 + memory.processes.len() as u64)
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        if path == "/proc/meminfo" {
            let kib = u64::from(self.limits.memory_mb) * 1024;
            return Some(format!("MemTotal:       {kib} kB\n").into_bytes());
        }
        self.memory().files.get(path).cloned()
    }

    /// Whether the in-memory file `path` exists.
    pub(super) fn has_file(&self, path: &str) -> bool {
        self.memory().files.contains_key(path)
    }

    /// Changes with every file written.
    pub(super) fn file_changes(&self) -> watch::Receiver<u64> {
        self.files_written.subscribe()
    }

    /// Forgets process `pid`, which ended.
    pub(super) fn finished(&self, pid: u32) {
        self.memory().processes.remove(&pid);
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    /// Hands `input` to process `pid`; false if it takes none (or ended).
    fn input(&self, pid: u32, input: Input) -> bool {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .is_some_and(|tx| tx.send(input).is_ok())
    }

    /// The pid `selector` names among the running processes.
    fn find(&self, selector: Option<&ProcessSelector>) -> Option<u32> {
        self.memory().processes.iter().find_map(|(pid, p)| {
            let hit = match selector {
                Some(ProcessSelector::Pid(want)) => pid == want,
                Some(ProcessSelector::Tag(tag)) => p.tag.as_ref() == Some(tag),
                None => false,
            };
            hit.then_some(*pid)
        })
    }

    /// What wakes the stream of process `pid` when it is signalled.
    pub(super) fn signal(&self, pid: u32) -> Arc<Notify> {
        self.signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pid)
            .or_default()
            .clone()
    }
}

/// Serves `state`'s agent on `listener` until the instance ends or the
/// task is aborted; connections end with it.
pub(super) async fn serve(listener: TcpListener, state: Arc<AgentState>) {
    let router = router(state.clone());
    let mut ended = state.ended.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = ended.wait_for(|e| *e) => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = TowerToHyperService::new(router.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/health", get(|| async { StatusCode::NO_CONTENT }))
        .route("/init", post(init))
        .route("/files", get(download).post(upload))
        .route("/quiesce", post(quiesce))
        .route("/{service}/{method}", post(rpc))
        .fallback(|| async { http_error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        // Uploads are as large as the daemon lets through, as with the
        // real agent.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Holds requests while frozen, then checks the access token.
async fn gate(State(state): State<Arc<AgentState>>, req: Request, next: Next) -> Response {
    let mut frozen = state.frozen.subscribe();
    let _ = frozen.wait_for(|f| !*f).await;
    let token = state.memory().token.clone();
    let Some(token) = token else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    if req.uri().path() == "/health" || presented == Some(token.as_str()) {
        return next.run(req).await;
    }
    let message = "missing or wrong access token";
    match req.uri().path() {
        "/files" | "/init" => http_error(StatusCode::UNAUTHORIZED, message),
        _ => rpc_error(ConnectError::new(Code::Unauthenticated, message)),
    }
}

async fn init(State(state): State<Arc<AgentState>>, body: Bytes) -> Response {
    let req: InitRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InitRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return http_error(StatusCode::BAD_REQUEST, &format!("malformed /init: {e}"));
            }
        }
    };
    let mut memory = state.memory();
    if let Some(env) = req.env_vars {
        memory.env.extend(env);
    }
    if let Some(token) = req.access_token {
        memory.token = (!token.is_empty()).then_some(token);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct FilesQuery {
    path: Option<String>,
}

async fn download(State(state): State<Arc<AgentState>>, Query(q): Query<FilesQuery>) -> Response {
    let Some(path) = q.path else {
        return http_error(StatusCode::BAD_REQUEST, "path is required");
    };
    match state.read(&path) {
        Some(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        None => http_error(StatusCode::NOT_FOUND, &format!("{path} does not exist")),
    }
}

async fn upload(
    State(state): State<Arc<AgentState>>,
    Query(q): Query<FilesQuery>,
    body: Bytes,
) -> Response {
    let Some(path) = q.path else {
        return http_error(StatusCode::BAD_REQUEST, "path is required");
    };
    state.memory().files.insert(path.clone(), body.to_vec());
    state.files_written.send_modify(|n| *n += 1);
    let name = path.rsplit('/').next().unwrap_or_default().to_owned();
    let info = WriteInfo {
        name,
        kind: "file".into(),
        path,
        metadata: Default::default(),
    };
    axum::Json(vec![info]).into_response()
}

async fn rpc(
    State(state): State<Arc<AgentState>>,
    Path((service, method)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if service != warren_envd::process::SERVICE {
        return rpc_error(ConnectError::new(
            Code::Unimplemented,
            format!("the fake agent does not serve {service}"),
        ));
    }
    match method.as_str() {
        "Start" => {
            let user = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(warren_envd::http_api::user_from_basic);
            start(state, &body, user.as_deref())
        }
        "SendInput" => match serde_json::from_slice::<SendInputRequest>(&body) {
            Ok(req) => {
                let bytes = match req.input {
                    Some(ProcessInput::Stdin(b) | ProcessInput::Pty(b)) => b,
                    None => Vec::new(),
                };
                to_process(&state, req.process.as_ref(), Input::Bytes(bytes))
            }
            Err(e) => rpc_error(ConnectError::invalid_argument(e.to_string())),
        },
        "CloseStdin" => match serde_json::from_slice::<CloseStdinRequest>(&body) {
            Ok(req) => to_process(&state, req.process.as_ref(), Input::Close),
            Err(e) => rpc_error(ConnectError::invalid_argument(e.to_string())),
        },
        "Update" => match serde_json::from_slice::<UpdateRequest>(&body) {
            Ok(UpdateRequest {
                process,
                pty: Some(warren_envd::process::Pty { size: Some(size) }),
            }) => to_process(&state, process.as_ref(), Input::Resize(size)),
            Ok(_) => unary(&serde_json::json!({})),
            Err(e) => rpc_error(ConnectError::invalid_argument(e.to_string())),
        },
        "List" => {
            let processes = state
                .memory()
                .processes
                .iter()
                .map(|(pid, p)| ProcessInfo {
                    config: Some(p.config.clone()),
                    pid: *pid,
                    tag: p.tag.clone(),
                })
                .collect();
            unary(&ListResponse { processes })
        }
        "SendSignal" => match serde_json::from_slice::<SendSignalRequest>(&body) {
            Ok(req) => send_signal(&state, req.process),
            Err(e) => rpc_error(ConnectError::invalid_argument(e.to_string())),
        },
        other => rpc_error(ConnectError::new(
            Code::Unimplemented,
            format!("the fake agent does not serve process.Process/{other}"),
        )),
    }
}

/// Hands `input` to the process `selector` names.
fn to_process(state: &AgentState, selector: Option<&ProcessSelector>, input: Input) -> Response {
    let Some(pid) = state.find(selector) else {
        return rpc_error(ConnectError::not_found(format!("no process {selector:?}")));
    };
    if state.input(pid, input) {
        unary(&serde_json::json!({}))
    } else {
        rpc_error(ConnectError::new(
            Code::FailedPrecondition,
            format!("process {pid} takes no input"),
        ))
    }
}

/// `POST /quiesce`: every process ends, as if killed.
async fn quiesce(State(state): State<Arc<AgentState>>) -> Response {
    let pids: Vec<u32> = std::mem::take(&mut state.memory().processes)
        .into_keys()
        .collect();
    for pid in pids {
        state.signal(pid).notify_one();
    }
    StatusCode::NO_CONTENT.into_response()
}

fn send_signal(state: &AgentState, selector: Option<ProcessSelector>) -> Response {
    let pid = state.find(selector.as_ref());
    if let Some(pid) = pid {
        state.memory().processes.remove(&pid);
    }
    match pid {
        Some(pid) => {
            state.signal(pid).notify_one();
            unary(&serde_json::json!({}))
        }
        None => rpc_error(ConnectError::not_found(format!("no process {selector:?}"))),
    }
}

/// `process.Process/Start`: the events of one command as a stream.
fn start(state: Arc<AgentState>, body: &[u8], user: Option<&str>) -> Response {
    let mut decoder = FrameDecoder::default();
    decoder.push(body);
    let req: StartRequest = match decoder.next_frame() {
        Ok(Some(frame)) => match frame.json() {
            Ok(req) => req,
            Err(e) => return rpc_error(e.to_connect()),
        },
        Ok(None) => return rpc_error(ConnectError::invalid_argument("no start message")),
        Err(e) => return rpc_error(e.to_connect()),
    };
    let config = req.process.unwrap_or_default();
    state.commands.fetch_add(1, Ordering::Relaxed);
    let pid = {
        let mut memory = state.memory();
        if memory.processes.len() as u64 + 2 > u64::from(state.limits.pids) {
            drop(memory);
            return stream(vec![envelope::end_frame(Some(ConnectError::new(
                Code::ResourceExhausted,
                "the pids limit is reached",
            )))]);
        }
        memory.next_pid = memory.next_pid.max(2);
        let pid = memory.next_pid;
        memory.next_pid += 1;
        pid
    };
    let started = event(ProcessEvent::Start(StartEvent {
        pid,
        replay_lost: 0,
    }));
    let handled = state
        .handler
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|h| h.run(&config));
    let what = match handled {
        Some(out) => Builtin::Done(out),
        None => {
            let env = state.memory().env.clone();
            let read = |p: &str| state.read(p);
            builtin(
                &config,
                &Inside {
                    read: &read,
                    env: &env,
                    user,
                },
            )
        }
    };
    let stdin = req.stdin == Some(true);
    let interactive = match what {
        _ if req.pty.is_some() => Ok(Kind::Terminal(
            req.pty.as_ref().and_then(|p| p.size).unwrap_or_default(),
        )),
        Builtin::Done(out) if stdin => Ok(Kind::AfterStdin(out)),
        Builtin::EchoStdin if stdin => Ok(Kind::EchoStdin),
        other => Err(other),
    };
    let what = match interactive {
        Err(what) => what,
        Ok(kind) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            state
                .inputs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid, tx);
            return running(state, pid, req.tag, config, started, |state, out| {
                interactive::run(state, pid, kind, rx, out)
            });
        }
    };
    match what {
        Builtin::WaitFor(path) => running(state, pid, req.tag, config, started, |state, out| {
            interactive::wait_for(state, pid, path, out)
        }),
        Builtin::EchoStdin => stream(vec![
            started,
            event(ProcessEvent::End(EndEvent {
                exit_code: 0,
                exited: true,
                status: "exit status 0".into(),
                error: None,
            })),
            envelope::end_frame(None),
        ]),
        Builtin::Done(out) => {
            let mut frames = vec![started];
            frames.extend(output_frames(&out));
            frames.push(envelope::end_frame(None));
            stream(frames)
        }
        Builtin::LongRunning => {
            state.memory().processes.insert(
                pid,
                Process {
                    tag: req.tag,
                    config,
                },
            );
            let wake = state.signal(pid);
            let end = async move {
                wake.notified().await;
                let killed = event(ProcessEvent::End(EndEvent {
                    exit_code: -1,
                    exited: false,
                    status: "signal: killed".into(),
                    error: None,
                }));
                futures::stream::iter([killed, envelope::end_frame(None)])
            };
            let events = futures::stream::once(async move { started })
                .chain(futures::stream::once(end).flatten())
                .map(Ok::<_, Infallible>);
            streaming(Body::from_stream(events))
        }
        Builtin::KillInit => {
            state.end();
            stream(vec![started])
        }
    }
}

/// Lists process `pid` and streams `started`, then what `task` writes.
fn running<F, Fut>(
    state: Arc<AgentState>,
    pid: u32,
    tag: Option<String>,
    config: ProcessConfig,
    started: Bytes,
    task: F,
) -> Response
where
    F: FnOnce(Arc<AgentState>, futures::channel::mpsc::UnboundedSender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    state
        .memory()
        .processes
        .insert(pid, Process { tag, config });
    let (out, events) = futures::channel::mpsc::unbounded();
    let _ = out.unbounded_send(started);
    tokio::spawn(task(state, out));
    streaming(Body::from_stream(events.map(Ok::<_, Infallible>)))
}

pub(super) fn output_frames(out: &CommandOutput) -> Vec<Bytes> {
    let mut frames = Vec::new();
    if !out.stdout.is_empty() {
        frames.push(event(ProcessEvent::Data(DataEvent::Stdout(
            out.stdout.clone(),
        ))));
    }
    if !out.stderr.is_empty() {
        frames.push(event(ProcessEvent::Data(DataEvent::Stderr(
            out.stderr.clone(),
        ))));
    }
    frames.push(event(ProcessEvent::End(EndEvent {
        exit_code: out.exit_code,
        exited: true,
        status: format!("exit status {}", out.exit_code),
        error: None,
    })));
    frames
}

pub(super) fn event(event: ProcessEvent) -> Bytes {
    let message = StartResponse { event: Some(event) };
    envelope::message_frame(&message).unwrap_or_default()
}

fn stream(frames: Vec<Bytes>) -> Response {
    let events = futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
    streaming(Body::from_stream(events))
}

fn streaming(body: Body) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE_CONNECT_JSON)], body).into_response()
}

fn unary<T: Serialize>(message: &T) -> Response {
    match serde_json::to_vec(message) {
        Ok(json) => ([(header::CONTENT_TYPE, CONTENT_TYPE_JSON)], json).into_response(),
        Err(e) => rpc_error(ConnectError::internal(e.to_string())),
    }
}

fn rpc_error(e: ConnectError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let json = serde_json::to_vec(&e).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE_JSON)], json).into_response()
}

fn http_error(status: StatusCode, message: &str) -> Response {
    let body = HttpError {
        code: status.as_u16(),
        message: message.to_owned(),
    };
    (status, axum::Json(body)).into_response()
}
