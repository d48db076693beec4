use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use warren_api_types::{CreateSandboxRequest, Sandbox, SandboxList, SetTimeoutRequest};
use warren_core::rfc3339;
use warren_core::{SandboxState, Scope, WarrenError};
use warren_store::{GrantKind, SandboxFilter, SandboxRecord};

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath};
use crate::service::{CreateParams, to_completion};
use crate::state::AppState;

/// The volumes sandbox `id` mounts, as the API shows them.
pub async fn mounts(
    state: &AppState,
    id: &warren_core::SandboxId,
) -> Result<Vec<warren_api_types::VolumeMount>, warren_core::WarrenError> {
    Ok(state
        .sandboxes
        .sandbox_volumes(id)
        .await?
        .into_iter()
        .map(|m| warren_api_types::VolumeMount {
            name: m.volume.name,
            path: m.path,
        })
        .collect())
}

pub fn to_api(rec: SandboxRecord) -> Sandbox {
    let pause_mode = pause_mode(&rec).map(|m| m.to_string());
    Sandbox {
        id: rec.id.to_string(),
        template: rec.template,
        template_version: rec.template_version,
        state: rec.state.to_string(),
        cpus: rec.limits.cpus,
        memory_mb: rec.limits.memory_mb,
        disk_mb: rec.limits.disk_mb,
        metadata: rec.metadata,
        team: rec.team.to_string(),
        owner: rec.owner.to_string(),
        created_at: rfc3339(rec.created_at),
        expires_at: rfc3339(rec.expires_at),
        auto_resume: rec.persistence.auto_resume,
        on_idle: rec.persistence.on_idle.to_string(),
        pause_mode,
        idle_timeout_s: rec.persistence.idle_timeout_s,
        paused_ttl_s: rec.persistence.paused_ttl_s,
        source_snapshot: rec.source_snapshot.map(|s| s.to_string()),
        traffic_token: None,
        network: rec.network,
        volumes: Vec::new(),
        usage: None,
    }
}

/// What the pause of `rec` kept, while it is paused (or on its way back).
fn pause_mode(rec: &SandboxRecord) -> Option<warren_core::PauseMode> {
    let asleep = matches!(
        rec.state,
        warren_core::SandboxState::Paused | warren_core::SandboxState::Resuming
    );
    asleep.then(|| rec.pause_mode.unwrap_or_default())
}

/// Creates a sandbox and returns once its agent answers.
#[utoipa::path(post, path = "/v1/sandboxes", tag = "sandboxes",
    request_body = CreateSandboxRequest,
    responses((status = 201, body = Sandbox), (status = 400, body = warren_api_types::ApiError),
        (status = 404, description = "unknown template", body = warren_api_types::ApiError),
        (status = 503, description = "the host is busy creating sandboxes or short of memory: try again after `retry_after_s`", body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateSandboxRequest>,
) -> ApiResult<(StatusCode, Json<Sandbox>)> {
    let actor = AuditActor::from_caller(&caller);
    let mut params = {
        let defaults = state.sandboxes.default_limits_for(req.template.as_deref());
        CreateParams::from_request(req, (&caller).into(), &defaults)?
    };
    if let Some(policy) = &params.network {
        // Injected secrets must be the team's and the caller's to use; the
        // environment gets their placeholders, never the values.
        let placeholders = state
            .secrets
            .check_injections(&caller, &caller.team, policy)
            .await?;
        params.env.extend(placeholders);
    }
    let sandboxes = state.sandboxes.clone();
    let rec = to_completion(async move { sandboxes.create(params, &actor).await }).await?;
    let volumes = mounts(&state, &rec.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Sandbox {
            volumes,
            ..to_api(rec)
        }),
    ))
}

