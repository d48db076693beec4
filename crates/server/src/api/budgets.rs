//! `/v1/budgets`: a team's budgets with their spend (any member reads
//! them), set by team admins (`keys:manage`), lifted for a period by
//! operators (`teams:manage`), who also read every team's.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use warren_api_types as api;
use warren_core::budget::BudgetAction;
use warren_core::{Scope, TeamId, WarrenError, rfc3339};

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::service::budgets::{BudgetView, NewBudget};
use crate::state::AppState;

fn to_api(v: BudgetView, currency: &str) -> api::Budget {
    let b = &v.budget;
    api::Budget {
        id: b.id.clone(),
        team: b.team.to_string(),
        user: b.user.as_ref().map(ToString::to_string),
        key: b.key.as_ref().map(ToString::to_string),
        period: b.period.to_string(),
        amount: b.amount,
        currency: currency.to_owned(),
        action: b.action.to_string(),
        spend: v.spend,
        period_start: rfc3339(v.period_start),
        warned: b.warned_period.as_deref() == Some(v.period.as_str()),
        exceeded: v.spent(),
        lifted: v.lifted(),
        created_at: rfc3339(b.created_at),
    }
}

fn action(text: Option<&str>) -> Result<Option<BudgetAction>, WarrenError> {
    text.map(str::parse).transpose()
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BudgetParams {
    /// Operators only: one team's budgets (its id); default every team's.
    pub team: Option<String>,
}

/// The team's budgets with their spend this period.
#[utoipa::path(get, path = "/v1/budgets", tag = "metering", params(BudgetParams),
    responses((status = 200, body = api::BudgetList), (status = 400, body = api::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiQuery(params): ApiQuery<BudgetParams>,
) -> ApiResult<Json<api::BudgetList>> {
    let team = if caller.permissions.contains(Scope::TeamsManage) {
        params
            .team
            .map(|t| {
                t.parse::<TeamId>()
                    .map_err(|_| WarrenError::invalid(format!("team must be a team id, not {t:?}")))
            })
            .transpose()?
    } else {
        Some(caller.team.clone())
    };
    let currency = state.sandboxes.prices().currency.clone();
    let budgets = state.sandboxes.budgets(team.as_ref()).await?;
    Ok(Json(api::BudgetList {
        budgets: budgets.into_iter().map(|v| to_api(v, &currency)).collect(),
    }))
}

/// Creates a budget for the caller's team (team admins).
#[utoipa::path(post, path = "/v1/budgets", tag = "metering", request_body = api::CreateBudgetRequest,
    responses((status = 201, body = api::Budget), (status = 400, body = api::ApiError),
        (status = 429, body = api::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<api::CreateBudgetRequest>,
) -> ApiResult<(StatusCode, Json<api::Budget>)> {
    let new = NewBudget {
        period: req.period.parse()?,
        amount: req.amount,
        action: action(req.action.as_deref())?.unwrap_or(BudgetAction::Pause),
        user: req
            .user
            .map(|u| {
                u.parse()
                    .map_err(|_| WarrenError::invalid(format!("user must be a user id, not {u:?}")))
            })
            .transpose()?,
        key: req
            .key
            .map(|k| {
                k.parse()
                    .map_err(|_| WarrenError::invalid(format!("key must be a key id, not {k:?}")))
            })
            .transpose()?,
    };
    let actor = AuditActor::from_caller(&caller);
    let view = state
        .sandboxes
        .create_budget(&caller.team, new, &actor, &caller.key_id)
        .await?;
    let currency = state.sandboxes.prices().currency.clone();
    Ok((StatusCode::CREATED, Json(to_api(view, &currency))))
}

/// Changes a budget's amount or action (team admins).
#[utoipa::path(put, path = "/v1/budgets/{id}", tag = "metering", params(("id" = String, Path)),
    request_body = api::UpdateBudgetRequest,
    responses((status = 200, body = api::Budget), (status = 400, body = api::ApiError),
        (status = 404, body = api::ApiError)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::UpdateBudgetRequest>,
) -> ApiResult<Json<api::Budget>> {
    let actor = AuditActor::from_caller(&caller);
    let view = state
        .sandboxes
        .update_budget(
            &caller.team,
            &id,
            req.amount,
            action(req.action.as_deref())?,
            &actor,
        )
        .await?;
    let currency = state.sandboxes.prices().currency.clone();
    Ok(Json(to_api(view, &currency)))
}

/// Deletes a budget (team admins).
#[utoipa::path(delete, path = "/v1/budgets/{id}", tag = "metering", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = api::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .delete_budget(&caller.team, &id, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a budget of any team until its period ends, or puts it back
/// (operators).
#[utoipa::path(put, path = "/v1/budgets/{id}/override", tag = "metering",
    params(("id" = String, Path)), request_body = api::OverrideBudgetRequest,
    responses((status = 200, body = api::Budget), (status = 404, body = api::ApiError)))]
pub async fn set_override(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<api::OverrideBudgetRequest>,
) -> ApiResult<Json<api::Budget>> {
    let actor = AuditActor::from_caller(&caller);
    let view = state
        .sandboxes
        .override_budget(&id, req.lifted, &actor)
        .await?;
    let currency = state.sandboxes.prices().currency.clone();
    Ok(Json(to_api(view, &currency)))
}
