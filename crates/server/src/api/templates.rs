use axum::Json;
use axum::body::Body;
use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use warren_api_types::{
    SetTemplateAliasRequest, TagTemplateRequest, Template, TemplateAlias, TemplateAliasList,
    TemplateList, TemplateRemoved, TemplateVersions,
};
use warren_core::WarrenError;
use warren_template::oci::ImageFormat;

use warren_core::network::NetRule;

use super::stream::ndjson;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::templates::DockerfileRequest;

#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    responses((status = 200, body = TemplateList)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<TemplateList>> {
    Ok(Json(TemplateList {
        templates: state.templates.list()?,
    }))
}

/// Every version of a template, newest first, with its tags.
#[utoipa::path(get, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path)),
    responses((status = 200, body = TemplateVersions), (status = 404, body = warren_api_types::ApiError)))]
pub async fn versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<TemplateVersions>> {
    warren_core::spec::validate_template_name(&name)?;
    Ok(Json(state.templates.versions(&name).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BuildQuery {
    /// Build again even if the template is ready: a new version (the same
    /// one when the result is identical), tagged `latest`. Sandboxes keep
    /// the version they started from.
    #[serde(default)]
    pub rebuild: bool,
}

/// Builds a template (a ready one only with `rebuild`); streams
/// `BuildEvent`s as NDJSON.
#[utoipa::path(post, path = "/v1/templates/{name}/build", tag = "templates",
    params(("name" = String, Path), BuildQuery),
    responses((status = 200, description = "NDJSON stream of BuildEvent", body = warren_api_types::BuildEvent, content_type = "application/x-ndjson")))]
pub async fn build(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<BuildQuery>,
) -> ApiResult<Response> {
    let events = state.templates.build(name, q.rebuild)?;
    Ok(ndjson(tokio_stream::wrappers::ReceiverStream::new(events)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DockerfileQuery {
    /// The Dockerfile's path inside the context (default `Dockerfile`).
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// Build arguments, `KEY=VALUE`, comma-separated.
    #[serde(default)]
    pub args: Option<String>,
    /// Domains or CIDRs the RUN steps may reach besides the host's Debian
    /// mirror, comma-separated.
    #[serde(default)]
    pub allow: Option<String>,
    /// Run every step even when the step cache holds it, and build a new
    /// version even when nothing changed since the last build.
    #[serde(default)]
    pub no_cache: bool,
}

/// Builds a new version of the template from a Dockerfile; the body is the
/// build context as a tar. Streams `BuildEvent`s as NDJSON once the
/// context is in and the Dockerfile read.
#[utoipa::path(post, path = "/v1/templates/{name}/builds", tag = "templates",
    params(("name" = String, Path), DockerfileQuery),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 200, description = "NDJSON stream of BuildEvent", body = warren_api_types::BuildEvent, content_type = "application/x-ndjson"),
        (status = 400, body = warren_api_types::ApiError), (status = 413, body = warren_api_types::ApiError)))]
pub async fn build_dockerfile(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DockerfileQuery>,
    body: Body,
) -> ApiResult<Response> {
    let mut args = BTreeMap::new();
    for pair in q
        .args
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            WarrenError::invalid(format!("build argument {pair:?} is not KEY=VALUE"))
        })?;
        args.insert(k.to_owned(), v.to_owned());
    }
    let allow = q
        .allow
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|r| !r.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<NetRule>, _>>()?;
    let req = DockerfileRequest {
        name,
        dockerfile: q.dockerfile.unwrap_or_else(|| "Dockerfile".into()),
        args,
        allow,
        no_cache: q.no_cache,
    };
    let events = state
        .templates
        .build_dockerfile(req, body.into_data_stream(), &caller)
        .await?;
    Ok(ndjson(tokio_stream::wrappers::ReceiverStream::new(events)))
}

/// Points a tag of the template at a version (`target`: a version id or
/// another tag). Moving `latest` changes what new sandboxes start from.
#[utoipa::path(put, path = "/v1/templates/{name}/tags/{tag}", tag = "templates",
    params(("name" = String, Path), ("tag" = String, Path)),
    request_body = TagTemplateRequest,
    responses((status = 200, body = Template), (status = 404, body = warren_api_types::ApiError)))]
pub async fn tag(
    State(state): State<AppState>,
    Path((name, tag)): Path<(String, String)>,
    crate::extract::ApiJson(req): crate::extract::ApiJson<TagTemplateRequest>,
) -> ApiResult<Json<Template>> {
    warren_core::spec::validate_template_name(&name)?;
    Ok(Json(state.templates.tag(&name, &tag, &req.target).await?))
}

/// Every template alias: names that stand for a template (built in, like
/// E2B's `code-interpreter-v1`, or set by an operator).
#[utoipa::path(get, path = "/v1/template-aliases", tag = "templates",
    responses((status = 200, body = TemplateAliasList)))]
pub async fn aliases(State(state): State<AppState>) -> ApiResult<Json<TemplateAliasList>> {
    Ok(Json(TemplateAliasList {
        aliases: state.templates.aliases()?,
    }))
}

/// Makes `alias` stand for a template. A template of the alias's own name
/// always wins; an alias cannot point at another alias.
#[utoipa::path(put, path = "/v1/template-aliases/{alias}", tag = "templates",
    params(("alias" = String, Path)),
    request_body = SetTemplateAliasRequest,
    responses((status = 200, body = TemplateAlias), (status = 400, body = warren_api_types::ApiError)))]
pub async fn set_alias(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    crate::extract::ApiJson(req): crate::extract::ApiJson<SetTemplateAliasRequest>,
) -> ApiResult<Json<TemplateAlias>> {
    Ok(Json(state.templates.set_alias(&alias, &req.target)?))
}

/// Removes a stored alias (a built-in one it overrode applies again).
#[utoipa::path(delete, path = "/v1/template-aliases/{alias}", tag = "templates",
    params(("alias" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn remove_alias(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    state.templates.remove_alias(&alias)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Removes `NAME` (every tag: the template is gone for new sandboxes),
/// `NAME:TAG` (that tag) or `NAME@VERSION` (that version's tags; not the
/// `latest` one). Versions are deleted once no sandbox or snapshot uses
/// them.
#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "templates",
    params(("name" = String, Path, description = "NAME, NAME:TAG or NAME@VERSION")),
    responses((status = 200, body = TemplateRemoved), (status = 404, body = warren_api_types::ApiError),
        (status = 409, body = warren_api_types::ApiError)))]
pub async fn remove(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> ApiResult<Json<TemplateRemoved>> {
    Ok(Json(state.templates.remove(&reference).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `oci-archive` (a tar of an OCI image layout) or `docker-archive`
    /// (`docker save` output).
    pub format: String,
}

/// Imports an image archive (the request body) as a template; streams
/// `BuildEvent`s as NDJSON once the upload is in.
#[utoipa::path(post, path = "/v1/templates/{name}/import", tag = "templates",
    params(("name" = String, Path), ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/x-tar"),
    responses((status = 200, description = "NDJSON stream of BuildEvent", body = warren_api_types::BuildEvent, content_type = "application/x-ndjson"),
        (status = 413, body = warren_api_types::ApiError)))]
pub async fn import(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> ApiResult<Response> {
    let format: ImageFormat = q
        .format
        .parse()
        .map_err(|e: warren_template::oci::OciError| WarrenError::invalid(e.to_string()))?;
    let events = state
        .templates
        .import(name, format, body.into_data_stream())
        .await?;
    Ok(ndjson(tokio_stream::wrappers::ReceiverStream::new(events)))
}
