use axum::Json;
use utoipa::OpenApi;

use super::{exec, files, health, pty, sandboxes, snapshots, templates};

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
        templates::list, templates::build,
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
