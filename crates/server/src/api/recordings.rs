//! `GET /v1/sandboxes/{id}/recordings` and `…/recordings/{recording}`: the
//! sandbox's recorded terminal sessions
//! ([`crate::service::recordings`]).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use warren_api_types::{ApiError, RecordingList};
use warren_core::{RecordingId, WarrenError};

use crate::error::ApiResult;
use crate::extract::{SandboxPath, SandboxSnapshotPath};
use crate::state::AppState;

fn unreadable(e: impl std::fmt::Display) -> WarrenError {
    tracing::warn!(error = %e, "reading terminal recordings");
    WarrenError::internal("the terminal recordings could not be read")
}

/// The sandbox's recorded terminal sessions, oldest first.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/recordings", tag = "sandboxes",
    params(("id" = String, Path)),
    responses((status = 200, body = RecordingList), (status = 404, body = ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<RecordingList>> {
    let recordings = state
        .sandboxes
        .recordings()
        .list(&id)
        .await
        .map_err(unreadable)?;
    Ok(Json(RecordingList { recordings }))
}

/// One recorded terminal session as an asciicast v2 file: a header line,
/// then `[seconds, "o", text]` output and `[seconds, "r", "COLSxROWS"]`
/// resize events.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/recordings/{recording}", tag = "sandboxes",
    params(("id" = String, Path), ("recording" = String, Path, description = "an id from the listing")),
    responses((status = 200, content_type = "application/x-asciicast", body = String),
        (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn download(
    State(state): State<AppState>,
    SandboxSnapshotPath(id, recording): SandboxSnapshotPath,
) -> ApiResult<Response> {
    let recording: RecordingId = recording.parse()?;
    let path = state.sandboxes.recordings().path(&id, &recording);
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WarrenError::not_found(format!(
                "sandbox {id} has no terminal recording {recording} (gone after 30 days, or past the newest 50)"
            ))
            .into());
        }
        Err(e) => return Err(unreadable(e).into()),
    };
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        [(header::CONTENT_TYPE, "application/x-asciicast")],
        Body::from_stream(stream),
    )
        .into_response())
}
