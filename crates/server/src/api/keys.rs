//! `/v1/keys`: mint, list and revoke the team's API keys.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use warren_api_types::{CreateKeyRequest, Key, KeyList, NewKey};
use warren_core::{KeyId, Role, Scope, UserId, WarrenError};
use warren_store::KeyRecord;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::{KeyRequest, MintedKey};
use crate::state::AppState;
use warren_core::rfc3339;

pub fn key_to_api(k: KeyRecord) -> Key {
    Key {
        id: k.id.to_string(),
        name: k.name,
        team: k.team.to_string(),
        user: k.user.to_string(),
        role: k.role.to_string(),
        scopes: k.scopes.map(|s| s.into_iter().map(String::from).collect()),
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

pub fn new_key_to_api(k: MintedKey) -> NewKey {
    NewKey {
        key: key_to_api(k.record),
        secret: k.secret,
    }
}

fn parse_request(req: CreateKeyRequest) -> Result<KeyRequest, WarrenError> {
    let user = req
        .user
        .map(|u| {
            u.parse::<UserId>()
                .map_err(|_| WarrenError::not_found(format!("user '{u}' not found")))
        })
        .transpose()?;
    let role = match req.role {
        Some(r) => r.parse::<Role>()?,
        None => Role::Member,
    };
    let scopes = req
        .scopes
        .map(|s| {
            s.iter()
                .map(|s| s.parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(KeyRequest {
        name: req.name,
        user,
        role,
        scopes,
        expires_in_s: req.expires_in_s,
        e2b: req.e2b,
    })
}

/// Mints a key for a user of the caller's team; the secret is shown once.
#[utoipa::path(post, path = "/v1/keys", tag = "tenancy", request_body = CreateKeyRequest,
    responses((status = 201, body = NewKey), (status = 403, body = warren_api_types::ApiError),
        (status = 404, description = "no such user in the caller's team", body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKey>)> {
    let key = state
        .tenancy
        .create_key(&caller, parse_request(req)?)
        .await?;
    Ok((StatusCode::CREATED, Json(new_key_to_api(key))))
}

/// The team's keys, revoked ones included.
#[utoipa::path(get, path = "/v1/keys", tag = "tenancy", responses((status = 200, body = KeyList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<KeyList>> {
    let keys = state.tenancy.keys(&caller).await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(key_to_api).collect(),
    }))
}

/// Revokes a key at once; sandbox tokens it dispatched stop working too.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "tenancy", params(("id" = String, Path)),
    responses((status = 200, body = Key), (status = 404, body = warren_api_types::ApiError)))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Key>> {
    let id: KeyId = id
        .parse()
        .map_err(|_| WarrenError::not_found(format!("API key '{id}' not found")))?;
    Ok(Json(key_to_api(
        state.tenancy.revoke_key(&caller, &id).await?,
    )))
}
