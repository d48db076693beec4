//! A tiny in-process stand-in for the daemon's `/v1` API on 127.0.0.1, so
//! the real `warren` binary can be run against it. It keeps sandboxes and
//! files in memory and scripts `exec` by the command's first word.
//!
//! Most CLI tests run against the daemon's own API in process over the fake
//! runtime (`cli_server.rs`, `shell_tty.rs`). This stand-in stays for what
//! that cannot produce: bodies cut into 7-byte chunks (lines and UTF-8
//! sequences split), an exec that the agent fails to start, one killed by a
//! signal and a stream that breaks off; `cp` of directories (the fake agent
//! has no filesystem service); template builds (a real build needs
//! mmdebstrap and minutes); and audit logs with an edited entry or rolled
//! back (the real log is never served tampered).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use warren_api_types::{
    ApiError, BuildEvent, CreateSandboxRequest, ExecEvent, ExecRequest, FileWritten, Sandbox,
    SandboxList, SetTimeoutRequest, Template, TemplateList,
};

pub const KEY: &str = "test-key";
/// The id every created sandbox gets, and one that always exists.
pub const ID: &str = "abcdefghij0123456789";
/// A well-formed id the mock does not know.
pub const MISSING: &str = "zzzzzzzzzz0000000000";

/// The audit log the mock serves: export lines, signed heads, public key.
#[derive(Default, Clone)]
pub struct AuditLog {
    pub lines: Vec<String>,
    pub heads: Vec<serde_json::Value>,
    pub public_key: String,
}

#[derive(Default)]
struct Inner {
    sandboxes: HashMap<String, Sandbox>,
    files: HashMap<String, Vec<u8>>,
    audit: AuditLog,
}

#[derive(Clone, Default)]
pub struct Mock(Arc<Mutex<Inner>>);

impl Mock {
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().files.get(path).cloned()
    }

    pub fn put_file(&self, path: &str, data: Vec<u8>) {
        self.0.lock().unwrap().files.insert(path.into(), data);
    }

    /// Replaces the audit log the mock serves.
    pub fn set_audit(&self, log: AuditLog) {
        self.0.lock().unwrap().audit = log;
    }
}

fn sandbox(id: &str) -> Sandbox {
    Sandbox {
        id: id.into(),
        template: "base".into(),
        template_version: Some("3f2a9c0d1e4b5a67".into()),
        state: "running".into(),
        cpus: 1,
        memory_mb: 512,
        disk_mb: 10240,
        metadata: Default::default(),
        team: "tmockteam000".into(),
        owner: "umockuser000".into(),
        created_at: "2026-01-01T12:00:00Z".into(),
        expires_at: "2099-01-01T12:05:00Z".into(),
        auto_resume: true,
        on_idle: "kill".into(),
        pause_mode: None,
        idle_timeout_s: None,
        paused_ttl_s: 604800,
        source_snapshot: None,
        traffic_token: None,
        network: Default::default(),
        volumes: Vec::new(),
        usage: None,
    }
}

fn api_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ApiError {
            code: code.into(),
            message,
            retry_after_s: None,
        }),
    )
        .into_response()
}

fn not_found(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("sandbox {id} does not exist"),
    )
}

/// Starts the mock on an ephemeral loopback port in its own thread.
pub fn start() -> (String, Mock) {
    let mock = Mock::default();
    mock.0
        .lock()
        .unwrap()
        .sandboxes
        .insert(ID.into(), sandbox(ID));
    let app = router(mock.clone());
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}"), mock)
}

fn router(mock: Mock) -> Router {
    Router::new()
        .route("/v1/sandboxes", post(create).get(list))
        .route("/v1/sandboxes/{id}", get(info).delete(kill))
        .route("/v1/sandboxes/{id}/timeout", post(set_timeout))
        .route("/v1/sandboxes/{id}/pause", post(pause))
        .route("/v1/sandboxes/{id}/exec", post(exec))
        .route("/v1/sandboxes/{id}/files", get(read_file).put(write_file))
        .route("/v1/templates", get(templates))
        .route("/v1/templates/{name}/build", post(build))
        .route("/v1/audit/entries", get(audit_entries))
        .route("/v1/audit/heads", get(audit_heads))
        .route("/v1/sandboxes/{id}/timeline", get(timeline))
        .layer(middleware::from_fn(auth))
        .with_state(mock)
}

