//! `/v1/secrets`: set, list and delete the team's secrets. Values go in,
//! never out.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use warren_api_types::{Secret, SecretList, SetSecretRequest};
use warren_store::SecretRecord;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::secrets::SecretValue;
use crate::state::AppState;
use warren_core::rfc3339;

fn secret_to_api(s: SecretRecord) -> Secret {
    Secret {
        name: s.name,
        created_at: rfc3339(s.created_at),
        created_by: s.created_by.to_string(),
        updated_at: rfc3339(s.updated_at),
        updated_by: s.updated_by.to_string(),
    }
}

/// Creates a secret (201) or replaces its value (200).
#[utoipa::path(post, path = "/v1/secrets", tag = "secrets", request_body = SetSecretRequest,
    responses((status = 201, body = Secret), (status = 200, body = Secret),
        (status = 400, body = warren_api_types::ApiError), (status = 413, body = warren_api_types::ApiError)))]
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<SetSecretRequest>,
) -> ApiResult<(StatusCode, Json<Secret>)> {
    let SetSecretRequest { name, value } = req;
    let stored = state
        .secrets
        .set(&caller, &name, SecretValue::new(value))
        .await?;
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(secret_to_api(stored.record))))
}

/// The team's secrets: names and times, never values.
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets", responses((status = 200, body = SecretList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<SecretList>> {
    let secrets = state.secrets.list(&caller).await?;
    Ok(Json(SecretList {
        secrets: secrets.into_iter().map(secret_to_api).collect(),
    }))
}

/// Deletes a secret; policies that name it inject nothing from then on.
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.secrets.delete(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
