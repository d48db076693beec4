//! E2B compatibility: the official E2B SDKs drive Warren unchanged once
//! `E2B_API_URL` and `E2B_SANDBOX_URL` point at the daemon's port.
//!
//! One port serves both E2B planes, told apart by one header:
//! - with `E2b-Sandbox-Id`: the request is for a sandbox and is proxied to
//!   it ([`proxy`], installed over the whole API as the outermost layer
//!   [`route_by_header`], so those requests skip routing, body limits and
//!   API authentication);
//! - without: E2B's control plane ([`routes`]), merged into the protected
//!   API, so it passes the same authentication (E2B sends `X-API-KEY`) and
//!   the same permission table (`auth::policy`) as the native API.
//!
//! Pause, resume, fork and snapshots are Warren's own ([`persist`]), and
//! so is the egress policy E2B's network settings map onto ([`network`]),
//! and the lifecycle webhooks and events of `/events/…` ([`webhooks`]).

mod control;
mod error;
mod exec_audit;
mod metrics;
mod network;
mod paging;
mod persist;
mod proxy;
mod query;
mod webhooks;
mod wire;

use axum::Router;
use axum::routing::{delete, get, post, put};

pub use proxy::{SandboxProxy, route_by_header};

use crate::state::AppState;

/// The envd version reported to the SDKs: the newest the SDK `e2b` 2.63.0
/// gates a feature on (`0.6.4`, watching network mounts); the agent serves
/// every feature up to it.
pub const ENVD_VERSION: &str = "0.6.4";
/// `clientID` in E2B answers (E2B's names the node; Warren has one kind).
pub const CLIENT_ID: &str = "warren";

/// E2B's control-plane routes; every one has a rule in `auth::policy`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sandboxes", get(control::list).post(control::create))
        .route("/v2/sandboxes", get(control::list).post(control::create))
        .route("/sandboxes/{id}", get(control::info).delete(control::kill))
        .route("/sandboxes/{id}/connect", post(control::connect))
        .route("/v2/sandboxes/{id}/connect", post(control::connect))
        .route("/sandboxes/{id}/timeout", post(control::set_timeout))
        .route("/sandboxes/{id}/refreshes", post(control::refresh))
        .route("/sandboxes/{id}/metrics", get(metrics::metrics))
        .route("/sandboxes/{id}/network", put(network::update))
        .route("/sandboxes/{id}/pause", post(persist::pause))
        .route("/sandboxes/{id}/resume", post(persist::resume))
        .route("/sandboxes/{id}/fork", post(persist::fork))
        .route("/sandboxes/{id}/snapshots", post(persist::create_snapshot))
        .route("/snapshots", get(persist::list_snapshots))
        .route("/templates", get(control::templates))
        .route("/templates/{id}", delete(persist::delete_snapshot))
        .route(
            "/events/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/events/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/events/sandboxes/{id}", get(webhooks::sandbox_events))
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use crate::auth::policy::rule_for;

    /// Every E2B route is in the permission table, for API keys only.
    #[test]
    fn every_e2b_route_has_a_rule() {
        let routes = [
            (Method::GET, "/sandboxes"),
            (Method::POST, "/sandboxes"),
            (Method::GET, "/v2/sandboxes"),
            (Method::POST, "/v2/sandboxes"),
            (Method::GET, "/sandboxes/{id}"),
            (Method::DELETE, "/sandboxes/{id}"),
            (Method::POST, "/sandboxes/{id}/connect"),
            (Method::POST, "/v2/sandboxes/{id}/connect"),
            (Method::POST, "/sandboxes/{id}/timeout"),
            (Method::POST, "/sandboxes/{id}/refreshes"),
            (Method::GET, "/sandboxes/{id}/metrics"),
            (Method::GET, "/templates"),
            (Method::POST, "/sandboxes/{id}/pause"),
            (Method::POST, "/sandboxes/{id}/resume"),
            (Method::POST, "/sandboxes/{id}/fork"),
            (Method::POST, "/sandboxes/{id}/snapshots"),
            (Method::GET, "/snapshots"),
            (Method::DELETE, "/templates/{id}"),
            (Method::GET, "/events/webhooks"),
            (Method::POST, "/events/webhooks"),
            (Method::GET, "/events/webhooks/{id}"),
            (Method::PATCH, "/events/webhooks/{id}"),
            (Method::DELETE, "/events/webhooks/{id}"),
            (Method::GET, "/events/sandboxes/{id}"),
        ];
        for (method, route) in routes {
            let rule = rule_for(&method, route).unwrap_or_else(|| panic!("{method} {route}"));
            assert!(
                !rule.sandbox_token,
                "{method} {route} open to sandbox tokens"
            );
            assert!(rule.scope.is_some(), "{method} {route} needs a scope");
        }
    }
}
