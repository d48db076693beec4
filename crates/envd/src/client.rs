//! A typed async client for envd, used by the daemon.
//!
//! One [`EnvdClient`] holds a keep-alive connection pool with TCP_NODELAY
//! (Nagle plus delayed ACKs costs ~40 ms per request over the sandbox veth).
//! Server streams are returned as [`RpcStream`]s that end after the
//! end-of-stream frame; an error in that frame, a stream cut short or a
//! malformed frame is yielded as the stream's last item.
//!
//! Connection reuse: a connection goes back to the pool only once its
//! answer's body has been read to its end. A server stream therefore reads
//! on past its end-of-stream frame to the body's end, and a process stream
//! (`start`, `connect`) reads on past the process's `end` event to the
//! end-of-stream frame before it yields that `end`, so a caller that stops
//! at `end` still leaves the connection warm for the next call. Both waits
//! are bounded ([`DRAIN_LIMIT`]): an agent that keeps a finished stream
//! open costs its connection, never a hang. A pooled connection the agent
//! closed is noticed by the pool and dialled anew by the next call.
//!
//! Dead connections: a pooled connection can also die unseen (reset while
//! it sat idle), and the next request on it fails. An RPC whose request
//! could not be written out whole (the connection failed while its bytes
//! were being written; every RPC body has a known length) is sent again on
//! the next connection, at most [`SEND_ATTEMPTS`] times in all: the agent
//! acts on a request only once it has read all of it, so that attempt
//! cannot have started anything. An attempt that failed later (the request
//! was written, its answer did not come) is never repeated; the caller gets
//! the error.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::code::{Code, ConnectError};
use crate::envelope::{self, EnvelopeError, FrameDecoder};
use crate::filesystem::{
    self as fs, EntryInfo, FilesystemEvent, WatchDirRequest, WatchDirResponse,
};
use crate::http_api::{self, HttpError, InitRequest, WriteInfo};
use crate::process::{
    self as proc, ProcessEvent, ProcessInfo, ProcessInput, ProcessSelector, PtySize, Signal,
};
use crate::{CONTENT_TYPE_CONNECT_JSON, CONTENT_TYPE_JSON, PROTOCOL_VERSION_HEADER};

/// Longest wait for the rest of a finished stream (see the module docs).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// Most bytes read past an end-of-stream frame before the connection is
/// given up instead.
const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// Most attempts at sending one RPC over dead pooled connections.
const SEND_ATTEMPTS: usize = 4;

