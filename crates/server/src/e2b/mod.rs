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
//!   the same permission check as the native API, against [`rule_for`] (its
//!   routes and their rules are one list, [`routes`]).
//!
//! Pause, resume, fork and snapshots are Warren's own ([`persist`]), and
//! so is the egress policy E2B's network settings map onto ([`network`]),
//! and the lifecycle webhooks and events of `/events/…` ([`webhooks`]).
//! E2B's secrets are Warren's team secrets ([`secrets`]), its volumes
//! Warren's team volumes ([`volumes`]), whose files its volume content API
//! reads and writes with a volume token instead of an API key
//! ([`volume_content`]).
//! Templates are built by E2B's builder endpoints over Warren's builds
//! ([`builder`]).

mod builder;
mod control;
mod cut_streams;
mod error;
mod exec_audit;
#[cfg(test)]
mod fuzz;
mod listing;
mod logs;
mod metrics;
mod network;
mod paging;
mod persist;
mod proxy;
mod query;
mod secrets;
mod volume_content;
mod volume_wire;
mod volumes;
mod webhooks;
mod wire;

#[cfg(test)]
use axum::http::Method;
use warren_core::Scope as S;

pub use builder::{Builds, UPLOAD_ROUTE, upload as upload_build_files};
pub use proxy::{SandboxProxy, route_by_header};
pub use volume_content::routes as volume_content_routes;

use crate::auth::policy::needs;
use crate::route_table::router_and_rules;

/// The envd version reported to the SDKs: the newest the SDK `e2b` 2.63.0
/// gates a feature on (`0.6.4`, watching network mounts); the agent serves
/// every feature up to it.
pub const ENVD_VERSION: &str = "0.6.4";
/// `clientID` in E2B answers (E2B's names the node; Warren has one kind).
pub const CLIENT_ID: &str = "warren";

/// Hands E2B's control-plane routes to `$then!`, after `$prefix`:
/// `method "path" => handler, rule`, one line each, for API keys only.
macro_rules! e2b_routes {
    ($then:ident $(, $prefix:tt)?) => {
        $then! { $($prefix;)?
            get "/sandboxes" => listing::list, needs(S::SandboxesRead);
            post "/sandboxes" => control::create, needs(S::SandboxesCreate);
            get "/v2/sandboxes" => listing::list, needs(S::SandboxesRead);
            post "/v2/sandboxes" => control::create, needs(S::SandboxesCreate);
            get "/sandboxes/{id}" => control::info, needs(S::SandboxesRead);
            delete "/sandboxes/{id}" => control::kill, needs(S::SandboxesManage);
            // Connect hands out the envd access token, the key to exec and files.
            post "/sandboxes/{id}/connect" => control::connect, needs(S::SandboxesExec);
            post "/v2/sandboxes/{id}/connect" => control::connect, needs(S::SandboxesExec);
            post "/sandboxes/{id}/timeout" => control::set_timeout, needs(S::SandboxesManage);
            post "/sandboxes/{id}/refreshes" => control::refresh, needs(S::SandboxesManage);
            get "/sandboxes/{id}/metrics" => metrics::metrics, needs(S::SandboxesRead);
            get "/sandboxes/{id}/logs" => logs::logs_v1, needs(S::SandboxesRead);
            get "/v2/sandboxes/{id}/logs" => logs::logs_v2, needs(S::SandboxesRead);
            put "/sandboxes/{id}/network" => network::update, needs(S::SandboxesManage);
            post "/sandboxes/{id}/pause" => persist::pause, needs(S::SandboxesManage);
            post "/sandboxes/{id}/resume" => persist::resume, needs(S::SandboxesManage);
            post "/sandboxes/{id}/fork" => persist::fork, needs(S::SandboxesCreate);
            post "/sandboxes/{id}/snapshots" => persist::create_snapshot, needs(S::SandboxesExec);
            get "/snapshots" => persist::list_snapshots, needs(S::SandboxesRead);
            get "/templates" => control::templates, needs(S::SandboxesRead);
            // Builds change what every team's sandboxes start from.
            post "/v3/templates" => builder::request, needs(S::TeamsManage);
            get "/templates/{id}/files/{hash}" => builder::file_link, needs(S::TeamsManage);
            post "/v2/templates/{id}/builds/{build}" => builder::start, needs(S::TeamsManage);
            get "/templates/{id}/builds/{build}/status" => builder::status, needs(S::TeamsManage);
            get "/templates/aliases/{alias}" => builder::alias, needs(S::SandboxesRead);
            get "/templates/{id}/tags" => builder::tags, needs(S::SandboxesRead);
            post "/templates/tags" => builder::assign_tags, needs(S::TeamsManage);
            delete "/templates/tags" => builder::remove_tags, needs(S::TeamsManage);
            delete "/templates/{id}" => persist::delete_snapshot, needs(S::SandboxesManage);
            get "/events/webhooks" => webhooks::list, needs(S::WebhooksRead);
            post "/events/webhooks" => webhooks::create, needs(S::WebhooksWrite);
            get "/events/webhooks/{id}" => webhooks::get, needs(S::WebhooksRead);
            patch "/events/webhooks/{id}" => webhooks::update, needs(S::WebhooksWrite);
            delete "/events/webhooks/{id}" => webhooks::delete, needs(S::WebhooksWrite);
            get "/events/sandboxes/{id}" => webhooks::sandbox_events, needs(S::SandboxesRead);
            // As `/v1/secrets`: names to users, values in from managers only.
            get "/secrets" => secrets::list, needs(S::SecretsUse);
            post "/secrets" => secrets::create, needs(S::SecretsManage);
            get "/secrets/{id}" => secrets::get, needs(S::SecretsUse);
            post "/secrets/{id}" => secrets::update, needs(S::SecretsManage);
            delete "/secrets/{id}" => secrets::delete, needs(S::SecretsManage);
            // As `/v1/volumes`.
            get "/volumes" => volumes::list, needs(S::SandboxesRead);
            post "/volumes" => volumes::create, needs(S::SandboxesCreate);
            get "/volumes/{id}" => volumes::get, needs(S::SandboxesRead);
            delete "/volumes/{id}" => volumes::delete, needs(S::SandboxesManage);
        }
    };
}

e2b_routes!(router_and_rules, routes);

#[cfg(test)]
mod tests {
    use super::*;

    /// E2B's routes are for API keys only, each with a scope.
    #[test]
    fn every_e2b_route_needs_a_scope_and_no_sandbox_token() {
        for (method, route) in ROUTES {
            let method: Method = method.to_uppercase().parse().unwrap();
            let rule = rule_for(&method, route).unwrap();
            assert!(
                !rule.sandbox_token,
                "{method} {route} open to sandbox tokens"
            );
            assert!(rule.scope.is_some(), "{method} {route} needs a scope");
        }
        assert_eq!(ROUTES.len(), 44);
    }
}
