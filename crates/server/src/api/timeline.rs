use axum::Json;
use axum::extract::State;
use futures::StreamExt;
use warren_api_types::Timeline;
use warren_core::WarrenError;
use warren_store::AuditFilter;

use super::audit::all_entries;
use crate::error::ApiResult;
use crate::extract::SandboxPath;
use crate::state::AppState;

/// A sandbox's life from the audit log: who created it, every command with
/// its exit code and duration, files written, terminals, kills, expiry.
/// Killed sandboxes keep their timeline.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/timeline", tag = "audit",
    params(("id" = String, Path)),
    responses((status = 200, body = Timeline), (status = 404, body = warren_api_types::ApiError)))]
pub async fn timeline(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<Timeline>> {
    let filter = AuditFilter {
        sandbox: Some(id.to_string()),
        limit: i64::MAX as u64,
        ..AuditFilter::default()
    };
    let entries: Vec<_> = all_entries(state.audit.store().clone(), filter)
        .collect()
        .await;
    if entries.is_empty() {
        return Err(WarrenError::not_found(format!("no audit entries for sandbox {id}")).into());
    }
    Ok(Json(Timeline {
        sandbox: id.to_string(),
        events: crate::audit::timeline::events(&entries),
    }))
}