/// A stream of messages from a server-streaming call.
pub type RpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>;
/// A stream of file bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// envd answered with an error; its code is preserved.
    #[error("envd answered {0}")]
    Rpc(#[from] ConnectError),
    /// The request could not be sent or its answer not read.
    #[error("request to envd failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A stream frame was malformed or too large.
    #[error("envd sent a malformed stream")]
    Stream(#[from] EnvelopeError),
    /// The answer did not follow the protocol.
    #[error("envd sent an unexpected answer: {0}")]
    Protocol(String),
    /// The base URL cannot be used.
    #[error("invalid envd URL {0:?}: expected http://HOST:PORT")]
    InvalidUrl(String),
    /// envd answered 507: the sandbox's disk is full. The message is envd's.
    #[error("{0}")]
    InsufficientStorage(String),
}

impl ClientError {
    /// The Connect code for this failure: the server's code for RPC errors,
    /// `unavailable` for transport failures, `internal` for protocol errors.
    pub fn code(&self) -> Code {
        match self {
            Self::Rpc(e) => e.code,
            Self::Transport(_) => Code::Unavailable,
            Self::Stream(_) | Self::Protocol(_) | Self::InvalidUrl(_) => Code::Internal,
            Self::InsufficientStorage(_) => Code::ResourceExhausted,
        }
    }
}

/// Client for one agent.
#[derive(Debug, Clone)]
pub struct EnvdClient {
    http: reqwest::Client,
    base: url::Url,
    access_token: Option<String>,
    user: Option<String>,
    deadline: Option<Duration>,
    max_frame: usize,
}

impl EnvdClient {
    /// A client for the agent at `base_url` (e.g. `http://10.0.0.2:49983`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let base =
            url::Url::parse(base_url).map_err(|_| ClientError::InvalidUrl(base_url.into()))?;
        if base.scheme() != "http" || base.host().is_none() {
            return Err(ClientError::InvalidUrl(base_url.into()));
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Self {
            http,
            base,
            access_token: None,
            user: None,
            deadline: None,
            max_frame: envelope::DEFAULT_MAX_FRAME,
        })
    }

    /// The same client, sending `X-Access-Token`.
    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// The same client, acting as `user` (otherwise the agent's default user).
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The same client, giving every RPC a Connect deadline
    /// (`connect-timeout-ms`); a process it starts is killed when that passes.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    fn url(&self, path: &str) -> url::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    fn request(&self, method: reqwest::Method, url: url::Url) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.access_token {
            req = req.header(http_api::ACCESS_TOKEN_HEADER, token);
        }
        if let Some(user) = &self.user {
            req = req.header(
                reqwest::header::AUTHORIZATION,
                http_api::basic_user_header(user),
            );
        }
        req
    }

    fn rpc(&self, procedure: &str, content_type: &str) -> reqwest::RequestBuilder {
        let req = self
            .request(reqwest::Method::POST, self.url(&format!("/{procedure}")))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(PROTOCOL_VERSION_HEADER, "1");
        match self.deadline {
            Some(d) => req.header(http_api::CONNECT_TIMEOUT_HEADER, d.as_millis().to_string()),
            None => req,
        }
    }

    /// Sends an RPC whose request body is `body`, again on the next
    /// connection when an attempt could not be written out (see the module
    /// docs on dead connections).
    async fn send_rpc(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        body: Bytes,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 1;
        loop {
            match build().body(body.clone()).send().await {
                Ok(resp) => return Ok(resp),
                Err(e) if attempt < SEND_ATTEMPTS && unwritten(&e) => attempt += 1,
                Err(e) => return Err(ClientError::Transport(e)),
            }
        }
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        let resp = self
            .request(reqwest::Method::GET, self.url("/health"))
            .send()
            .await
            .map_err(ClientError::Transport)?;
        check_http(resp).await.map(drop)
    }

    /// `POST /init`.
    pub async fn init(&self, req: &InitRequest) -> Result<(), ClientError> {
        let resp = self
            .request(reqwest::Method::POST, self.url("/init"))
            .json(req)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        check_http(resp).await.map(drop)
    }

    /// `POST /quiesce`: ends every process but the agent (Warren's agent
    /// only); returns once none is left.
    pub async fn quiesce(&self) -> Result<(), ClientError> {
        let resp = self
            .request(reqwest::Method::POST, self.url("/quiesce"))
            .send()
            .await
            .map_err(ClientError::Transport)?;
        check_http(resp).await.map(drop)
    }

    /// `GET /logs?start=MS`: the start command's output lines from
    /// `start_ms` on (Warren's agent only).
    pub async fn start_command_logs(
        &self,
        start_ms: i64,
    ) -> Result<Vec<crate::http_api::LogLine>, ClientError> {
        let mut url = self.url("/logs");
        url.query_pairs_mut()
            .append_pair("start", &start_ms.to_string());
        let resp = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let resp = check_http(resp).await?;
        resp.json().await.map_err(ClientError::Transport)
    }

    /// A unary call.
    pub async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        procedure: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self
            .send_rpc(|| self.rpc(procedure, CONTENT_TYPE_JSON), body.into())
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
        if !status.is_success() {
            return Err(error_from_body(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("{procedure}: {e}")))
    }

    /// A server-streaming call; `keepalive` asks for keepalive messages.
    pub async fn server_stream<Req: Serialize, Resp: DeserializeOwned + Send + 'static>(
        &self,
        procedure: &str,
        req: &Req,
        keepalive: Option<Duration>,
    ) -> Result<RpcStream<Resp>, ClientError> {
        let frame = envelope::message_frame(req)?;
        let builder = || {
            let builder = self.rpc(procedure, CONTENT_TYPE_CONNECT_JSON);
            match keepalive {
                Some(interval) => builder.header(
                    http_api::KEEPALIVE_HEADER,
                    interval.as_secs().max(1).to_string(),
                ),
                None => builder,
            }
        };
        let resp = self.send_rpc(builder, frame).await?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
            return Err(error_from_body(status.as_u16(), &bytes));
        }
        Ok(decode_messages(resp.bytes_stream(), self.max_frame))
    }

    /// A client-streaming call.
    pub async fn client_stream<Req, Resp, S>(
        &self,
        procedure: &str,
        messages: S,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
        S: Stream<Item = Req> + Send + 'static,
    {
        let body = messages.map(|m| envelope::message_frame(&m));
        let resp = self
            .rpc(procedure, CONTENT_TYPE_CONNECT_JSON)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
            return Err(error_from_body(status.as_u16(), &bytes));
        }
        let mut stream = decode_messages::<Resp, _>(resp.bytes_stream(), self.max_frame);
        let first = stream
            .next()
            .await
            .ok_or_else(|| ClientError::Protocol(format!("{procedure}: no response message")))??;
        // Drain to the end-of-stream frame so a trailing error is not lost.
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok(first)
    }

    // ---- process.Process ----

    /// Starts a process; the stream yields `start`, `data`…, `end`.
    pub async fn start(
        &self,
        req: &proc::StartRequest,
        keepalive: Option<Duration>,
    ) -> Result<RpcStream<ProcessEvent>, ClientError> {
        let stream = self
            .server_stream::<_, proc::StartResponse>("process.Process/Start", req, keepalive)
            .await?;
        Ok(process_events(stream, |r| r.event))
    }

    /// Attaches to a running process's output from now on.
    pub async fn connect(
        &self,
        process: ProcessSelector,
        keepalive: Option<Duration>,
    ) -> Result<RpcStream<ProcessEvent>, ClientError> {
        self.connect_from(process, None, keepalive).await
    }

    /// `connect` that first replays the process's kept data events from
    /// number `replay_from` on (Warren's agent only; see its fan-out).
    pub async fn connect_from(
        &self,
        process: ProcessSelector,
        replay_from: Option<u64>,
        keepalive: Option<Duration>,
    ) -> Result<RpcStream<ProcessEvent>, ClientError> {
        let req = proc::ConnectRequest {
            process: Some(process),
            replay_from,
        };
        let stream = self
            .server_stream::<_, proc::ConnectResponse>("process.Process/Connect", &req, keepalive)
            .await?;
        Ok(process_events(stream, |r| r.event))
    }

    pub async fn list(&self) -> Result<Vec<ProcessInfo>, ClientError> {
        let resp: proc::ListResponse = self
            .unary("process.Process/List", &proc::ListRequest {})
            .await?;
        Ok(resp.processes)
    }

    pub async fn send_input(
        &self,
        process: ProcessSelector,
        input: ProcessInput,
    ) -> Result<(), ClientError> {
        let req = proc::SendInputRequest {
            process: Some(process),
            input: Some(input),
        };
        self.unary::<_, proc::SendInputResponse>("process.Process/SendInput", &req)
            .await
            .map(drop)
    }

    /// Sends input in order over one client stream.
    pub async fn stream_input<S>(
        &self,
        process: ProcessSelector,
        inputs: S,
    ) -> Result<(), ClientError>
    where
        S: Stream<Item = ProcessInput> + Send + 'static,
    {
        let start = proc::StreamInputRequest::Start(proc::StreamInputStart {
            process: Some(process),
        });
        let data = inputs
            .map(|i| proc::StreamInputRequest::Data(proc::StreamInputData { input: Some(i) }));
        let messages = futures::stream::once(async move { start }).chain(data);
        self.client_stream::<_, proc::StreamInputResponse, _>(
            "process.Process/StreamInput",
            messages,
        )
        .await
        .map(drop)
    }

    pub async fn close_stdin(&self, process: ProcessSelector) -> Result<(), ClientError> {
        let req = proc::CloseStdinRequest {
            process: Some(process),
        };
        self.unary::<_, proc::CloseStdinResponse>("process.Process/CloseStdin", &req)
            .await
            .map(drop)
    }

    pub async fn send_signal(
        &self,
        process: ProcessSelector,
        signal: Signal,
    ) -> Result<(), ClientError> {
        let req = proc::SendSignalRequest {
            process: Some(process),
            signal,
        };
        self.unary::<_, proc::SendSignalResponse>("process.Process/SendSignal", &req)
            .await
            .map(drop)
    }

    /// Resizes a process's PTY.
    pub async fn resize(&self, process: ProcessSelector, size: PtySize) -> Result<(), ClientError> {
        let req = proc::UpdateRequest {
            process: Some(process),
            pty: Some(proc::Pty { size: Some(size) }),
        };
        self.unary::<_, proc::UpdateResponse>("process.Process/Update", &req)
            .await
            .map(drop)
    }

    // ---- filesystem.Filesystem ----

    pub async fn stat(&self, path: &str) -> Result<EntryInfo, ClientError> {
        let resp: fs::StatResponse = self
            .unary(
                "filesystem.Filesystem/Stat",
                &fs::PathRequest { path: path.into() },
            )
            .await?;
        resp.entry
            .ok_or_else(|| ClientError::Protocol("Stat answered without an entry".into()))
    }

    /// Creates a directory and its parents; `already_exists` if it exists.
    pub async fn make_dir(&self, path: &str) -> Result<EntryInfo, ClientError> {
        let resp: fs::MakeDirResponse = self
            .unary(
                "filesystem.Filesystem/MakeDir",
                &fs::PathRequest { path: path.into() },
            )
            .await?;
        resp.entry
            .ok_or_else(|| ClientError::Protocol("MakeDir answered without an entry".into()))
    }

    pub async fn rename(&self, source: &str, destination: &str) -> Result<EntryInfo, ClientError> {
        let req = fs::MoveRequest {
            source: source.into(),
            destination: destination.into(),
        };
        let resp: fs::MoveResponse = self.unary("filesystem.Filesystem/Move", &req).await?;
        resp.entry
            .ok_or_else(|| ClientError::Protocol("Move answered without an entry".into()))
    }

    pub async fn list_dir(&self, path: &str, depth: u32) -> Result<Vec<EntryInfo>, ClientError> {
        let req = fs::ListDirRequest {
            path: path.into(),
            depth,
        };
        let resp: fs::ListDirResponse = self.unary("filesystem.Filesystem/ListDir", &req).await?;
        Ok(resp.entries)
    }

    pub async fn remove(&self, path: &str) -> Result<(), ClientError> {
        self.unary::<_, fs::RemoveResponse>(
            "filesystem.Filesystem/Remove",
            &fs::PathRequest { path: path.into() },
        )
        .await
        .map(drop)
    }

    /// Watches a directory; the stream yields `start` first, then events.
    pub async fn watch_dir(
        &self,
        req: &WatchDirRequest,
        keepalive: Option<Duration>,
    ) -> Result<RpcStream<WatchDirResponse>, ClientError> {
        self.server_stream("filesystem.Filesystem/WatchDir", req, keepalive)
            .await
    }

    pub async fn create_watcher(&self, req: &WatchDirRequest) -> Result<String, ClientError> {
        let resp: fs::CreateWatcherResponse = self
            .unary("filesystem.Filesystem/CreateWatcher", req)
            .await?;
        Ok(resp.watcher_id)
    }

    pub async fn get_watcher_events(
        &self,
        watcher_id: &str,
    ) -> Result<Vec<FilesystemEvent>, ClientError> {
        let req = fs::WatcherRequest {
            watcher_id: watcher_id.into(),
        };
        let resp: fs::GetWatcherEventsResponse = self
            .unary("filesystem.Filesystem/GetWatcherEvents", &req)
            .await?;
        Ok(resp.events)
    }

    pub async fn remove_watcher(&self, watcher_id: &str) -> Result<(), ClientError> {
        let req = fs::WatcherRequest {
            watcher_id: watcher_id.into(),
        };
        self.unary::<_, fs::RemoveWatcherResponse>("filesystem.Filesystem/RemoveWatcher", &req)
            .await
            .map(drop)
    }

    // ---- /files ----

    fn files_url(&self, path: &str) -> url::Url {
        let mut url = self.url("/files");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("path", path);
            if let Some(user) = &self.user {
                q.append_pair("username", user);
            }
        }
        url
    }

    /// Streams a file's bytes.
    pub async fn read_file(&self, path: &str) -> Result<ByteStream, ClientError> {
        let resp = self
            .request(reqwest::Method::GET, self.files_url(path))
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let resp = check_http(resp).await?;
        Ok(Box::pin(
            resp.bytes_stream().map_err(ClientError::Transport),
        ))
    }

    /// Reads a whole file into memory.
    pub async fn read_file_to_vec(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let mut stream = self.read_file(path).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Writes a file (parents are created), replacing it atomically.
    pub async fn write_file(
        &self,
        path: &str,
        data: impl Into<Bytes>,
    ) -> Result<WriteInfo, ClientError> {
        self.write_body(path, reqwest::Body::from(data.into()))
            .await
    }

    /// Writes a file from a stream of chunks.
    pub async fn write_file_stream<S, E>(
        &self,
        path: &str,
        chunks: S,
    ) -> Result<WriteInfo, ClientError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        self.write_body(path, reqwest::Body::wrap_stream(chunks))
            .await
    }

    async fn write_body(&self, path: &str, body: reqwest::Body) -> Result<WriteInfo, ClientError> {
        let resp = self
            .request(reqwest::Method::POST, self.files_url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let resp = check_http(resp).await?;
        let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
        let mut infos: Vec<WriteInfo> = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("/files answer: {e}")))?;
        infos
            .pop()
            .ok_or_else(|| ClientError::Protocol("/files answered an empty list".into()))
    }
}

