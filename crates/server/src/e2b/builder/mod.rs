//! E2B's template builder (the endpoints the SDKs' `Template.build` uses)
//! over Warren's builds: a build of `Template().from_…().…` becomes a
//! build plan ([`steps`]) run by the same build sandbox as a Dockerfile,
//! into the next version of the template of that name.
//!
//! The flow, as the SDK drives it:
//! 1. `POST /v3/templates` {name, tags}: a build id ([`registry`]); the
//!    template id is the name (`name:tag` adds the tag).
//! 2. For each COPY, `GET /templates/{id}/files/{hash}`, and a PUT of the
//!    files to the URL it gives when they are not present ([`files`]).
//! 3. `POST /v2/templates/{id}/builds/{buildID}` with the steps: checked
//!    and planned before it answers (a base that cannot be had, a bad step
//!    or missing files are a 400 naming them), then built in the
//!    background.
//! 4. `GET /templates/{id}/builds/{buildID}/status?logsOffset=` until
//!    `ready` or `error` (with the failing step's number and message).
//!
//! Tags and aliases: [`tags`].
//!
//! Builds change a template every sandbox may start from, so starting one
//! and moving tags take the operator scope `teams:manage`, as the native
//! build endpoints do.

mod files;
mod registry;
pub(super) mod steps;
mod tags;

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Body as RawBody;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use warren_api_types::BuildEvent;
use warren_core::{TeamId, WarrenError, rfc3339};
use warren_template::TemplateRef;

use super::error::E2bResult;
use crate::auth::{Caller, Pepper};
use crate::clock::Clock;
use crate::error::AppError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::templates::TemplateBuilds;
pub use files::UPLOAD_ROUTE;
use registry::{Phase, Registry};
pub use tags::{alias, assign_tags, remove_tags, tags};

type Body<T> = Result<ApiJson<T>, AppError>;

/// Most log entries one status answer carries (E2B's page).
const PAGE: usize = 100;

/// E2B's builds in flight and their files.
pub struct Builds {
    files: files::BuildFiles,
    registry: Registry,
    templates: Arc<TemplateBuilds>,
    clock: Clock,
}

impl Builds {
    pub fn new(templates: Arc<TemplateBuilds>, upload_secret: Pepper, clock: Clock) -> Self {
        Self {
            files: files::BuildFiles::new(templates.dir(), upload_secret),
            registry: Registry::default(),
            templates,
            clock,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    #[serde(default)]
    name: Option<String>,
    /// The older SDKs' spelling of `name`.
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestedBuild {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "buildID")]
    build_id: String,
    public: bool,
    names: Vec<String>,
    tags: Vec<String>,
    aliases: Vec<String>,
}

/// `POST /v3/templates`: a build id for the next version of `name`.
pub async fn request(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<BuildRequest>,
) -> E2bResult<(StatusCode, Json<RequestedBuild>)> {
    let ApiJson(req) = body?;
    let spelled = req.name.or(req.alias).unwrap_or_default();
    let reference = TemplateRef::parse(&spelled).map_err(|e| {
        WarrenError::invalid(format!(
            "template name {spelled:?}: {e} (Warren's names are flat: no team prefix)"
        ))
    })?;
    warren_template::store::check_import_name(&reference.name)?;
    let mut tags = req.tags;
    if let warren_template::reference::Selector::Tag(tag) = &reference.selector
        && !reference.is_latest()
    {
        tags.insert(0, tag.clone());
    }
    for tag in &tags {
        warren_template::reference::validate_tag(tag)?;
    }
    let name = reference.name;
    let build_id = state
        .e2b_builds
        .registry
        .add(&name, &caller.team, tags.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(RequestedBuild {
            template_id: name.clone(),
            build_id,
            public: false,
            names: vec![name.clone()],
            tags,
            aliases: vec![name],
        }),
    ))
}

