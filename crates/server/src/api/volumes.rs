//! `/v1/volumes`: create, list, read and delete the team's volumes. Another
//! team's volume is never named: it is 404 like one that does not exist.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use warren_api_types::{CreateVolumeRequest, Volume, VolumeList};
use warren_core::rfc3339;
use warren_store::VolumeRecord;

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;

async fn to_api(state: &AppState, v: VolumeRecord) -> Volume {
    let size_bytes = state.sandboxes.volume_size(&v).await;
    Volume {
        id: v.id.to_string(),
        name: v.name,
        created_at: rfc3339(v.created_at),
        created_by: v.created_by.to_string(),
        size_bytes,
    }
}

/// Creates an empty volume (201); 409 if the team has one of that name.
#[utoipa::path(post, path = "/v1/volumes", tag = "volumes", request_body = CreateVolumeRequest,
    responses((status = 201, body = Volume), (status = 400, body = warren_api_types::ApiError),
        (status = 409, body = warren_api_types::ApiError), (status = 429, body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateVolumeRequest>,
) -> ApiResult<(StatusCode, Json<Volume>)> {
    let actor = AuditActor::from_caller(&caller);
    let v = state
        .sandboxes
        .create_volume(&caller.team, &caller.key_id, &req.name, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(to_api(&state, v).await)))
}

/// The team's volumes, by name, with their sizes.
#[utoipa::path(get, path = "/v1/volumes", tag = "volumes", responses((status = 200, body = VolumeList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<VolumeList>> {
    let mut volumes = Vec::new();
    for v in state.sandboxes.list_volumes(&caller.team).await? {
        volumes.push(to_api(&state, v).await);
    }
    Ok(Json(VolumeList { volumes }))
}

/// One of the team's volumes.
#[utoipa::path(get, path = "/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path)),
    responses((status = 200, body = Volume), (status = 404, body = warren_api_types::ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<Volume>> {
    let v = state.sandboxes.get_volume(&caller.team, &name).await?;
    Ok(Json(to_api(&state, v).await))
}

/// Deletes a volume and its files; 409 while a live sandbox mounts it.
#[utoipa::path(delete, path = "/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError),
        (status = 409, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .delete_volume(&caller.team, &name, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
