//! Pause, resume, named snapshots, rollback and fork. Each runs to its
//! end should the client go away (the service carries it, see
//! `service::carried`).

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use warren_api_types::{
    ApiError, CreateSnapshotRequest, ForkRequest, ForkResponse, PauseRequest, RollbackRequest,
    Sandbox, Snapshot, SnapshotList,
};

use super::sandboxes::to_api;
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath, SandboxSnapshotPath};
use crate::service::SnapshotView;
use crate::state::AppState;
use warren_core::{PauseMode, rfc3339};

fn snapshot_to_api(v: SnapshotView) -> Snapshot {
    let s = v.snapshot;
    Snapshot {
        id: s.id.to_string(),
        kind: s.kind.as_str().to_owned(),
        name: s.name,
        sandbox_id: s.sandbox_id.to_string(),
        parent_snapshot: s.parent_snapshot.map(|p| p.to_string()),
        children: v.children.into_iter().map(|c| c.to_string()).collect(),
        size_bytes: s.size_bytes,
        created_at: rfc3339(s.created_at),
        available: s.deleted_at.is_none(),
    }
}

/// Checkpoints the whole sandbox to the snapshot store and releases its
/// CPU and memory; with `mode: filesystem` every process is ended first and
/// only the files are kept (the resume boots the sandbox again). The body
/// may be left out.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/pause", tag = "snapshots",
    params(("id" = String, Path)), request_body(content = Option<PauseRequest>),
    responses((status = 200, body = Sandbox), (status = 400, body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "not running (e.g. already paused)", body = ApiError)))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    body: Option<ApiJson<PauseRequest>>,
) -> ApiResult<Json<Sandbox>> {
    let mode = match body.and_then(|ApiJson(b)| b.mode) {
        Some(mode) => mode.parse()?,
        None => PauseMode::Full,
    };
    let actor = AuditActor::from_caller(&caller);
    Ok(Json(to_api(
        state.sandboxes.pause(&id, mode, &actor).await?,
    )))
}

/// Restores a paused sandbox exactly as it was; a running one is returned
/// as is.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/resume", tag = "snapshots",
    params(("id" = String, Path)),
    responses((status = 200, body = Sandbox), (status = 404, body = ApiError),
        (status = 409, body = ApiError),
        (status = 503, description = "the host is short of memory: try again after `retry_after_s`", body = ApiError)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<Sandbox>> {
    let actor = AuditActor::from_caller(&caller);
    Ok(Json(to_api(state.sandboxes.resume(&id, &actor).await?)))
}

/// Takes a named snapshot; the sandbox keeps running (its network
/// connections are reset).
#[utoipa::path(post, path = "/v1/sandboxes/{id}/snapshots", tag = "snapshots",
    params(("id" = String, Path)), request_body = CreateSnapshotRequest,
    responses((status = 201, body = Snapshot), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<CreateSnapshotRequest>,
) -> ApiResult<(StatusCode, Json<Snapshot>)> {
    let view = state
        .sandboxes
        .take_snapshot(
            &id,
            &req.name,
            &caller.key_id,
            &AuditActor::from_caller(&caller),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(snapshot_to_api(view))))
}

/// The sandbox's named and fork snapshots with their lineage.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/snapshots", tag = "snapshots",
    params(("id" = String, Path)),
    responses((status = 200, body = SnapshotList), (status = 404, body = ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<SnapshotList>> {
    let (views, total_bytes) = state.sandboxes.list_snapshots(&id).await?;
    Ok(Json(SnapshotList {
        snapshots: views.into_iter().map(snapshot_to_api).collect(),
        total_bytes,
    }))
}

/// Deletes a named snapshot (by name or id).
#[utoipa::path(delete, path = "/v1/sandboxes/{id}/snapshots/{snapshot}", tag = "snapshots",
    params(("id" = String, Path), ("snapshot" = String, Path, description = "name or id")),
    responses((status = 204), (status = 404, body = ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxSnapshotPath(id, snapshot): SandboxSnapshotPath,
) -> ApiResult<StatusCode> {
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .delete_snapshot(&id, &snapshot, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts the sandbox back into the state of one of its named snapshots;
/// later changes (files, processes, memory) are gone. A restore that fails
/// leaves a paused sandbox paused and a running one failed, with the
/// reason in its timeline.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/rollback", tag = "snapshots",
    params(("id" = String, Path)), request_body = RollbackRequest,
    responses((status = 200, body = Sandbox),
        (status = 404, description = "no such sandbox or snapshot, or the snapshot's image is gone (the sandbox is unchanged)", body = ApiError),
        (status = 409, body = ApiError),
        (status = 500, description = "the restore failed: a paused sandbox stays paused, a running one is now failed", body = ApiError)))]
pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> ApiResult<Json<Sandbox>> {
    let actor = AuditActor::from_caller(&caller);
    Ok(Json(to_api(
        state.sandboxes.rollback(&id, &req.snapshot, &actor).await?,
    )))
}

/// Makes `count` new sandboxes with the parent's exact state; the parent
/// keeps running.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/fork", tag = "snapshots",
    params(("id" = String, Path)), request_body = ForkRequest,
    responses((status = 201, body = ForkResponse), (status = 400, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 503, description = "the host is busy creating sandboxes or short of memory: try again after `retry_after_s`", body = ApiError)))]
pub async fn fork(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<ForkRequest>,
) -> ApiResult<(StatusCode, Json<ForkResponse>)> {
    let actor = AuditActor::from_caller(&caller);
    let dispatcher = (&caller).into();
    // A sandbox forking itself loses this very connection at the
    // checkpoint: the fork runs to its end whatever happens to the request.
    let (snapshot, branches) = state
        .sandboxes
        .fork(&id, req.count, &dispatcher, &actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ForkResponse {
            snapshot: snapshot.to_string(),
            sandboxes: branches.into_iter().map(to_api).collect(),
        }),
    ))
}