#[derive(Debug, Serialize)]
pub struct FileLink {
    present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

/// `GET /templates/{id}/files/{hash}`: whether the team has the file set,
/// and where to upload it if not.
pub async fn file_link(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((template, hash)): Path<(String, String)>,
    headers: HeaderMap,
) -> E2bResult<(StatusCode, Json<FileLink>)> {
    warren_core::spec::validate_template_name(&template)?;
    check_hash(&hash)?;
    let builds = &state.e2b_builds;
    let link = if builds.files.present(&caller.team, &hash) {
        FileLink {
            present: true,
            url: None,
        }
    } else {
        let now = builds.clock.now().unix_timestamp();
        let path = builds.files.upload_path(&caller.team, &hash, now);
        FileLink {
            present: false,
            url: Some(format!("{}{path}", origin(&headers)?)),
        }
    };
    Ok((StatusCode::CREATED, Json(link)))
}

/// `PUT /e2b/uploads/{team}/{hash}?expires=…&signature=…` (no API key:
/// the signed URL is the authority): the files of a COPY.
pub async fn upload(
    State(state): State<AppState>,
    Path((team, hash)): Path<(String, String)>,
    Query(signed): Query<files::Signed>,
    body: RawBody,
) -> E2bResult<StatusCode> {
    let team: TeamId = team.parse()?;
    check_hash(&hash)?;
    let builds = &state.e2b_builds;
    let now = builds.clock.now().unix_timestamp();
    builds.files.check(&team, &hash, &signed, now)?;
    builds
        .files
        .receive(&team, &hash, body.into_data_stream())
        .await?;
    Ok(StatusCode::OK)
}

/// `POST /v2/templates/{id}/builds/{buildID}`: plans the build and starts
/// it; see the module docs.
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((template, build_id)): Path<(String, String)>,
    body: Body<steps::BuildSpec>,
) -> E2bResult<StatusCode> {
    let ApiJson(spec) = body?;
    let builds = state.e2b_builds.clone();
    let record = builds.registry.get(&build_id, &template, &caller.team)?;
    if record.phase != Phase::Waiting {
        return Err(WarrenError::precondition(format!(
            "build {build_id} was started already; ask POST /v3/templates for a new build"
        ))
        .into());
    }
    let ready: Vec<String> = builds
        .templates
        .list()?
        .into_iter()
        .filter(|t| t.version.is_some())
        .map(|t| t.name)
        .collect();
    let invalid = |e: steps::SpecError| WarrenError::invalid(e.0);
    let from = steps::base(&spec, &ready).map_err(invalid)?;
    // ENV expands as in the sandbox: the agent's PATH and HOME, then the
    // base's environment.
    let mut env: std::collections::BTreeMap<String, String> =
        warren_runtime::RuntimeSpec::agent_env()
            .into_iter()
            .collect();
    env.extend(builds.templates.ready(&from)?.default_env());
    let planned = steps::plan(&spec, from, &env).map_err(invalid)?;
    let context = builds.templates.context_dir()?;
    for hash in &planned.hashes {
        let (files, team, hash) = (&builds.files, &caller.team, hash.as_str());
        files.unpack(team, hash, &context.path().join(hash))?;
    }
    builds.registry.start(&build_id)?;
    let events = builds.templates.build_plan(
        template.clone(),
        planned.plan,
        context,
        &caller,
        Vec::new(),
        planned.fresh_from,
    )?;
    tokio::spawn(follow(builds, build_id, template, record.tags, events));
    Ok(StatusCode::ACCEPTED)
}

/// Copies a running build's events into its record, then tags the
/// version it made.
async fn follow(
    builds: Arc<Builds>,
    id: String,
    template: String,
    tags: Vec<String>,
    mut events: tokio::sync::mpsc::Receiver<BuildEvent>,
) {
    let registry = &builds.registry;
    let mut outcome = Some("the build ended without a result".to_owned());
    while let Some(event) = events.recv().await {
        match event {
            BuildEvent::Log { line } => registry.log(&id, "info", line),
            BuildEvent::Error { message } => {
                registry.log(&id, "error", message.clone());
                outcome = Some(message);
            }
            BuildEvent::Done { template: t } => {
                let version = t.version.unwrap_or_default();
                outcome = None;
                for tag in &tags {
                    if let Err(e) = builds.templates.tag(&template, tag, &version).await {
                        outcome = Some(format!("could not tag the build {tag}: {}", e.message));
                    }
                }
                registry.log(&id, "info", format!("built {template}@{version}"));
            }
        }
    }
    registry.finish(&id, outcome);
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    #[serde(default)]
    logs_offset: usize,
    #[serde(default)]
    limit: Option<usize>,
    /// The lowest level shown: `debug`, `info`, `warn` or `error`.
    #[serde(default)]
    level: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    timestamp: String,
    level: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "buildID")]
    build_id: String,
    status: &'static str,
    /// E2B's older plain lines; always empty, as on E2B.
    logs: Vec<String>,
    log_entries: Vec<LogEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Reason>,
}

/// `GET /templates/{id}/builds/{buildID}/status`: the phase and the log
/// from `logsOffset`, at most 100 entries.
pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((template, build_id)): Path<(String, String)>,
    Query(q): Query<StatusQuery>,
) -> E2bResult<Json<BuildStatus>> {
    let record = state
        .e2b_builds
        .registry
        .get(&build_id, &template, &caller.team)?;
    let floor = level_rank(q.level.as_deref().unwrap_or("debug"))?;
    let limit = q.limit.unwrap_or(PAGE).min(PAGE);
    let log_entries = record
        .entries
        .iter()
        .skip(q.logs_offset)
        .filter(|e| level_rank(e.level).unwrap_or(0) >= floor)
        .take(limit)
        .map(|e| LogEntry {
            timestamp: rfc3339(e.at),
            level: e.level,
            message: e.message.clone(),
            step: e.step.clone(),
        })
        .collect();
    Ok(Json(BuildStatus {
        template_id: template,
        build_id,
        status: record.phase.as_str(),
        logs: Vec::new(),
        log_entries,
        reason: record
            .failure
            .map(|(message, step)| Reason { message, step }),
    }))
}

fn level_rank(level: &str) -> Result<u8, WarrenError> {
    match level {
        "debug" => Ok(0),
        "info" => Ok(1),
        "warn" => Ok(2),
        "error" => Ok(3),
        other => Err(WarrenError::invalid(format!(
            "level {other:?} is not one of debug, info, warn, error"
        ))),
    }
}

fn check_hash(hash: &str) -> Result<(), WarrenError> {
    if steps::is_files_hash(hash) {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "{hash:?} is not a files hash (64 lower-case hex digits)"
        )))
    }
}

/// `scheme://host` the client reached the API at.
fn origin(headers: &HeaderMap) -> Result<String, WarrenError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .ok_or_else(|| WarrenError::invalid("the request names no Host"))?;
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}