/// Passes a successful response through; turns an error status into [`ClientError::Rpc`].
async fn check_http(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let bytes = resp.bytes().await.map_err(ClientError::Transport)?;
    Err(error_from_body(status.as_u16(), &bytes))
}

/// The error for an HTTP error answer: a Connect error body keeps its code,
/// anything else maps from the status.
fn error_from_body(status: u16, body: &[u8]) -> ClientError {
    if let Ok(e) = serde_json::from_slice::<ConnectError>(body) {
        return ClientError::Rpc(e);
    }
    let message = match serde_json::from_slice::<HttpError>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(512).collect(),
    };
    if status == 507 {
        return ClientError::InsufficientStorage(message);
    }
    ClientError::Rpc(ConnectError::new(Code::from_http_status(status), message))
}

struct DecodeState<B> {
    body: B,
    decoder: FrameDecoder,
    done: bool,
}

/// Turns an enveloped body into its messages, ending at the end-of-stream frame.
fn decode_messages<T, B>(body: B, max_frame: usize) -> RpcStream<T>
where
    T: DeserializeOwned + Send + 'static,
    B: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let state = DecodeState {
        body,
        decoder: FrameDecoder::new(max_frame),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.decoder.next_frame() {
                Err(e) => {
                    st.done = true;
                    return Some((Err(e.into()), st));
                }
                Ok(Some(frame)) if frame.is_end_stream() => {
                    st.done = true;
                    finish_body(&mut st.body).await;
                    return match frame.end_stream() {
                        Ok(end) => end.error.map(|e| (Err(ClientError::Rpc(e)), st)),
                        Err(e) => Some((Err(e.into()), st)),
                    };
                }
                Ok(Some(frame)) => {
                    let item = frame.json::<T>().map_err(ClientError::from);
                    return Some((item, st));
                }
                Ok(None) => {}
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.decoder.push(&chunk),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(ClientError::Transport(e)), st));
                }
                None => {
                    st.done = true;
                    let err =
                        ClientError::Protocol("stream ended without an end-of-stream frame".into());
                    return Some((Err(err), st));
                }
            }
        }
    }))
}

