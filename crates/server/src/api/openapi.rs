use axum::Json;
use utoipa::OpenApi;

use super::{
    audit, events, exec, files, health, hooks, inbox, keys, network, pty, quotas, sandboxes,
    secrets, snapshots, teams, templates, timeline, timers, webhooks,
};

/// The OpenAPI document of the native API, generated from the handlers and
/// the types in `warren-api-types`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Warren API", description = "Sandboxes for AI agents: the native /v1 API."),
    paths(
        health::health,
        sandboxes::create, sandboxes::list, sandboxes::info, sandboxes::kill, sandboxes::set_timeout,
        exec::exec,
        files::download, files::upload,
        pty::pty,
        snapshots::pause, snapshots::resume, snapshots::create, snapshots::list,
        snapshots::delete, snapshots::rollback, snapshots::fork,
        templates::list, templates::build, templates::import,
        teams::create_team, teams::list_teams, teams::create_user, teams::list_users, teams::whoami,
        quotas::get_quota, quotas::set_quota,
        keys::create, keys::list, keys::revoke,
        secrets::set, secrets::list, secrets::delete,
        audit::entries, audit::proof, audit::consistency, audit::heads,
        timeline::timeline,
        network::update, network::events,
        events::send, events::list,
        inbox::take, inbox::ack, inbox::set_wake,
        hooks::create, hooks::list, hooks::get, hooks::delete, hooks::deliver,
        hooks::subscribe, hooks::unsubscribe,
        timers::create, timers::list, timers::delete,
        webhooks::create, webhooks::list, webhooks::get, webhooks::delete, webhooks::deliveries,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// Serves the OpenAPI document; needs no key.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_endpoints_and_their_schemas_are_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/v1/audit/entries",
            "/v1/audit/entries/{index}/proof",
            "/v1/audit/consistency",
            "/v1/audit/heads",
            "/v1/sandboxes/{id}/timeline",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        for schema in [
            "AuditEntryList",
            "InclusionProof",
            "ConsistencyProof",
            "AuditHeads",
            "Timeline",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} missing"
            );
        }
    }
}
