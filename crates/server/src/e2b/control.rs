//! E2B's control plane mapped onto Warren's services: create, connect,
//! get, kill, timeout, refreshes and templates (pause, resume, fork
//! and snapshots are in [`super::persist`], metrics in [`super::metrics`]).
//!
//! Every handler here sits behind the same authentication (E2B sends
//! `X-API-KEY`) and the same permission table as the native API, and takes
//! sandbox ids through [`SandboxPath`], so another team's sandbox is "not
//! found". Fields Warren cannot honour (egress rules, filesystem-only
//! snapshots) are refused with 400 rather than silently ignored.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use time::OffsetDateTime;
use warren_api_types::CreateSandboxRequest;
use warren_core::network::NetworkPolicy;
use warren_core::{OnIdle, SandboxState, SnapshotId, WarrenError};
use warren_store::{GrantKind, SandboxRecord};

use super::error::{E2bError, E2bResult};
use super::wire::{
    ConnectSandbox, CreatedSandbox, Lifecycle, ListedSandbox, NewSandbox, RefreshRequest, Template,
    TimeoutRequest,
};
use super::{CLIENT_ID, ENVD_VERSION};
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, SandboxPath};
use crate::service::{CreateParams, to_completion};
use crate::state::AppState;
use warren_core::rfc3339;

/// How long `POST /sandboxes/{id}/refreshes` keeps a sandbox alive when the
/// body names no duration.
const DEFAULT_REFRESH_S: u64 = 60;

type Body<T> = Result<ApiJson<T>, AppError>;
type Id = Result<SandboxPath, AppError>;

pub(super) fn unsupported(what: &str) -> E2bError {
    E2bError(WarrenError::invalid(format!(
        "{what} is not supported by Warren yet; see docs/e2b.md"
    )))
}

/// Checks the E2B-only fields and maps the rest onto [`CreateParams`]; with
/// `snapshot` (the `templateID` named one of the team's snapshots) the
/// sandbox starts from it.
///
/// E2B's `timeout` is the sandbox's running lifetime and `autoPause` says
/// what its end does: pause instead of kill. That is Warren's `on_idle:
/// pause` with the same lifetime and no idle timeout (the reaper applies
/// `on_idle` when the lifetime runs out). `autoResume.enabled` is
/// Warren's `auto_resume` (off unless asked for, as on E2B).
/// `autoPauseMemory: false` makes that pause keep only the filesystem
/// (`on_idle: pause_filesystem`); as on E2B it cannot be combined with
/// `autoResume`, and says nothing without `autoPause`. Network settings
/// that do not say whether ports are public leave them as
/// `default_network` (the daemon's default policy) has them.
pub(super) fn create_params(
    req: NewSandbox,
    snapshot: Option<SnapshotId>,
    caller: &Caller,
    defaults: &warren_core::Limits,
    default_network: &NetworkPolicy,
) -> E2bResult<CreateParams> {
    let exposure = NetworkPolicy {
        public_ports: default_network.public_ports.clone(),
        all_ports_public: default_network.all_ports_public,
        ..NetworkPolicy::default()
    };
    let network = super::network::to_policy(
        req.allow_internet_access,
        req.network.as_ref(),
        Some(&exposure),
    )?;
    let auto_pause = req.auto_pause == Some(true);
    let auto_resume = req.auto_resume.is_some_and(|a| a.enabled);
    let fs_only = auto_pause && req.auto_pause_memory == Some(false);
    if fs_only && auto_resume {
        return Err(WarrenError::invalid(
            "autoResume cannot be combined with autoPauseMemory=false: a filesystem-only pause is resumed with connect",
        )
        .into());
    }
    let native = CreateSandboxRequest {
        template: snapshot.is_none().then_some(req.template_id),
        snapshot: snapshot.map(|s| s.to_string()),
        timeout_s: req.timeout,
        env: req.env_vars.unwrap_or_default(),
        metadata: req.metadata.unwrap_or_default(),
        on_idle: Some(
            match (auto_pause, fs_only) {
                (true, true) => OnIdle::PauseFilesystem,
                (true, false) => OnIdle::Pause,
                (false, _) => OnIdle::Kill,
            }
            .to_string(),
        ),
        auto_resume: Some(auto_resume),
        network,
        volumes: req.volume_mounts.unwrap_or_default(),
        ..CreateSandboxRequest::default()
    };
    Ok(CreateParams::from_request(native, caller.into(), defaults)?)
}

