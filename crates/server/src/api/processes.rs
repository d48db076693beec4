//! `GET /v1/sandboxes/{id}/processes` and `DELETE …/processes/{pid}`: the
//! commands the sandbox's agent runs, and ending one
//! ([`crate::service::Sandboxes::processes`]).

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use warren_api_types::{ApiError, ProcessList};
use warren_core::WarrenError;

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{SandboxPath, SandboxSnapshotPath};
use crate::state::AppState;

/// The commands running in the sandbox (execs, terminals, its start
/// command), by pid; never their environment.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/processes", tag = "sandboxes",
    params(("id" = String, Path)),
    responses((status = 200, body = ProcessList), (status = 404, body = ApiError),
        (status = 409, description = "the sandbox is not running", body = ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<ProcessList>> {
    let processes = state.sandboxes.processes(&id).await?;
    Ok(Json(ProcessList { processes }))
}

/// Ends a running command and its process group (SIGKILL); recorded as
/// `process.kill`.
#[utoipa::path(delete, path = "/v1/sandboxes/{id}/processes/{pid}", tag = "sandboxes",
    params(("id" = String, Path), ("pid" = u32, Path, description = "a pid from the listing")),
    responses((status = 204), (status = 400, body = ApiError),
        (status = 404, description = "no such sandbox, or no such running command", body = ApiError),
        (status = 409, description = "the sandbox is not running", body = ApiError)))]
pub async fn kill(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxSnapshotPath(id, pid): SandboxSnapshotPath,
) -> ApiResult<StatusCode> {
    let pid = pid.parse::<u32>().ok().filter(|p| *p > 0).ok_or_else(|| {
        WarrenError::invalid(format!(
            "pid must be a positive whole number from the listing, not '{}'",
            pid.chars().take(32).collect::<String>()
        ))
    })?;
    let actor = AuditActor::from_caller(&caller);
    state.sandboxes.kill_process(&id, pid, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
