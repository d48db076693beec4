use axum::Json;
use axum::extract::State;
use warren_api_types::Health;

use crate::state::AppState;

/// Liveness of the daemon; needs no key.
#[utoipa::path(get, path = "/v1/health", tag = "system", security(()),
    responses((status = 200, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        runtime: state.sandboxes.runtime_name().into(),
        ports_domain: state.ports_domain.to_string(),
    })
}
