//! HTTP routers. `router(state)` builds the whole API so tests drive it with
//! `oneshot`, no socket. Every route but health and the OpenAPI document
//! passes authentication and the permission table (`auth::policy`). Handlers decode and validate, call a service, and
//! encode; errors go through [`crate::error::AppError`].
//!
//! Limits live in one layer stack: JSON bodies up to [`JSON_BODY_LIMIT`],
//! file uploads up to [`UPLOAD_LIMIT`].

mod audit;
mod events;
mod exec;
mod files;
mod health;
mod hooks;
mod inbox;
mod keys;
mod network;
mod openapi;
mod pty;
mod quotas;
mod sandboxes;
mod secrets;
mod snapshots;
mod stream;
mod teams;
mod templates;
mod timeline;
mod timers;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post, put};
use tower_http::trace::TraceLayer;

use crate::audit::requests::record_requests;
use crate::auth::{Authenticator, Credentials, authenticate, authorize};

pub use crate::state::AppState;
pub use openapi::ApiDoc;

pub use crate::extract::JSON_BODY_LIMIT;
/// Largest file upload through `PUT /v1/sandboxes/{id}/files`.
pub const UPLOAD_LIMIT: usize = 1024 * 1024 * 1024;

/// Where hooks take deliveries: the one route authenticated by a
/// signature instead of a key (`api::hooks`).
pub const HOOK_DELIVERY: &str = "/v1/hooks/{id}/deliver";

/// Every path the API does not know answers 404 in the API's error format.
async fn unknown_route(uri: axum::http::Uri) -> crate::error::AppError {
    crate::error::AppError(warren_core::WarrenError::not_found(format!(
        "no such endpoint: {}; see /v1/openapi.json",
        uri.path()
    )))
}

pub fn router(state: AppState, auth: Authenticator) -> Router {
    // E2B's surface is for API keys; the sandbox listener does not serve it.
    let e2b = (auth.accepts == Credentials::ApiKeys).then(|| {
        crate::e2b::SandboxProxy::new(state.sandboxes.clone(), auth.clone(), state.grants.clone())
    });
    let mut protected = Router::new()
        .route(
            "/v1/sandboxes",
            get(sandboxes::list).post(sandboxes::create),
        )
        .route(
            "/v1/sandboxes/{id}",
            get(sandboxes::info).delete(sandboxes::kill),
        )
        .route("/v1/sandboxes/{id}/timeout", post(sandboxes::set_timeout))
        .route("/v1/sandboxes/{id}/exec", post(exec::exec))
        .route(
            "/v1/sandboxes/{id}/files",
            get(files::download)
                .put(files::upload)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/v1/sandboxes/{id}/pty", get(pty::pty))
        .route("/v1/sandboxes/{id}/pause", post(snapshots::pause))
        .route("/v1/sandboxes/{id}/resume", post(snapshots::resume))
        .route(
            "/v1/sandboxes/{id}/snapshots",
            get(snapshots::list).post(snapshots::create),
        )
        .route(
            "/v1/sandboxes/{id}/snapshots/{snapshot}",
            axum::routing::delete(snapshots::delete),
        )
        .route("/v1/sandboxes/{id}/rollback", post(snapshots::rollback))
        .route("/v1/sandboxes/{id}/fork", post(snapshots::fork))
        .route("/v1/templates", get(templates::list))
        .route("/v1/templates/{name}/build", post(templates::build))
        .route(
            "/v1/templates/{name}/import",
            post(templates::import).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/teams", get(teams::list_teams).post(teams::create_team))
        .route(
            "/v1/teams/{team}/quota",
            get(quotas::get_quota).put(quotas::set_quota),
        )
        .route("/v1/users", get(teams::list_users).post(teams::create_user))
        .route("/v1/whoami", get(teams::whoami))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/keys/{id}", delete(keys::revoke))
        .route("/v1/secrets", get(secrets::list).post(secrets::set))
        .route("/v1/secrets/{name}", delete(secrets::delete))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get).delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/sandboxes/{id}/timeline", get(timeline::timeline))
        .route(
            "/v1/sandboxes/{id}/events",
            get(events::list).post(events::send),
        )
        .route("/v1/sandboxes/{id}/wake", put(inbox::set_wake))
        .route("/v1/self/events", get(inbox::take))
        .route("/v1/self/events/ack", post(inbox::ack))
        .route(
            "/v1/sandboxes/{id}/timers",
            get(timers::list).post(timers::create),
        )
        .route("/v1/sandboxes/{id}/timers/{timer}", delete(timers::delete))
        .route("/v1/hooks", get(hooks::list).post(hooks::create))
        .route("/v1/hooks/{id}", get(hooks::get).delete(hooks::delete))
        .route("/v1/hooks/{id}/subscriptions", post(hooks::subscribe))
        .route(
            "/v1/hooks/{id}/subscriptions/{sub}",
            delete(hooks::unsubscribe),
        )
        .route("/v1/sandboxes/{id}/network", put(network::update))
        .route("/v1/sandboxes/{id}/network/events", get(network::events))
        .route("/v1/audit/entries", get(audit::entries))
        .route("/v1/audit/entries/{index}/proof", get(audit::proof))
        .route("/v1/audit/consistency", get(audit::consistency))
        .route("/v1/audit/heads", get(audit::heads));
    if e2b.is_some() {
        protected = protected.merge(crate::e2b::routes());
    }
    let protected = protected
        // Layers run outside in: authenticate; record state-changing calls
        // (denied ones too); authorize against the route's rule. All are
        // `route_layer`s, so the matched route is known.
        .route_layer(middleware::from_fn(authorize))
        .route_layer(middleware::from_fn_with_state(
            state.audit.clone(),
            record_requests,
        ))
        .route_layer(middleware::from_fn_with_state(auth, authenticate));
    let mut app = Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/openapi.json", get(openapi::document));
    if e2b.is_some() {
        // Deliveries come from the internet, signed, without an API key;
        // the sandbox listener does not take them.
        app = app.route(HOOK_DELIVERY, post(hooks::deliver));
    }
    let app = app
        .merge(protected)
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    match e2b {
        Some(proxy) => app.layer(middleware::from_fn_with_state(
            proxy,
            crate::e2b::route_by_header,
        )),
        None => app,
    }
}