/// Whether `caller` may be handed a sandbox's tokens: they open its agent
/// (exec, files) and its ports, so only a caller with `sandboxes:exec` gets
/// them — a create-only key creates sandboxes it cannot enter.
pub(super) fn may_enter(caller: &Caller) -> bool {
    caller
        .permissions
        .contains(warren_core::Scope::SandboxesExec)
}

/// The grants `caller` gets for `rec`: envd's and the traffic token, or
/// none for a caller that may not enter.
pub(super) async fn grants(
    state: &AppState,
    rec: &SandboxRecord,
    caller: &Caller,
) -> Result<(Option<String>, Option<String>), WarrenError> {
    if !may_enter(caller) {
        return Ok((None, None));
    }
    let grants = &state.grants;
    let envd = grants
        .issue(&rec.id, &caller.key_id, GrantKind::Envd)
        .await?;
    let traffic = grants
        .issue(&rec.id, &caller.key_id, GrantKind::Traffic)
        .await?;
    Ok((Some(envd), Some(traffic)))
}

pub(super) async fn created(
    state: &AppState,
    rec: &SandboxRecord,
    caller: &Caller,
) -> Result<CreatedSandbox, WarrenError> {
    let (envd_access_token, traffic_access_token) = grants(state, rec, caller).await?;
    Ok(CreatedSandbox {
        template_id: rec.template.clone(),
        sandbox_id: rec.id.to_string(),
        client_id: CLIENT_ID.to_owned(),
        envd_version: ENVD_VERSION.to_owned(),
        envd_access_token,
        traffic_access_token,
        alias: rec.template.clone(),
        domain: Some(state.e2b_domain.to_string()),
    })
}

pub(super) fn listed(state: &AppState, rec: SandboxRecord, token: Option<String>) -> ListedSandbox {
    ListedSandbox {
        template_id: rec.template.clone(),
        alias: rec.template,
        sandbox_id: rec.id.to_string(),
        client_id: CLIENT_ID.to_owned(),
        started_at: rfc3339(rec.created_at),
        end_at: rfc3339(rec.expires_at),
        cpu_count: rec.limits.cpus,
        memory_mb: rec.limits.memory_mb,
        disk_size_mb: rec.limits.disk_mb,
        state: e2b_state(rec.state),
        envd_version: ENVD_VERSION.to_owned(),
        metadata: rec.metadata,
        envd_access_token: token,
        domain: Some(state.e2b_domain.to_string()),
        lifecycle: Lifecycle {
            auto_resume: rec.persistence.auto_resume,
            on_timeout: match rec.persistence.on_idle.pause_mode() {
                Some(_) => OnIdle::Pause.as_str(),
                None => OnIdle::Kill.as_str(),
            },
        },
        pause_mode: (rec.state == SandboxState::Paused)
            .then(|| rec.pause_mode.unwrap_or_default().as_str()),
        volume_mounts: None,
    }
}

/// E2B knows two states; Warren's transitional ones read as the state they
/// lead to or come from.
pub(super) fn e2b_state(s: SandboxState) -> &'static str {
    match s {
        SandboxState::Paused | SandboxState::Pausing => "paused",
        _ => "running",
    }
}

/// `POST /sandboxes`, `POST /v2/sandboxes`: exactly 201 once the agent
/// answers.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewSandbox>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    let ApiJson(req) = body?;
    let snapshot = super::persist::snapshot_named(&state, &caller, &req.template_id).await?;
    let defaults = match snapshot {
        None => state.sandboxes.default_limits_for(Some(&req.template_id)),
        Some(_) => *state.sandboxes.default_limits(),
    };
    let default_network = state.sandboxes.default_network();
    let mut params = create_params(req, snapshot, &caller, &defaults, default_network)?;
    if let Some(policy) = &params.network {
        // As natively: injected secrets must be the team's and the
        // caller's to use.
        let placeholders = state
            .secrets
            .check_injections(&caller, &caller.team, policy)
            .await?;
        params.env.extend(placeholders);
    }
    let (sandboxes, actor) = (state.sandboxes.clone(), AuditActor::from_caller(&caller));
    let rec = to_completion(async move { sandboxes.create(params, &actor).await }).await?;
    Ok((
        StatusCode::CREATED,
        Json(created(&state, &rec, &caller).await?),
    ))
}

