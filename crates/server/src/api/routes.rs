//! The native API's routes, listed once: method, path, handler and the
//! permission rule. From this one list come the router
//! ([`protected_routes`]) and the permission table ([`rule_for`], which
//! the authorizer consults), both by [`crate::route_table`], and the
//! OpenAPI document ([`ApiDoc`]). A route cannot be served without a rule
//! or documented without being served.
//!
//! The public routes (health, the OpenAPI document, hook deliveries
//! authenticated by their signature) are outside the authenticated stack
//! and listed in `api::router`; E2B's routes are `e2b::routes`.

use axum::extract::DefaultBodyLimit;
#[cfg(test)]
use axum::http::Method;
use warren_core::Scope as S;

use super::openapi::{BearerAuth, CommonErrors, UnsignedFormats};
use super::{
    UPLOAD_LIMIT, audit, budgets, events, exec, files, health, hooks, inbox, keys, network, pools,
    processes, pty, quotas, recordings, rules, sandbox_metrics, sandboxes, secrets, session,
    snapshots, teams, templates, timeline, timers, usage, volumes, watch, webhooks,
};
use crate::auth::policy::{needs, needs_or_token, token_or_key};
use crate::route_table::router_and_rules;

/// Hands the list to `$then!`, after `$prefix`. Each line: `method "path"
/// => handler, rule` and optionally `, layer(...)` for a layer on that
/// route alone.
macro_rules! native_routes {
    ($then:ident $(, $prefix:tt)?) => {
        $then! { $($prefix;)?
            get "/v1/sandboxes" => sandboxes::list, needs(S::SandboxesRead);
            get "/v1/sandboxes/watch" => watch::watch, needs(S::SandboxesRead);
            post "/v1/sandboxes" => sandboxes::create, needs(S::SandboxesCreate);
            get "/v1/sandboxes/{id}" => sandboxes::info, needs_or_token(S::SandboxesRead);
            delete "/v1/sandboxes/{id}" => sandboxes::kill, needs(S::SandboxesManage);
            post "/v1/sandboxes/{id}/timeout" => sandboxes::set_timeout, needs(S::SandboxesManage);
            post "/v1/sandboxes/{id}/exec" => exec::exec, needs(S::SandboxesExec);
            get "/v1/sandboxes/{id}/files" => files::download, needs(S::SandboxesExec);
            put "/v1/sandboxes/{id}/files" => files::upload, needs(S::SandboxesExec),
                layer(DefaultBodyLimit::max(UPLOAD_LIMIT));
            get "/v1/sandboxes/{id}/pty" => pty::pty, needs(S::SandboxesExec);
            // What runs and with which arguments: as much as exec shows.
            get "/v1/sandboxes/{id}/processes" => processes::list, needs(S::SandboxesExec);
            delete "/v1/sandboxes/{id}/processes/{pid}" => processes::kill, needs(S::SandboxesExec);
            get "/v1/sandboxes/{id}/metrics" => sandbox_metrics::metrics, needs(S::SandboxesRead);
            // A terminal's output: as much as exec shows.
            get "/v1/sandboxes/{id}/recordings" => recordings::list, needs(S::SandboxesExec);
            get "/v1/sandboxes/{id}/recordings/{recording}" => recordings::download,
                needs(S::SandboxesExec);
            post "/v1/sandboxes/{id}/pause" => snapshots::pause, needs(S::SandboxesManage);
            post "/v1/sandboxes/{id}/resume" => snapshots::resume, needs(S::SandboxesManage);
            get "/v1/sandboxes/{id}/snapshots" => snapshots::list, needs(S::SandboxesRead);
            // Taking a snapshot copies the sandbox's memory and files: as
            // much access as exec gives.
            post "/v1/sandboxes/{id}/snapshots" => snapshots::create, needs(S::SandboxesExec);
            delete "/v1/sandboxes/{id}/snapshots/{snapshot}" => snapshots::delete,
                needs(S::SandboxesManage);
            post "/v1/sandboxes/{id}/rollback" => snapshots::rollback, needs(S::SandboxesManage);
            // A sandbox may fork itself: the branches act for its dispatcher.
            post "/v1/sandboxes/{id}/fork" => snapshots::fork, needs_or_token(S::SandboxesCreate);
            get "/metrics" => crate::metrics::scrape, needs(S::TeamsManage);
            // A team's own usage; operators see every team's.
            get "/v1/usage" => usage::report, needs(S::SandboxesRead);
            // Budgets: members read them, team admins set them, operators
            // lift one for its period.
            get "/v1/budgets" => budgets::list, needs(S::SandboxesRead);
            post "/v1/budgets" => budgets::create, needs(S::KeysManage);
            put "/v1/budgets/{id}" => budgets::update, needs(S::KeysManage);
            delete "/v1/budgets/{id}" => budgets::delete, needs(S::KeysManage);
            put "/v1/budgets/{id}/override" => budgets::set_override, needs(S::TeamsManage);
            // Anomaly rules: members read them, team admins set their
            // team's, operators every team's (checked in the handler).
            get "/v1/rules" => rules::list, needs(S::SandboxesRead);
            put "/v1/rules" => rules::set, needs(S::KeysManage);
            get "/v1/templates" => templates::list, needs(S::SandboxesRead);
            get "/v1/templates/{name}" => templates::versions, needs(S::SandboxesRead);
            post "/v1/templates/{name}/build" => templates::build, needs(S::TemplatesBuild);
            // A Dockerfile build makes a template every team sees.
            post "/v1/templates/{name}/builds" => templates::build_dockerfile, needs(S::TeamsManage),
                layer(DefaultBodyLimit::disable());
            // Tags and removals change what every team starts from:
            // operators only. DELETE takes NAME, NAME:TAG or NAME@VERSION.
            put "/v1/templates/{name}/tags/{tag}" => templates::tag, needs(S::TeamsManage);
            delete "/v1/templates/{name}" => templates::remove, needs(S::TeamsManage);
            get "/v1/template-aliases" => templates::aliases, needs(S::SandboxesRead);
            put "/v1/template-aliases/{alias}" => templates::set_alias, needs(S::TeamsManage);
            delete "/v1/template-aliases/{alias}" => templates::remove_alias, needs(S::TeamsManage);
            // Templates are every team's: only operators put an image there.
            post "/v1/templates/{name}/import" => templates::import, needs(S::TeamsManage),
                layer(DefaultBodyLimit::disable());
            get "/v1/teams" => teams::list_teams, needs(S::TeamsManage);
            post "/v1/teams" => teams::create_team, needs(S::TeamsManage);
            // Quotas bound what a team may take of the host: operators only.
            get "/v1/teams/{team}/quota" => quotas::get_quota, needs(S::TeamsManage);
            put "/v1/teams/{team}/quota" => quotas::set_quota, needs(S::TeamsManage);
            // Pools hold the host's capacity for every team: operators only.
            get "/v1/pools" => pools::list, needs(S::TeamsManage);
            put "/v1/pools/{template}" => pools::set, needs(S::TeamsManage);
            delete "/v1/pools/{template}" => pools::delete, needs(S::TeamsManage);
            get "/v1/users" => teams::list_users, needs(S::KeysManage);
            post "/v1/users" => teams::create_user, needs(S::KeysManage);
            get "/v1/whoami" => teams::whoami, token_or_key();
            get "/v1/keys" => keys::list, needs(S::KeysManage);
            post "/v1/keys" => keys::create, needs(S::KeysManage);
            delete "/v1/keys/{id}" => keys::revoke, needs(S::KeysManage);
            get "/v1/secrets" => secrets::list, needs(S::SecretsUse);
            post "/v1/secrets" => secrets::set, needs(S::SecretsManage);
            delete "/v1/secrets/{name}" => secrets::delete, needs(S::SecretsManage);
            // Volumes are the team's: reading them is reading sandboxes,
            // making one is making room for sandboxes, deleting one
            // destroys data like killing a sandbox does.
            get "/v1/volumes" => volumes::list, needs(S::SandboxesRead);
            post "/v1/volumes" => volumes::create, needs(S::SandboxesCreate);
            get "/v1/volumes/{name}" => volumes::get, needs(S::SandboxesRead);
            delete "/v1/volumes/{name}" => volumes::delete, needs(S::SandboxesManage);
            get "/v1/webhooks" => webhooks::list, needs(S::WebhooksRead);
            post "/v1/webhooks" => webhooks::create, needs(S::WebhooksWrite);
            get "/v1/webhooks/{id}" => webhooks::get, needs(S::WebhooksRead);
            delete "/v1/webhooks/{id}" => webhooks::delete, needs(S::WebhooksWrite);
            get "/v1/webhooks/{id}/deliveries" => webhooks::deliveries, needs(S::WebhooksRead);
            get "/v1/sandboxes/{id}/timeline" => timeline::timeline, needs(S::SandboxesRead);
            get "/v1/sandboxes/{id}/events" => events::list, needs(S::EventsRead);
            post "/v1/sandboxes/{id}/events" => events::send, needs(S::EventsSend);
            put "/v1/sandboxes/{id}/wake" => inbox::set_wake, needs(S::SandboxesManage);
            // A sandbox takes and acknowledges its own events (the handlers
            // refuse API keys).
            get "/v1/self/events" => inbox::take, token_or_key();
            post "/v1/self/events/ack" => inbox::ack, token_or_key();
            // A sandbox may set timers on itself ("wake me in an hour").
            get "/v1/sandboxes/{id}/timers" => timers::list, needs_or_token(S::EventsRead);
            post "/v1/sandboxes/{id}/timers" => timers::create, needs_or_token(S::EventsSend);
            delete "/v1/sandboxes/{id}/timers/{timer}" => timers::delete,
                needs_or_token(S::EventsSend);
            get "/v1/hooks" => hooks::list, needs(S::HooksRead);
            post "/v1/hooks" => hooks::create, needs(S::HooksWrite);
            get "/v1/hooks/{id}" => hooks::get, needs(S::HooksRead);
            delete "/v1/hooks/{id}" => hooks::delete, needs(S::HooksWrite);
            post "/v1/hooks/{id}/subscriptions" => hooks::subscribe, needs(S::HooksWrite);
            delete "/v1/hooks/{id}/subscriptions/{sub}" => hooks::unsubscribe,
                needs(S::HooksWrite);
            put "/v1/sandboxes/{id}/network" => network::update, needs(S::SandboxesManage);
            get "/v1/sandboxes/{id}/network/events" => network::events, needs(S::SandboxesRead);
            get "/v1/audit/entries" => audit::entries, needs(S::AuditRead);
            get "/v1/audit/entries/{index}/proof" => audit::proof, needs(S::AuditRead);
            get "/v1/audit/consistency" => audit::consistency, needs(S::AuditRead);
            get "/v1/audit/heads" => audit::heads, needs(S::AuditRead);
        }
    };
}

