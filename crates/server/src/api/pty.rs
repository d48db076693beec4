use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use warren_api_types::{PtyClientMessage, PtyServerMessage};
use warren_core::WarrenError;
use warren_envd::process::{DataEvent, ProcessEvent};

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::extract::SandboxPath;
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
    let (session, events) = state
        .sandboxes
        .open_pty(
            &id,
            q.cmd,
            q.user.as_deref(),
            q.cols,
            q.rows,
            &AuditActor::from_caller(&caller),
        )
        .await?;
    Ok(ws.on_upgrade(move |socket| bridge(socket, session, events)))
}

/// Copies keyboard input to the process and its output to the client until
/// either side ends; a client that leaves hangs the process up.
async fn bridge(socket: WebSocket, session: PtySession, mut events: PtyEvents) {
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