/// `POST /sandboxes/{id}/connect`: a running sandbox answers 200 with its
/// connection details, a paused one is resumed first (201); either way its
/// lifetime is extended to `timeout` from now if that is later than its
/// current end.
pub async fn connect(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<ConnectSandbox>>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    let SandboxPath(id) = id?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (resumed, sandbox) =
        super::persist::connect_or_resume(&state, &caller, &id, &req, false).await?;
    let status = if resumed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sandbox)))
}

/// Moves the end of `rec` to `seconds` from now unless it is already later.
pub(super) async fn extend(
    state: &AppState,
    caller: &Caller,
    rec: &SandboxRecord,
    seconds: u64,
) -> E2bResult<SandboxRecord> {
    let wanted = crate::service::deadline(state.sandboxes.now(), seconds)?;
    if wanted <= rec.expires_at {
        return Ok(rec.clone());
    }
    let actor = AuditActor::from_caller(caller);
    Ok(state
        .sandboxes
        .set_timeout(&rec.id, seconds, &actor)
        .await?)
}

/// `GET /sandboxes/{id}`; the access token only for [`may_enter`] callers.
pub async fn info(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> E2bResult<Json<ListedSandbox>> {
    let SandboxPath(id) = id?;
    let rec = state.sandboxes.get(&id).await?;
    let (token, _) = grants(&state, &rec, &caller).await?;
    let mounts = crate::api::sandbox_mounts(&state, &rec.id).await?;
    Ok(Json(ListedSandbox {
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..listed(&state, rec, token)
    }))
}

/// `DELETE /sandboxes/{id}`: 204.
pub async fn kill(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
) -> E2bResult<StatusCode> {
    let SandboxPath(id) = id?;
    let (sandboxes, actor) = (state.sandboxes.clone(), AuditActor::from_caller(&caller));
    to_completion(async move { sandboxes.kill(&id, &actor).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sandboxes/{id}/timeout`: the sandbox ends `timeout` seconds from
/// now (sooner or later than before); 204.
pub async fn set_timeout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Body<TimeoutRequest>,
) -> E2bResult<StatusCode> {
    let SandboxPath(id) = id?;
    let ApiJson(req) = body?;
    let actor = AuditActor::from_caller(&caller);
    match req.timeout {
        0 => state.sandboxes.expire_now(&id, &actor).await?,
        timeout => state.sandboxes.set_timeout(&id, timeout, &actor).await?,
    };
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /sandboxes/{id}/refreshes`: keeps the sandbox alive at least
/// `duration` seconds more (never shortens it); 204.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<RefreshRequest>>,
) -> E2bResult<StatusCode> {
    let SandboxPath(id) = id?;
    let duration = body
        .and_then(|Json(b)| b.duration)
        .unwrap_or(DEFAULT_REFRESH_S);
    let rec = state.sandboxes.get(&id).await?;
    extend(&state, &caller, &rec, duration).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /templates`: Warren's templates; the name is the id.
pub async fn templates(State(state): State<AppState>) -> E2bResult<Json<Vec<Template>>> {
    let defaults = *state.sandboxes.default_limits();
    let list = state.templates.list()?;
    Ok(Json(
        list.into_iter()
            .map(|t| {
                let at = t
                    .built_at
                    .clone()
                    .unwrap_or_else(|| rfc3339(OffsetDateTime::UNIX_EPOCH));
                Template {
                    template_id: t.name.clone(),
                    build_id: t.version.clone().unwrap_or_else(|| t.name.clone()),
                    cpu_count: defaults.cpus,
                    memory_mb: defaults.memory_mb,
                    disk_size_mb: defaults.disk_mb,
                    public: false,
                    aliases: vec![t.name.clone()],
                    names: vec![t.name],
                    created_at: at.clone(),
                    updated_at: at,
                    created_by: None,
                    last_spawned_at: None,
                    spawn_count: 0,
                    build_count: 1,
                    envd_version: ENVD_VERSION.to_owned(),
                    build_status: match t.status.as_str() {
                        "ready" => "ready",
                        "building" => "building",
                        _ => "error",
                    },
                }
            })
            .collect(),
    ))
}
