//! E2B's volume content API (`spec/openapi-volumecontent.yml`): one
//! volume's files read and written without a sandbox, on the API listener
//! beside the control plane, so `E2B_VOLUME_API_URL` is `E2B_API_URL`.
//!
//! - `GET|PATCH|DELETE /volumecontent/{volumeID}/path`: stat, owner and
//!   mode (200 with the entry), remove (204; a directory with all below).
//! - `GET|POST /volumecontent/{volumeID}/dir`: list `depth` levels (1 to
//!   16), make (201; `force` makes the parents and accepts an existing
//!   directory, else an existing name is 409).
//! - `GET|PUT /volumecontent/{volumeID}/file`: download, upload (201;
//!   replaces an existing file unless `force=false`, then 409).
//!
//! Authentication is the volume token alone (`Authorization: Bearer`,
//! [`crate::auth::grant::VolumeHolder`]): an API key is not accepted here,
//! a missing or unknown token is 401, another volume's token 403. Reads
//! need the key's `sandboxes:read`, writes its `sandboxes:create`. Paths
//! and file operations: `service::volume_content`. Writes, makes, updates
//! and removes are audited as the token's holder.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use warren_core::{ErrorKind, Scope, WarrenError};

use super::error::{E2bError, E2bResult};
use super::query::E2bQuery;
use super::volume_wire::{ContentQuery, EntryStat, Metadata};
use crate::audit::{Action, AuditActor, Event};
use crate::auth::grant::VolumeHolder;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::service::volume_content::{
    self as content, ContentError, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, VolumePath, fs,
};
use crate::state::AppState;

/// The content API's routes, outside the API-key check.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/volumecontent/{id}/path",
            get(stat).patch(update).delete(remove),
        )
        .route("/volumecontent/{id}/dir", get(list).post(make_dir))
        .route(
            "/volumecontent/{id}/file",
            get(download).put(upload).layer(DefaultBodyLimit::disable()),
        )
}

/// The holder of the request's volume token, if it opens volume `id` with
/// `scope`.
async fn holder(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    scope: Scope,
) -> E2bResult<VolumeHolder> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            WarrenError::new(
                ErrorKind::Unauthenticated,
                "a volume token is required: Authorization: Bearer <token> from POST /volumes or GET /volumes/{id}",
            )
        })?;
    let holder = state.grants.check_volume(token, id).await?;
    if !holder.permissions.contains(scope) {
        return Err(WarrenError::new(
            ErrorKind::PermissionDenied,
            format!(
                "the key this volume token was handed to lacks the scope {scope} (its role is {})",
                holder.key.role
            ),
        )
        .into());
    }
    Ok(holder)
}

/// Runs `op` on the volume's directory fd, off the async threads.
async fn on_volume<T: Send + 'static>(
    state: &AppState,
    holder: &VolumeHolder,
    op: impl FnOnce(&std::os::fd::OwnedFd) -> Result<T, ContentError> + Send + 'static,
) -> E2bResult<T> {
    let dir = state.sandboxes.volume_dir(&holder.volume);
    tokio::task::spawn_blocking(move || op(&fs::open_root(&dir)?))
        .await
        .map_err(|e| WarrenError::internal(format!("a volume file operation panicked: {e}")))?
        .map_err(E2bError::from)
}

async fn audit(state: &AppState, holder: &VolumeHolder, action: Action, path: &VolumePath) {
    let actor = AuditActor::volume_token(&holder.volume.team, &holder.key.user);
    let event = Event::new(action, holder.volume.id.to_string())
        .with("name", holder.volume.name.clone())
        .with("path", path.to_string())
        .with("key", holder.key.id.to_string());
    state.audit.record_done(&actor, event).await;
}

pub async fn stat(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
) -> E2bResult<Json<EntryStat>> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesRead).await?;
    let path = VolumePath::parse(q.path()?)?;
    let entry = on_volume(&state, &holder, move |root| fs::stat(root, &path)).await?;
    Ok(Json(entry.into()))
}

pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
    body: Result<ApiJson<Metadata>, AppError>,
) -> E2bResult<Json<EntryStat>> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesCreate).await?;
    let path = VolumePath::parse(q.path()?)?;
    let ApiJson(m) = body?;
    let uid = m.uid.map(|u| content::check_id("uid", u)).transpose()?;
    let gid = m.gid.map(|g| content::check_id("gid", g)).transpose()?;
    let mode = m.mode.map(content::check_mode).transpose()?;
    let at = path.clone();
    let entry = on_volume(&state, &holder, move |root| {
        fs::update(root, &at, uid, gid, mode)
    })
    .await?;
    audit(&state, &holder, Action::VolumeUpdate, &path).await;
    Ok(Json(entry.into()))
}

pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
) -> E2bResult<StatusCode> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesCreate).await?;
    let path = VolumePath::parse(q.path()?)?;
    let at = path.clone();
    on_volume(&state, &holder, move |root| fs::remove(root, &at)).await?;
    audit(&state, &holder, Action::VolumeRemove, &path).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
) -> E2bResult<Json<Vec<EntryStat>>> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesRead).await?;
    let path = VolumePath::parse(q.path()?)?;
    let depth = content::check_depth(q.depth)?;
    let entries = on_volume(&state, &holder, move |root| fs::list(root, &path, depth)).await?;
    Ok(Json(entries.into_iter().map(EntryStat::from).collect()))
}

pub async fn make_dir(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
) -> E2bResult<(StatusCode, Json<EntryStat>)> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesCreate).await?;
    let path = VolumePath::parse(q.path()?)?;
    let owner = content::owner(q.uid, q.gid, q.mode, DEFAULT_DIR_MODE)?;
    let parents = content::owner(q.uid, q.gid, None, DEFAULT_DIR_MODE)?;
    let force = q.force.unwrap_or(false);
    let at = path.clone();
    let entry = on_volume(&state, &holder, move |root| {
        fs::make_dir(root, &at, owner, parents, force)
    })
    .await?;
    audit(&state, &holder, Action::VolumeMakeDir, &path).await;
    Ok((StatusCode::CREATED, Json(entry.into())))
}

pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
) -> E2bResult<Response> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesRead).await?;
    let path = VolumePath::parse(q.path()?)?;
    let (file, size) = on_volume(&state, &holder, move |root| fs::open_file(root, &path)).await?;
    // The size when opened: a file a sandbox appends to meanwhile is sent
    // as it was.
    let reader = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), size);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

fn write_error(path: &VolumePath, e: std::io::Error) -> ContentError {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => ContentError::NoSpace,
        _ => ContentError::Io {
            op: "writing",
            path: path.to_string(),
            source: e,
        },
    }
}

pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    E2bQuery(q): E2bQuery<ContentQuery>,
    body: Body,
) -> E2bResult<(StatusCode, Json<EntryStat>)> {
    let holder = holder(&state, &headers, &id, Scope::SandboxesCreate).await?;
    let path = VolumePath::parse(q.path()?)?;
    if path.is_root() {
        return Err(ContentError::IsRoot.into());
    }
    let owner = content::owner(q.uid, q.gid, q.mode, DEFAULT_FILE_MODE)?;
    let limit = state.sandboxes.volume_headroom(&holder.volume.team).await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ContentError::OverQuota(limit).into());
    }
    let at = path.clone();
    // Until committed, `upload` removes its temporary file when dropped:
    // on an error below, or when the client goes away mid-body.
    let (upload, file) =
        on_volume(&state, &holder, move |root| fs::begin_upload(root, &at)).await?;
    let mut file = tokio::fs::File::from_std(file);
    let mut chunks = body.into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| WarrenError::invalid(format!("reading the upload's body: {e}")))?;
        written = written.saturating_add(chunk.len() as u64);
        if written > limit {
            return Err(ContentError::OverQuota(limit).into());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| write_error(&path, e))?;
    }
    file.flush().await.map_err(|e| write_error(&path, e))?;
    let file = file.into_std().await;
    let replace = q.force.unwrap_or(true);
    let entry = tokio::task::spawn_blocking(move || upload.commit(file, owner, replace))
        .await
        .map_err(|e| WarrenError::internal(format!("a volume upload panicked: {e}")))??;
    audit(&state, &holder, Action::VolumeWrite, &path).await;
    Ok((StatusCode::CREATED, Json(entry.into())))
}
