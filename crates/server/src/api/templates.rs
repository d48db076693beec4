use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use warren_api_types::TemplateList;

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