/// What the HTTP stack says when writing a request to its connection
/// failed (headers or body: it reports both so).
const WRITE_FAILED: &str = "error writing a body to connection";

/// Whether `e` says the request could not be written out whole: the
/// connection failed while the request's bytes were being written, so the
/// server cannot have read the whole request.
fn unwritten(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.to_string() == WRITE_FAILED {
            return true;
        }
        source = err.source();
    }
    false
}

/// Reads `body` to its end (bounded, see the module docs), so its
/// connection returns to the pool.
async fn finish_body<B>(body: &mut B)
where
    B: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    let drain = async {
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > DRAIN_MAX_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_LIMIT, drain).await;
}

/// The process events of a `start` or `connect` stream (messages without
/// an event are skipped). Once the `end` event arrives the stream is read
/// to its end (bounded, see the module docs) before `end` is yielded, and
/// nothing follows it.
fn process_events<R: Send + 'static>(
    stream: RpcStream<R>,
    event: fn(R) -> Option<ProcessEvent>,
) -> RpcStream<ProcessEvent> {
    Box::pin(futures::stream::unfold(
        Some(stream),
        move |stream| async move {
            let mut stream = stream?;
            loop {
                match stream.next().await? {
                    Ok(r) => match event(r) {
                        Some(ProcessEvent::End(end)) => {
                            let rest = async { while stream.next().await.is_some() {} };
                            let _ = tokio::time::timeout(DRAIN_LIMIT, rest).await;
                            return Some((Ok(ProcessEvent::End(end)), None));
                        }
                        Some(ev) => return Some((Ok(ev), Some(stream))),
                        None => continue,
                    },
                    Err(e) => return Some((Err(e), Some(stream))),
                }
            }
        },
    ))
}
