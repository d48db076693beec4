//! E2B's tag and alias endpoints over template versions and tags. Their
//! `buildID` is the version's id spelled as a UUID (E2B's shape): the 16
//! hex digits of the version, then zeros.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use warren_template::TemplateRef;

use super::Body;
use crate::e2b::error::E2bResult;
use crate::extract::ApiJson;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Alias {
    #[serde(rename = "templateID")]
    template_id: String,
    public: bool,
}

/// `GET /templates/aliases/{alias}`: the template of that name, if one is
/// ready.
pub async fn alias(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> E2bResult<Json<Alias>> {
    state.templates.ready(&TemplateRef::parse(&alias)?.name)?;
    Ok(Json(Alias {
        template_id: alias,
        public: false,
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagInfo {
    tag: String,
    #[serde(rename = "buildID")]
    build_id: String,
    created_at: String,
}

/// `GET /templates/{id}/tags`: every tag of the template.
pub async fn tags(
    State(state): State<AppState>,
    Path(template): Path<String>,
) -> E2bResult<Json<Vec<TagInfo>>> {
    warren_core::spec::validate_template_name(&template)?;
    let versions = state.templates.versions(&template).await?;
    let mut out = Vec::new();
    for v in versions.versions {
        let t = v.template;
        let version = t.version.unwrap_or_default();
        for tag in t.tags {
            out.push(TagInfo {
                tag,
                build_id: version_uuid(&version),
                created_at: t.built_at.clone().unwrap_or_default(),
            });
        }
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
pub struct AssignTags {
    /// `name:tag` (or `name`: its latest) of the version to tag.
    target: String,
    tags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AssignedTags {
    tags: Vec<String>,
    #[serde(rename = "buildID")]
    build_id: String,
}

/// `POST /templates/tags`: points `tags` at the version `target` names.
pub async fn assign_tags(
    State(state): State<AppState>,
    body: Body<AssignTags>,
) -> E2bResult<(StatusCode, Json<AssignedTags>)> {
    let ApiJson(req) = body?;
    let target = TemplateRef::parse(&req.target)?;
    let version = state
        .templates
        .ready(&req.target)?
        .version
        .unwrap_or_default();
    for tag in &req.tags {
        state.templates.tag(&target.name, tag, &version).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(AssignedTags {
            tags: req.tags,
            build_id: version_uuid(&version),
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RemoveTags {
    name: String,
    tags: Vec<String>,
}

/// `DELETE /templates/tags`: takes `tags` off the template `name`.
pub async fn remove_tags(
    State(state): State<AppState>,
    body: Body<RemoveTags>,
) -> E2bResult<StatusCode> {
    let ApiJson(req) = body?;
    let name = TemplateRef::parse(&req.name)?.name;
    for tag in &req.tags {
        warren_template::reference::validate_tag(tag)?;
        state.templates.remove(&format!("{name}:{tag}")).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A version id (16 hex digits) in E2B's UUID shape.
fn version_uuid(version: &str) -> String {
    let v = format!("{version:0<16}");
    format!("{}-{}-{}-0000-000000000000", &v[..8], &v[8..12], &v[12..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_uuids() {
        assert_eq!(
            version_uuid("6fb56850d1f63928"),
            "6fb56850-d1f6-3928-0000-000000000000"
        );
    }
}
