//! `/v1/teams/{team}/quota`: a team's quota and usage (operators only, by
//! the permission table). `{team}` is the team's id or name.

use axum::Json;
use axum::extract::{Extension, Path, State};
use warren_api_types::{QuotaLimits, QuotaUsage, SetQuotaRequest, TeamQuota};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::{self, QuotaChange};
use crate::state::AppState;

fn to_api(q: service::TeamQuota) -> TeamQuota {
    TeamQuota {
        team: q.team.id.to_string(),
        team_name: q.team.name,
        default: q.default,
        quota: QuotaLimits {
            max_sandboxes: q.quota.max_sandboxes,
            max_vcpus: q.quota.max_vcpus,
            max_memory_mb: q.quota.max_memory_mb,
            max_disk_mb: q.quota.max_disk_mb,
            max_snapshot_bytes: q.quota.max_snapshot_bytes,
            max_branches: q.quota.max_branches,
        },
        usage: QuotaUsage {
            sandboxes: q.usage.sandboxes,
            vcpus: q.usage.vcpus,
            memory_mb: q.usage.memory_mb,
            disk_mb: q.usage.disk_mb,
            snapshot_bytes: q.usage.snapshot_bytes,
        },
    }
}

/// The team's quota (its own or the defaults) and what it holds now.
#[utoipa::path(get, path = "/v1/teams/{team}/quota", tag = "tenancy",
    params(("team" = String, Path, description = "team id or name")),
    responses((status = 200, body = TeamQuota), (status = 404, body = warren_api_types::ApiError)))]
pub async fn get_quota(
    State(state): State<AppState>,
    Path(team): Path<String>,
) -> ApiResult<Json<TeamQuota>> {
    Ok(Json(to_api(state.sandboxes.team_quota(&team).await?)))
}

/// Changes the team's quota; absent fields keep their value.
#[utoipa::path(put, path = "/v1/teams/{team}/quota", tag = "tenancy",
    params(("team" = String, Path, description = "team id or name")),
    request_body = SetQuotaRequest,
    responses((status = 200, body = TeamQuota), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn set_quota(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(team): Path<String>,
    ApiJson(req): ApiJson<SetQuotaRequest>,
) -> ApiResult<Json<TeamQuota>> {
    let change = QuotaChange {
        max_sandboxes: req.max_sandboxes,
        max_vcpus: req.max_vcpus,
        max_memory_mb: req.max_memory_mb,
        max_disk_mb: req.max_disk_mb,
        max_snapshot_bytes: req.max_snapshot_bytes,
        max_branches: req.max_branches,
    };
    let q = state
        .sandboxes
        .set_team_quota(&caller, &team, &change)
        .await?;
    Ok(Json(to_api(q)))
}