/// Parses `state=S` and `metadata=K=V` pairs (both repeatable).
pub fn parse_filter(query: Option<&str>) -> Result<SandboxFilter, WarrenError> {
    let mut filter = SandboxFilter::default();
    let mut metadata = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "state" => {
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    filter.states.push(s.parse::<SandboxState>()?);
                }
            }
            "metadata" => {
                let (mk, mv) = v.split_once('=').ok_or_else(|| {
                    WarrenError::invalid(format!("metadata filter '{v}' must look like key=value"))
                })?;
                metadata.insert(mk.to_owned(), mv.to_owned());
            }
            other => {
                return Err(WarrenError::invalid(format!(
                    "unknown query parameter '{other}' (expected state or metadata)"
                )));
            }
        }
    }
    filter.metadata = metadata;
    Ok(filter)
}

/// Lists sandboxes, by default every one that is not killed.
#[utoipa::path(get, path = "/v1/sandboxes", tag = "sandboxes",
    params(("state" = Option<String>, Query, description = "repeatable or comma-separated"),
        ("metadata" = Option<String>, Query, description = "key=value, repeatable")),
    responses((status = 200, body = SandboxList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<SandboxList>> {
    let filter = parse_filter(query.as_deref())?;
    let sandboxes = state.sandboxes.list(&caller.team, filter).await?;
    Ok(Json(SandboxList {
        sandboxes: sandboxes.into_iter().map(to_api).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path)),
    responses((status = 200, body = Sandbox), (status = 404, body = warren_api_types::ApiError)))]
pub async fn info(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<Sandbox>> {
    let rec = state.sandboxes.get(&id).await?;
    let usage = state.sandboxes.sandbox_usage(&rec).await?;
    let mut sandbox = to_api(rec);
    sandbox.volumes = mounts(&state, &id).await?;
    sandbox.usage = Some(super::usage::totals(&usage, state.sandboxes.prices()));
    // The traffic token opens the sandbox's ports: as much as exec gives.
    // Issuing one may write a grant; on a full disk the detail is still
    // answered, without it (the caller's key opens the ports as well).
    if caller.permissions.contains(Scope::SandboxesExec) {
        match state
            .grants
            .issue(&id, &caller.key_id, GrantKind::Traffic)
            .await
        {
            Ok(grant) => sandbox.traffic_token = Some(grant),
            Err(e) if e.kind == warren_core::ErrorKind::InsufficientStorage => {
                tracing::warn!(sandbox = %id, "no traffic token in the detail: {}", e.message);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(sandbox))
}

/// Kills a sandbox; its resources are released in the background.
#[utoipa::path(delete, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn kill(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<StatusCode> {
    let actor = AuditActor::from_caller(&caller);
    let sandboxes = state.sandboxes.clone();
    to_completion(async move { sandboxes.kill(&id, &actor).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the sandbox to be killed `timeout_s` seconds from now.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/timeout", tag = "sandboxes",
    params(("id" = String, Path)), request_body = SetTimeoutRequest,
    responses((status = 200, body = Sandbox), (status = 404, body = warren_api_types::ApiError)))]
pub async fn set_timeout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<SetTimeoutRequest>,
) -> ApiResult<Json<Sandbox>> {
    let actor = AuditActor::from_caller(&caller);
    Ok(Json(to_api(
        state
            .sandboxes
            .set_timeout(&id, req.timeout_s, &actor)
            .await?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let f = parse_filter(Some(
            "state=running,paused&metadata=team%3Dx&metadata=a=b%3Dc",
        ))
        .unwrap();
        assert_eq!(f.states, vec![SandboxState::Running, SandboxState::Paused]);
        assert_eq!(f.metadata.get("team").map(String::as_str), Some("x"));
        assert_eq!(f.metadata.get("a").map(String::as_str), Some("b=c"));
        assert!(parse_filter(Some("state=zombie")).is_err());
        assert!(parse_filter(Some("metadata=novalue")).is_err());
        assert!(parse_filter(Some("limit=3")).is_err());
        assert_eq!(parse_filter(None).unwrap(), SandboxFilter::default());
    }
}
