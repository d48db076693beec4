use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use warren_api_types::TemplateList;
use warren_core::WarrenError;
use warren_template::oci::ImageFormat;

use super::stream::ndjson;
use crate::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/templates", tag = "templates",
    responses((status = 200, body = TemplateList)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<TemplateList>> {
    Ok(Json(TemplateList {
        templates: state.templates.list()?,
    }))
}

/// Builds (or rebuilds) a template; streams `BuildEvent`s as NDJSON.
#[utoipa::path(post, path = "/v1/templates/{name}/build", tag = "templates",
    params(("name" = String, Path)),
    responses((status = 200, description = "NDJSON stream of BuildEvent", body = warren_api_types::BuildEvent, content_type = "application/x-ndjson")))]
pub async fn build(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let events = state.templates.build(name)?;
    Ok(ndjson(tokio_stream::wrappers::ReceiverStream::new(events)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
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
    Query(q): Query<ImportQuery>,
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
