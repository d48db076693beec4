//! HTTP routers. `router(state)` builds the whole API so tests drive it with
//! `oneshot`, no socket. Every route but health, the OpenAPI document and
//! hook deliveries passes authentication and the rule the route is listed
//! with ([`routes`] for the native API, `e2b::routes` for E2B's: one list
//! each gives the router, the rules and, for the native API, the OpenAPI
//! document). Handlers decode and validate, call a service, and encode;
//! errors go through [`crate::error::AppError`].
//!
//! Limits live in one layer stack: JSON bodies up to [`JSON_BODY_LIMIT`],
//! file uploads up to [`UPLOAD_LIMIT`].

mod audit;
mod budgets;
mod events;
mod exec;
mod files;
mod health;
mod hooks;
mod inbox;
mod keys;
mod network;
mod openapi;
mod pools;
mod processes;
mod pty;
mod quotas;
mod recordings;
mod routes;
mod rules;
mod sandbox_metrics;
mod sandboxes;
mod secrets;
mod session;
mod snapshots;
mod stream;
mod teams;
mod templates;
mod timeline;
mod timers;
mod usage;
mod usage_csv;
mod volumes;
mod watch;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::MethodRouter;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::audit::requests::record_requests;
use crate::auth::{Authenticator, Credentials, authenticate, authorize};

pub use crate::state::AppState;
pub use routes::ApiDoc;
pub(crate) use sandboxes::mounts as sandbox_mounts;
pub use watch::Watchers;

pub use crate::extract::JSON_BODY_LIMIT;
/// Largest file upload through `PUT /v1/sandboxes/{id}/files`.
pub const UPLOAD_LIMIT: usize = 1024 * 1024 * 1024;

/// Where hooks take deliveries: the one route authenticated by a
/// signature instead of a key (`api::hooks`).
pub const HOOK_DELIVERY: &str = "/v1/hooks/{id}/deliver";

/// The dashboard's login, session and logout (`session`): outside the
/// key check, they read the key or the cookie themselves.
pub const SESSION: &str = "/v1/session";

/// The rule of a native or E2B route, `None` for one not listed.
pub fn rule_for(method: &axum::http::Method, route: &str) -> Option<crate::auth::policy::Rule> {
    routes::rule_for(method, route).or_else(|| crate::e2b::rule_for(method, route))
}

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
    let auth_for_sessions = auth.clone();
    let mut protected = routes::protected_routes();
    if e2b.is_some() {
        protected = protected.merge(crate::e2b::routes());
    }
    let protected = protected
        // Layers run outside in: authenticate; record state-changing calls
        // (denied ones too); authorize against the route's rule. All are
        // `route_layer`s, so the matched route is known.
        .route_layer(middleware::from_fn_with_state(
            rule_for as crate::auth::Rules,
            authorize,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.audit.clone(),
            record_requests,
        ))
        .route_layer(middleware::from_fn_with_state(auth, authenticate))
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ));
    let mut app = Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/openapi.json", get(openapi::document));
    if e2b.is_some() {
        // The dashboard and its sessions are for people, on the API
        // listener only.
        let sessions: MethodRouter<session::SessionApi> = get(session::current)
            .post(session::login)
            .delete(session::logout);
        app = app.merge(crate::dashboard::router()).merge(
            Router::new()
                .route(SESSION, sessions)
                .with_state(session::SessionApi {
                    auth: auth_for_sessions.clone(),
                    audit: state.audit.clone(),
                }),
        );
        // Deliveries come from the internet, signed, without an API key;
        // the sandbox listener does not take them.
        app = app.route(HOOK_DELIVERY, post(hooks::deliver));
        // E2B's volume content API takes a volume token, not a key.
        app = app.merge(crate::e2b::volume_content_routes());
        // E2B's SDKs upload build files without a key, to a signed URL.
        app = app.route(
            crate::e2b::UPLOAD_ROUTE,
            axum::routing::put(crate::e2b::upload_build_files).layer(DefaultBodyLimit::disable()),
        );
    }
    let app = app
        .merge(protected)
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        // Request spans name the path, never the query: a query may carry
        // a credential (the dashboard's watch stream sends its session
        // token there, and signed URLs their signature).
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state);
    match e2b {
        Some(proxy) => app.layer(middleware::from_fn_with_state(
            proxy,
            crate::e2b::route_by_header,
        )),
        None => app,
    }
}

/// The span of one API request: its method and path.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
}
