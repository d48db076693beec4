//! E2B's volumes API over Warren's team volumes (`service::volumes`): the
//! same store, directories, scopes and audit entries as `/v1/volumes`.
//!
//! Mapping:
//! - `volumeID` is Warren's volume id; `{volumeID}` in a path is that id or
//!   the volume's name. Another team's volume, or one that does not exist,
//!   is 404.
//! - `POST /volumes` creates (201; 409 when the name is taken). Names
//!   follow Warren's rule, which admits E2B's (letters, digits, `_`, `-`)
//!   up to 63 characters.
//! - `token` (in the answers of `POST` and `GET /volumes/{id}`) is a
//!   volume token for the caller's key (`crate::auth::grant::VolumeHolder`):
//!   it opens this volume's files on the volume content API
//!   (`volume_content`), served on the same listener; `domain` is absent,
//!   so the SDKs send it to `E2B_VOLUME_API_URL`.
//! - `DELETE` while a live sandbox mounts the volume is 409.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use warren_store::VolumeRecord;

use super::error::E2bResult;
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// `POST /volumes`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVolume {
    name: String,
}

/// `Volume` and `VolumeAndToken` (with `token`).
#[derive(Debug, Serialize)]
pub struct VolumeInfo {
    #[serde(rename = "volumeID")]
    volume_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn info(v: VolumeRecord, token: Option<String>) -> VolumeInfo {
    VolumeInfo {
        volume_id: v.id.to_string(),
        name: v.name,
        token,
    }
}

/// A volume token for `v` to the caller's key.
fn token(state: &AppState, caller: &Caller, v: &VolumeRecord) -> Option<String> {
    Some(state.grants.issue_volume(&v.team, &v.id, &caller.key_id))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> E2bResult<Json<Vec<VolumeInfo>>> {
    let all = state.sandboxes.list_volumes(&caller.team).await?;
    Ok(Json(all.into_iter().map(|v| info(v, None)).collect()))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<ApiJson<NewVolume>, AppError>,
) -> E2bResult<(StatusCode, Json<VolumeInfo>)> {
    let ApiJson(req) = body?;
    let actor = AuditActor::from_caller(&caller);
    let v = state
        .sandboxes
        .create_volume(&caller.team, &caller.key_id, &req.name, &actor)
        .await?;
    let token = token(&state, &caller, &v);
    Ok((StatusCode::CREATED, Json(info(v, token))))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> E2bResult<Json<VolumeInfo>> {
    let v = state.sandboxes.find_volume(&caller.team, &id).await?;
    let token = token(&state, &caller, &v);
    Ok(Json(info(v, token)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> E2bResult<StatusCode> {
    let v = state.sandboxes.find_volume(&caller.team, &id).await?;
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .delete_volume(&caller.team, &v.name, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
