use axum::extract::{Extension, State};
use axum::response::Response;
use warren_api_types::{ExecEvent, ExecRequest};

use super::stream::ndjson;
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath};
use crate::state::AppState;

/// Runs a command; streams `ExecEvent`s as NDJSON: `start`, then
/// `stdout`/`stderr` chunks (base64) as they are produced, then `exit`.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/exec", tag = "sandboxes",
    params(("id" = String, Path)), request_body = ExecRequest,
    responses((status = 200, description = "NDJSON stream of ExecEvent", body = ExecEvent, content_type = "application/x-ndjson"),
        (status = 404, body = warren_api_types::ApiError), (status = 409, body = warren_api_types::ApiError)))]
pub async fn exec(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<ExecRequest>,
) -> ApiResult<Response> {
    let actor = AuditActor::from_caller(&caller);
    let events = state.sandboxes.exec(&id, req, actor).await?;
    Ok(ndjson(events))
}
