use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use warren_api_types::{PtyClientMessage, PtyServerMessage};
use warren_core::{RecordingId, SandboxId, WarrenError};
use warren_envd::process::{DataEvent, ProcessEvent};

use crate::audit::{Action, AuditActor, Event};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::extract::SandboxPath;
use crate::service::recordings::CastWriter;
use crate::service::{PtyEvents, PtySession};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PtyQuery {
    #[serde(default = "default_cols")]
    pub cols: u16,
    #[serde(default = "default_rows")]
    pub rows: u16,
    /// Program to run; default a login bash.
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

fn default_cols() -> u16 {
    80
}
fn default_rows() -> u16 {
    24
}

/// Opens an interactive terminal over a WebSocket. Binary frames carry
/// terminal bytes both ways; the client sends `PtyClientMessage` text frames
/// to resize; the server ends with a `PtyServerMessage` exit frame.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/pty", tag = "sandboxes",
    params(("id" = String, Path), PtyQuery),
    responses((status = 101, description = "WebSocket upgrade"),
        (status = 400, description = "not a WebSocket handshake, or a bad parameter", body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn pty(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiQuery(q): ApiQuery<PtyQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // A request that is no WebSocket handshake is bad input like any other
    // (an API error, not axum's plain-text rejection); no terminal opens.
    let ws = ws.map_err(|r| {
        WarrenError::invalid(format!("expected a WebSocket handshake: {}", r.body_text()))
    })?;
    let actor = AuditActor::from_caller(&caller);
    let title = q.cmd.clone().unwrap_or_else(|| "bash -l".to_owned());
    let (session, events) = state
        .sandboxes
        .open_pty(&id, q.cmd, q.user.as_deref(), q.cols, q.rows, &actor)
        .await?;
    // A terminal that cannot be recorded still opens; the log says why.
    let recording = match state
        .sandboxes
        .recordings()
        .start(&id, q.cols, q.rows, &title)
        .await
    {
        Ok(recording) => Some(recording),
        Err(e) => {
            tracing::warn!(sandbox = %id, error = %e, "this terminal is not recorded");
            None
        }
    };
    Ok(ws.on_upgrade(move |socket| async move {
        let recorder = Recorder::new(recording);
        bridge(socket, session, events, &recorder).await;
        recorder.keep(&state, &id, &actor).await;
    }))
}

/// The terminal's recording while it is open: output and resizes go in;
/// a write that fails ends the recording, never the terminal.
struct Recorder {
    id: Option<RecordingId>,
    writer: tokio::sync::Mutex<Option<CastWriter>>,
}

impl Recorder {
    fn new(recording: Option<(RecordingId, CastWriter)>) -> Self {
        let (id, writer) = recording.unzip();
        Self {
            id,
            writer: tokio::sync::Mutex::new(writer),
        }
    }

    async fn output(&self, bytes: &[u8]) {
        let mut writer = self.writer.lock().await;
        if let Some(w) = writer.as_mut()
            && let Err(e) = w.output(bytes).await
        {
            tracing::warn!(error = %e, "the terminal's recording stopped");
            *writer = None;
        }
    }

    async fn resize(&self, cols: u16, rows: u16) {
        let mut writer = self.writer.lock().await;
        if let Some(w) = writer.as_mut()
            && w.resize(cols, rows).await.is_err()
        {
            *writer = None;
        }
    }

    /// Puts the recording in place and audits its digest.
    async fn keep(self, state: &AppState, sandbox: &SandboxId, actor: &AuditActor) {
        let (Some(id), Some(writer)) = (self.id, self.writer.into_inner()) else {
            return;
        };
        match writer.finish().await {
            Ok(written) => {
                let event = Event::sandbox(Action::PtyRecord, sandbox, warren_audit::Outcome::Ok)
                    .with("recording", id.as_str())
                    .with("bytes", written.bytes)
                    .with("sha256", written.sha256)
                    .with("truncated", written.truncated);
                state.audit.record_done(actor, event).await;
            }
            Err(e) => {
                tracing::warn!(sandbox = %sandbox, error = %e, "a terminal recording was lost")
            }
        }
    }
}

/// Copies keyboard input to the process and its output to the client (and
/// the recording) until either side ends; a client that leaves hangs the
/// process up.
async fn bridge(
    socket: WebSocket,
    session: PtySession,
    mut events: PtyEvents,
    recorder: &Recorder,
) {
    let (mut to_client, mut from_client) = socket.split();
    let session = std::sync::Arc::new(session);
    let input = {
        let session = session.clone();
        async move {
            while let Some(Ok(msg)) = from_client.next().await {
                let ok = match msg {
                    Message::Binary(bytes) => session.input(bytes.to_vec()).await.is_ok(),
                    Message::Text(text) => match serde_json::from_str::<PtyClientMessage>(&text) {
                        Ok(PtyClientMessage::Resize { cols, rows }) => {
                            recorder.resize(cols, rows).await;
                            session.resize(cols, rows).await.is_ok()
                        }
                        Err(_) => true,
                    },
                    Message::Close(_) => false,
                    _ => true,
                };
                if !ok {
                    break;
                }
            }
        }
    };
    let output = async {
        let mut exit_code = -1;
        while let Some(ev) = events.next().await {
            match ev {
                Ok(ProcessEvent::Data(
                    DataEvent::Pty(b) | DataEvent::Stdout(b) | DataEvent::Stderr(b),
                )) => {
                    recorder.output(&b).await;
                    if to_client.send(Message::Binary(b.into())).await.is_err() {
                        return None;
                    }
                }
                Ok(ProcessEvent::End(end)) => {
                    exit_code = end.exit_code;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let exit = PtyServerMessage::Exit { exit_code };
        let _ = to_client
            .send(Message::Text(
                serde_json::to_string(&exit).unwrap_or_default().into(),
            ))
            .await;
        let _ = to_client.close().await;
        Some(())
    };
    tokio::select! {
        _ = input => session.hang_up().await,
        _ = output => {}
    }
}