/// Derives the OpenAPI document from the list (and the public routes).
macro_rules! openapi_doc {
    ($( $method:ident $path:literal => $handler:path, $rule:expr $(, layer($layer:expr))? ; )*) => {
        /// The OpenAPI document of the native API, generated from the
        /// handlers and the types in `warren-api-types`.
        #[derive(utoipa::OpenApi)]
        #[openapi(
            info(title = "Warren API", description = "Sandboxes for AI agents: the native /v1 API."),
            paths(health::health, hooks::deliver, session::login, session::current, session::logout, $($handler),*),
            modifiers(&BearerAuth, &CommonErrors, &UnsignedFormats),
        )]
        pub struct ApiDoc;
    };
}

native_routes!(router_and_rules, protected_routes);
native_routes!(openapi_doc);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn the_document_and_the_table_name_the_same_routes() {
        let doc = ApiDoc::openapi();
        let mut documented = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("get", item.get.is_some()),
                ("post", item.post.is_some()),
                ("put", item.put.is_some()),
                ("delete", item.delete.is_some()),
                ("patch", item.patch.is_some()),
            ];
            for (method, present) in methods {
                if present {
                    documented.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let public = [
            ("get", "/v1/health"),
            ("post", super::super::HOOK_DELIVERY),
            ("get", super::super::SESSION),
            ("post", super::super::SESSION),
            ("delete", super::super::SESSION),
        ];
        for (m, p) in public {
            assert!(documented.remove(&(m.to_owned(), p.to_owned())), "{m} {p}");
        }
        let listed: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(listed.len(), ROUTES.len(), "a route is listed twice");
        assert_eq!(documented, listed);
    }

    #[test]
    fn sandbox_tokens_reach_only_reading_forking_and_timing_themselves_and_their_own_events() {
        let token_routes: Vec<_> = ROUTES
            .iter()
            .filter(|(m, r)| {
                rule_for(&m.to_uppercase().parse().unwrap(), r)
                    .unwrap()
                    .sandbox_token
            })
            .map(|(m, r)| format!("{m} {r}"))
            .collect();
        assert_eq!(
            token_routes,
            [
                "get /v1/sandboxes/{id}",
                "post /v1/sandboxes/{id}/fork",
                "get /v1/whoami",
                "get /v1/self/events",
                "post /v1/self/events/ack",
                "get /v1/sandboxes/{id}/timers",
                "post /v1/sandboxes/{id}/timers",
                "delete /v1/sandboxes/{id}/timers/{timer}",
            ]
        );
        assert!(rule_for(&Method::GET, "/v1/nope").is_none());
        assert!(rule_for(&Method::DELETE, "/v1/self/events").is_none());
    }

    #[test]
    fn only_operators_read_and_set_quotas_pools_and_import_images() {
        for (method, route) in [
            (Method::GET, "/v1/teams/{team}/quota"),
            (Method::PUT, "/v1/teams/{team}/quota"),
            (Method::POST, "/v1/templates/{name}/import"),
            (Method::GET, "/v1/pools"),
            (Method::PUT, "/v1/pools/{template}"),
            (Method::DELETE, "/v1/pools/{template}"),
        ] {
            let rule = rule_for(&method, route).unwrap();
            assert_eq!(rule.scope, Some(S::TeamsManage));
            assert!(!rule.sandbox_token);
        }
        assert!(
            !warren_core::Role::Admin
                .grants(false)
                .contains(S::TeamsManage)
        );
    }
}