async fn auth(req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"));
    if ok {
        next.run(req).await
    } else {
        api_error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or invalid API key".into(),
        )
    }
}

async fn create(State(m): State<Mock>, Json(req): Json<CreateSandboxRequest>) -> Response {
    let mut s = sandbox(ID);
    s.metadata = req.metadata.clone();
    s.cpus = req.cpus.unwrap_or(1);
    s.memory_mb = req.memory_mb.unwrap_or(512);
    s.disk_mb = req.disk_mb.unwrap_or(10240);
    let mut inner = m.0.lock().unwrap();
    inner.sandboxes.insert(ID.into(), s.clone());
    (StatusCode::CREATED, Json(s)).into_response()
}

async fn list(State(m): State<Mock>) -> Json<SandboxList> {
    let inner = m.0.lock().unwrap();
    let mut sandboxes: Vec<Sandbox> = inner.sandboxes.values().cloned().collect();
    sandboxes.sort_by(|a, b| a.id.cmp(&b.id));
    Json(SandboxList { sandboxes })
}

async fn info(State(m): State<Mock>, Path(id): Path<String>) -> Response {
    match m.0.lock().unwrap().sandboxes.get(&id) {
        Some(s) => Json(s.clone()).into_response(),
        None => not_found(&id),
    }
}

async fn kill(State(m): State<Mock>, Path(id): Path<String>) -> Response {
    match m.0.lock().unwrap().sandboxes.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&id),
    }
}

async fn set_timeout(
    State(m): State<Mock>,
    Path(id): Path<String>,
    Json(req): Json<SetTimeoutRequest>,
) -> Response {
    let mut inner = m.0.lock().unwrap();
    let Some(s) = inner.sandboxes.get_mut(&id) else {
        return not_found(&id);
    };
    s.expires_at = format!("2099-01-01T00:00:{:02}Z", req.timeout_s % 60);
    Json(s.clone()).into_response()
}

