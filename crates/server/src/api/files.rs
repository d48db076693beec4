use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use warren_api_types::FileWritten;

use super::{AppState, UPLOAD_LIMIT};
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::extract::SandboxPath;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Path inside the sandbox; relative paths start at the user's home.
    #[serde(default)]
    pub path: String,
    /// User whose permissions apply; default `user`.
    #[serde(default)]
    pub user: Option<String>,
}

/// Downloads a file from the sandbox as raw bytes.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/files", tag = "files",
    params(("id" = String, Path), FileQuery),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn download(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> ApiResult<Response> {
    let stream = state
        .sandboxes
        .read_file(&id, &q.path, q.user.as_deref())
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Uploads the raw request body to a file in the sandbox (parents are
/// created; the file is replaced atomically).
#[utoipa::path(put, path = "/v1/sandboxes/{id}/files", tag = "files",
    params(("id" = String, Path), FileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FileWritten), (status = 404, body = warren_api_types::ApiError),
        (status = 413, body = warren_api_types::ApiError)))]
pub async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiQuery(q): ApiQuery<FileQuery>,
    body: Body,
) -> ApiResult<Json<FileWritten>> {
    let size = state
        .sandboxes
        .write_file(
            &id,
            &q.path,
            q.user.as_deref(),
            body.into_data_stream(),
            UPLOAD_LIMIT as u64,
            &AuditActor::from_caller(&caller),
        )
        .await?;
    Ok(Json(FileWritten { path: q.path, size }))
}
