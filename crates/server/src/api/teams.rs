//! `/v1/teams`, `/v1/users` and `/v1/whoami`.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use warren_api_types::{
    CreateTeamRequest, CreateUserRequest, Team, TeamCreated, TeamList, User, UserList, WhoAmI,
};
use warren_store::{TeamRecord, UserRecord};

use super::keys::new_key_to_api;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;
use warren_core::rfc3339;

pub fn team_to_api(t: TeamRecord) -> Team {
    Team {
        id: t.id.to_string(),
        name: t.name,
        operator: t.operator,
        created_at: rfc3339(t.created_at),
    }
}

pub fn user_to_api(u: UserRecord) -> User {
    User {
        id: u.id.to_string(),
        team: u.team.to_string(),
        name: u.name,
        created_at: rfc3339(u.created_at),
    }
}

/// Creates a team with its first admin user and key (operator admins only).
#[utoipa::path(post, path = "/v1/teams", tag = "tenancy", request_body = CreateTeamRequest,
    responses((status = 201, body = TeamCreated), (status = 409, body = warren_api_types::ApiError)))]
pub async fn create_team(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateTeamRequest>,
) -> ApiResult<(StatusCode, Json<TeamCreated>)> {
    let (team, admin, key) = state
        .tenancy
        .create_team(&caller, &req.name, &req.admin)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TeamCreated {
            team: team_to_api(team),
            admin: user_to_api(admin),
            key: new_key_to_api(key),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/teams", tag = "tenancy", responses((status = 200, body = TeamList)))]
pub async fn list_teams(State(state): State<AppState>) -> ApiResult<Json<TeamList>> {
    let teams = state.tenancy.teams().await?;
    Ok(Json(TeamList {
        teams: teams.into_iter().map(team_to_api).collect(),
    }))
}

/// Adds a user to the caller's team.
#[utoipa::path(post, path = "/v1/users", tag = "tenancy", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 409, body = warren_api_types::ApiError)))]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = state.tenancy.create_user(&caller, &req.name).await?;
    Ok((StatusCode::CREATED, Json(user_to_api(user))))
}

#[utoipa::path(get, path = "/v1/users", tag = "tenancy", responses((status = 200, body = UserList)))]
pub async fn list_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<UserList>> {
    let users = state.tenancy.users(&caller).await?;
    Ok(Json(UserList {
        users: users.into_iter().map(user_to_api).collect(),
    }))
}

/// The identity and rights behind the presented credential.
#[utoipa::path(get, path = "/v1/whoami", tag = "tenancy", responses((status = 200, body = WhoAmI)))]
pub async fn whoami(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<WhoAmI>> {
    let team = state.tenancy.team(&caller.team).await?;
    let user = state.tenancy.user(&caller, &caller.user).await?;
    Ok(Json(WhoAmI {
        team: team.id.to_string(),
        team_name: team.name,
        user: user.id.to_string(),
        user_name: user.name,
        key: caller.key_id.to_string(),
        role: caller.role.to_string(),
        scopes: caller
            .permissions
            .scopes()
            .into_iter()
            .map(String::from)
            .collect(),
        sandbox: caller.sandbox.map(|s| s.to_string()),
    }))
}