/// Pauses with the body's `mode` (`full` without a body); any other
/// body is refused as the daemon refuses it.
async fn pause(State(m): State<Mock>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let mode = if body.is_empty() {
        "full".to_owned()
    } else {
        match serde_json::from_slice::<warren_api_types::PauseRequest>(&body) {
            Ok(req) => req.mode.unwrap_or_else(|| "full".into()),
            Err(e) => return api_error(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
        }
    };
    let mut inner = m.0.lock().unwrap();
    let Some(s) = inner.sandboxes.get_mut(&id) else {
        return not_found(&id);
    };
    s.state = "paused".into();
    s.pause_mode = Some(mode);
    Json(s.clone()).into_response()
}

fn line(ev: &ExecEvent) -> Vec<u8> {
    let mut v = serde_json::to_vec(ev).unwrap();
    v.push(b'\n');
    v
}

fn out(data: &[u8]) -> ExecEvent {
    ExecEvent::Stdout {
        data: BASE64.encode(data),
    }
}

fn exit_ev(code: i32, signal: Option<&str>, error: Option<&str>) -> ExecEvent {
    ExecEvent::Exit {
        exit_code: code,
        signal: signal.map(Into::into),
        error: error.map(Into::into),
    }
}

/// Sends `parts` as the body, each split into 7-byte chunks (so lines and
/// UTF-8 sequences are cut), with a pause of `pause[i]` after part `i`.
fn chunked_body(parts: Vec<(Vec<u8>, Duration)>) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
    tokio::spawn(async move {
        for (bytes, pause) in parts {
            for c in bytes.chunks(7) {
                if tx.send(Ok(Bytes::copy_from_slice(c))).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(pause).await;
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

async fn exec(Path(id): Path<String>, Json(req): Json<ExecRequest>) -> Response {
    if id != ID {
        return not_found(&id);
    }
    let now = Duration::ZERO;
    let start = (line(&ExecEvent::Start { pid: 42 }), now);
    let cmd: Vec<&str> = req.cmd.iter().map(String::as_str).collect();
    let parts = match cmd.as_slice() {
        ["echo", rest @ ..] => vec![
            start,
            (line(&out(format!("{}\n", rest.join(" ")).as_bytes())), now),
            (
                line(&ExecEvent::Stderr {
                    data: BASE64.encode("wärn\n"),
                }),
                now,
            ),
            (line(&exit_ev(0, None, None)), now),
        ],
        ["killed"] => vec![start, (line(&exit_ev(-1, Some("SIGKILL"), None)), now)],
        ["missing"] => vec![(
            line(&exit_ev(
                -1,
                None,
                Some("no such file or directory: missing"),
            )),
            now,
        )],
        ["truncated"] => vec![start, (line(&out(b"partial")), now)],
        _ => vec![(line(&exit_ev(127, None, None)), now)],
    };
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        chunked_body(parts),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct PathQuery {
    path: String,
}

async fn read_file(
    State(m): State<Mock>,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
) -> Response {
    if id != ID {
        return not_found(&id);
    }
    match m.file(&q.path) {
        Some(data) => {
            let parts = data
                .chunks(100_000)
                .map(|c| (c.to_vec(), Duration::ZERO))
                .collect();
            let len = data.len().to_string();
            ([(header::CONTENT_LENGTH, len)], chunked_body(parts)).into_response()
        }
        None => api_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} does not exist in sandbox {id}", q.path),
        ),
    }
}

async fn write_file(
    State(m): State<Mock>,
    Path(id): Path<String>,
    Query(q): Query<PathQuery>,
    body: Body,
) -> Response {
    if id != ID {
        return not_found(&id);
    }
    let mut stream = body.into_data_stream();
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => data.extend_from_slice(&c),
            Err(e) => {
                return api_error(StatusCode::BAD_REQUEST, "invalid_argument", e.to_string());
            }
        }
    }
    let size = data.len() as u64;
    m.put_file(&q.path, data);
    Json(FileWritten { path: q.path, size }).into_response()
}

async fn templates() -> Json<TemplateList> {
    Json(TemplateList {
        templates: vec![Template {
            name: "base".into(),
            status: "ready".into(),
            size_bytes: 317 * 1024 * 1024,
            built_at: Some("2026-01-01T12:00:00Z".into()),
            version: Some("3f2a9c0d1e4b5a67".into()),
            tags: vec!["latest".into()],
            error: None,
        }],
    })
}

async fn build(Path(name): Path<String>) -> Response {
    let ev = |e: BuildEvent| {
        let mut v = serde_json::to_vec(&e).unwrap();
        v.push(b'\n');
        (v, Duration::from_millis(20))
    };
    let mut parts = vec![
        ev(BuildEvent::Log {
            line: format!("building {name}"),
        }),
        ev(BuildEvent::Log {
            line: "installing packages".into(),
        }),
    ];
    parts.push(if name == "broken" {
        ev(BuildEvent::Error {
            message: "mmdebstrap exited with status 1".into(),
        })
    } else {
        ev(BuildEvent::Done {
            template: Template {
                name: name.clone(),
                status: "ready".into(),
                size_bytes: 1024 * 1024,
                built_at: None,
                version: Some("0123456789abcdef".into()),
                tags: vec!["latest".into()],
                error: None,
            },
        })
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        chunked_body(parts),
    )
        .into_response()
}

async fn audit_entries(State(m): State<Mock>, RawQuery(q): RawQuery) -> Response {
    let log = m.0.lock().unwrap().audit.clone();
    if q.unwrap_or_default().contains("format=jsonl") {
        let body: String = log.lines.iter().map(|l| format!("{l}\n")).collect();
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }
    let entries: Vec<warren_api_types::AuditLine> = log
        .lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Json(warren_api_types::AuditEntryList {
        entries,
        next_after: None,
    })
    .into_response()
}

async fn audit_heads(State(m): State<Mock>, RawQuery(q): RawQuery) -> Response {
    let log = m.0.lock().unwrap().audit.clone();
    let heads = if q.unwrap_or_default().contains("all=true") {
        log.heads
    } else {
        log.heads.last().cloned().into_iter().collect()
    };
    Json(serde_json::json!({"public_key": log.public_key, "heads": heads})).into_response()
}

async fn timeline(Path(id): Path<String>) -> Response {
    if id != ID {
        return not_found(&id);
    }
    Json(warren_api_types::Timeline {
        sandbox: id,
        events: vec![warren_api_types::TimelineEvent {
            index: 4,
            time: "2026-01-01T12:00:01Z".into(),
            actor: vec!["key:abc".into()],
            kind: "command".into(),
            outcome: "ok".into(),
            summary: "ran `ls -l` as user: exit 2 in 12 ms".into(),
            exit_code: Some(2),
            duration_ms: Some(12),
            details: Default::default(),
        }],
    })
    .into_response()
}
