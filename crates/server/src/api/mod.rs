//! HTTP routers. `router(state)` builds the whole API so tests drive it with
//! `oneshot`, no socket. Handlers decode and validate, call a service, and
//! encode; errors go through [`crate::error::AppError`].
//!
//! Limits live in one layer stack: JSON bodies up to [`JSON_BODY_LIMIT`],
//! file uploads up to [`UPLOAD_LIMIT`].

mod exec;
mod extract;
mod files;
mod health;
mod openapi;
mod pty;
mod sandboxes;
mod snapshots;
mod stream;
mod templates;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::auth::{Authenticator, require_key};
use crate::service::Sandboxes;
use crate::templates::TemplateBuilds;

pub use openapi::ApiDoc;
pub use sandboxes::rfc3339;

/// Largest JSON request body.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Largest file upload through `PUT /v1/sandboxes/{id}/files`.
pub const UPLOAD_LIMIT: usize = 1024 * 1024 * 1024;

/// Everything handlers need.
#[derive(Clone)]
pub struct AppState {
    pub sandboxes: Arc<Sandboxes>,
    pub templates: Arc<TemplateBuilds>,
}

/// Every path the API does not know answers 404 in the API's error format.
async fn unknown_route(uri: axum::http::Uri) -> crate::error::AppError {
    crate::error::AppError(warren_core::WarrenError::not_found(format!(
        "no such endpoint: {}; see /v1/openapi.json",
        uri.path()
    )))
}

pub fn router(state: AppState, auth: Authenticator) -> Router {
    let protected = Router::new()
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
        .layer(middleware::from_fn_with_state(auth, require_key));
    Router::new()
        .route("/v1/health", get(health::health))
        .route("/v1/openapi.json", get(openapi::document))
        .merge(protected)
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
