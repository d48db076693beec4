//! `/v1/pools`: warm pools of ready sandboxes per template (operators only,
//! by the permission table; `docs/pools.md`).

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use warren_api_types::{Pool, PoolList, SetPoolRequest};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::{PoolChange, PoolView};
use crate::state::AppState;

fn to_api(v: PoolView) -> Pool {
    Pool {
        template: v.settings.template,
        min: v.settings.min,
        max: v.settings.max,
        cpus: v.settings.limits.cpus,
        memory_mb: v.settings.limits.memory_mb,
        disk_mb: v.settings.limits.disk_mb,
        frozen: v.settings.frozen,
        ready: v.ready,
        booting: v.booting,
        target: v.target,
        hits: v.hits,
        misses: v.misses,
        rate_per_s: v.rate,
        updated_at: warren_core::rfc3339(v.settings.updated_at),
    }
}

/// Every pool with its state.
#[utoipa::path(get, path = "/v1/pools", tag = "pools",
    responses((status = 200, body = PoolList), (status = 403, body = warren_api_types::ApiError)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<PoolList>> {
    let pools = state.sandboxes.pools().await?;
    Ok(Json(PoolList {
        pools: pools.into_iter().map(to_api).collect(),
    }))
}

/// Creates or replaces the pool of a template.
#[utoipa::path(put, path = "/v1/pools/{template}", tag = "pools",
    params(("template" = String, Path)),
    request_body = SetPoolRequest,
    responses((status = 200, body = Pool), (status = 400, body = warren_api_types::ApiError),
        (status = 403, body = warren_api_types::ApiError)))]
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(template): Path<String>,
    ApiJson(req): ApiJson<SetPoolRequest>,
) -> ApiResult<Json<Pool>> {
    let change = PoolChange {
        min: req.min,
        max: req.max,
        cpus: req.cpus,
        memory_mb: req.memory_mb,
        disk_mb: req.disk_mb,
        frozen: req.frozen,
    };
    let view = state
        .sandboxes
        .set_pool(&template, &change, &caller.key_id)
        .await?;
    Ok(Json(to_api(view)))
}

/// Deletes the pool of a template; its ready sandboxes are torn down.
#[utoipa::path(delete, path = "/v1/pools/{template}", tag = "pools",
    params(("template" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError),
        (status = 403, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(template): Path<String>,
) -> ApiResult<StatusCode> {
    state.sandboxes.delete_pool(&template).await?;
    Ok(StatusCode::NO_CONTENT)
}
