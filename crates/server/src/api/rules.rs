//! `/v1/rules`: anomaly rules. Members read what is in force for their
//! team; team admins (`keys:manage`) replace their team's rules; operators
//! (`teams:manage`) also the rules of every team (`scope: operator`).

use axum::Json;
use axum::extract::{Extension, State};
use warren_api_types as api;
use warren_core::rules::Rule;
use warren_core::{ErrorKind, Scope, WarrenError};

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::rules::{RuleScope, TeamRules};
use crate::state::AppState;

/// Most rules one request sets (one per kind).
const MAX_RULES: usize = 8;

fn spec(r: &Rule) -> api::RuleSpec {
    api::RuleSpec {
        kind: r.kind.to_string(),
        threshold: r.threshold,
        for_s: r.for_s,
        action: r.action.to_string(),
    }
}

fn rule(s: &api::RuleSpec) -> Result<Rule, WarrenError> {
    Ok(Rule {
        kind: s.kind.parse()?,
        threshold: s.threshold,
        for_s: s.for_s,
        action: s.action.parse()?,
    })
}

fn to_api(t: TeamRules) -> api::RuleSet {
    api::RuleSet {
        team: t.team.iter().map(spec).collect(),
        operator: t.operator.iter().map(spec).collect(),
        effective: t.effective.iter().map(spec).collect(),
    }
}

/// The rules in force for the caller's team, and where each comes from.
#[utoipa::path(get, path = "/v1/rules", tag = "metering",
    responses((status = 200, body = api::RuleSet)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<api::RuleSet>> {
    Ok(Json(to_api(
        state.sandboxes.team_rules(&caller.team).await?,
    )))
}

/// Replaces the team's rules (team admins) or the operator's (operators).
#[utoipa::path(put, path = "/v1/rules", tag = "metering", request_body = api::SetRulesRequest,
    responses((status = 200, body = api::RuleSet), (status = 400, body = api::ApiError),
        (status = 403, body = api::ApiError)))]
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<api::SetRulesRequest>,
) -> ApiResult<Json<api::RuleSet>> {
    let scope = match req.scope.as_deref().unwrap_or("team") {
        "team" => RuleScope::Team(caller.team.clone()),
        "operator" if caller.permissions.contains(Scope::TeamsManage) => RuleScope::Operator,
        "operator" => {
            return Err(WarrenError::new(
                ErrorKind::PermissionDenied,
                "only operators set the rules of every team; leave scope out for your team's",
            )
            .into());
        }
        other => {
            return Err(WarrenError::invalid(format!(
                "scope must be team or operator, not {other:?}"
            ))
            .into());
        }
    };
    if req.rules.len() > MAX_RULES {
        return Err(WarrenError::invalid(format!("at most {MAX_RULES} rules")).into());
    }
    let rules = req.rules.iter().map(rule).collect::<Result<Vec<_>, _>>()?;
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .set_rules(scope, rules, &actor, &caller.key_id)
        .await?;
    Ok(Json(to_api(
        state.sandboxes.team_rules(&caller.team).await?,
    )))
}
