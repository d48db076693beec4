//! E2B's pause, resume, fork and snapshots mapped onto Warren's services
//! (`service::pause`, `service::fork`, `service::snapshots`), which record
//! every action in the audit log as the native API's do.
//!
//! Mapping:
//! - `POST /sandboxes/{id}/pause` is Warren's pause (memory, processes and
//!   files); 204, 409 when already paused. `memory: false` is Warren's
//!   filesystem-only pause (`PauseMode::Filesystem`): every process ends,
//!   and the resume boots the sandbox again.
//! - `connect` (in `control`) and the older `POST /sandboxes/{id}/resume`
//!   resume a paused sandbox under the same id and tokens. `memory: false`
//!   (`on_resume="reboot"`) is taken for a sandbox paused with its
//!   filesystem alone, which boots again anyway, and refused (400) for one
//!   paused whole.
//! - `POST /sandboxes/{id}/fork` is Warren's fork; `timeout` becomes each
//!   branch's lifetime. Warren's forks are all or nothing, so every entry
//!   of a 201 is a sandbox.
//! - An E2B snapshot is a Warren named snapshot; its `snapshotID` is the
//!   snapshot's id, and `Sandbox.create(<snapshot id or name>)` starts a
//!   sandbox from it ([`snapshot_named`]). Unlike E2B's, a Warren snapshot
//!   belongs to its sandbox: killing the sandbox deletes it.

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use warren_core::{PauseMode, SandboxId, SandboxState, SnapshotId, WarrenError};
use warren_store::{SandboxFilter, SnapshotKind, SnapshotRecord};

use super::control::{created, extend, unsupported};
use super::error::E2bResult;
use super::paging::page;
use super::query::{self, E2bQuery, Limit, QueryParams};
use super::wire::{
    ConnectSandbox, CreatedSandbox, ForkRequest, ForkResult, PauseRequest, SnapshotInfo,
    SnapshotRequest,
};
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::SandboxPath;
use crate::state::AppState;

type Id = Result<SandboxPath, AppError>;

/// `POST /sandboxes/{id}/pause`: 204 once the sandbox is paused.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<PauseRequest>>,
) -> E2bResult<StatusCode> {
    let SandboxPath(id) = id?;
    let mode = match body.is_some_and(|Json(b)| b.memory == Some(false)) {
        true => PauseMode::Filesystem,
        false => PauseMode::Full,
    };
    state
        .sandboxes
        .pause(&id, mode, &AuditActor::from_caller(&caller))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connect and resume: resumes `id` when it is paused (or pausing), then
/// extends its lifetime to `timeout` from now if that is later; whether it
/// was paused, and its connection details. A running sandbox is taken as
/// is, unless `only_paused` (then 409). `memory: false` (a cold boot from
/// disk) is what the resume of a filesystem-only pause does anyway, and is
/// refused for a sandbox paused whole.
pub(super) async fn connect_or_resume(
    state: &AppState,
    caller: &Caller,
    id: &SandboxId,
    req: &ConnectSandbox,
    only_paused: bool,
) -> E2bResult<(bool, CreatedSandbox)> {
    let rec = state.sandboxes.get(id).await?;
    let paused = matches!(rec.state, SandboxState::Paused | SandboxState::Pausing);
    let rec = if paused {
        if req.memory == Some(false) && rec.pause_mode != Some(PauseMode::Filesystem) {
            return Err(unsupported(
                "resuming a sandbox paused with its memory with memory=false (a reboot); pause it with memory=false instead",
            ));
        }
        if let Some(auto_pause) = req.auto_pause
            && auto_pause != rec.persistence.on_idle.pause_mode().is_some()
        {
            return Err(unsupported(
                "changing autoPause on resume; it is set at create",
            ));
        }
        let actor = AuditActor::from_caller(caller);
        // A sandbox paused at the end of its lifetime (`autoPause`) is past
        // its expiry: moved first, so the reaper does not take the resume
        // for an expired sandbox and kill it.
        let lifetime = req.timeout.unwrap_or(rec.persistence.timeout_s);
        state.sandboxes.set_timeout(id, lifetime, &actor).await?;
        state.sandboxes.resume(id, &actor).await?
    } else if rec.state != SandboxState::Running || only_paused {
        return Err(WarrenError::precondition(format!(
            "sandbox {id} is {}, not paused",
            rec.state
        ))
        .into());
    } else {
        rec
    };
    let rec = match req.timeout {
        Some(timeout) => extend(state, caller, &rec, timeout).await?,
        None => rec,
    };
    Ok((paused, created(state, &rec, caller).await?))
}

/// `POST /sandboxes/{id}/resume` (E2B's older call): 201 with the resumed
/// sandbox; 409 when it is not paused.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<ConnectSandbox>>,
) -> E2bResult<(StatusCode, Json<CreatedSandbox>)> {
    let SandboxPath(id) = id?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (_, sandbox) = connect_or_resume(&state, &caller, &id, &req, true).await?;
    Ok((StatusCode::CREATED, Json(sandbox)))
}

/// `POST /sandboxes/{id}/fork`: 201 with one entry per branch; the parent
/// keeps running.
pub async fn fork(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<ForkRequest>>,
) -> E2bResult<(StatusCode, Json<Vec<ForkResult>>)> {
    let SandboxPath(id) = id?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let actor = AuditActor::from_caller(&caller);
    let dispatcher = (&caller).into();
    // The fork goes on to its end should the client let go.
    let count = req.count.unwrap_or(1);
    let (_, branches) = state
        .sandboxes
        .fork(&id, count, &dispatcher, &actor)
        .await?;
    let mut out = Vec::with_capacity(branches.len());
    for branch in branches {
        let branch = match req.timeout {
            Some(timeout) => {
                state
                    .sandboxes
                    .set_timeout(&branch.id, timeout, &actor)
                    .await?
            }
            None => branch,
        };
        out.push(ForkResult {
            sandbox: created(&state, &branch, &caller).await?,
        });
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// `POST /sandboxes/{id}/snapshots`: a named snapshot of the running
/// sandbox, which keeps running; 201. Without a name one is made up.
pub async fn create_snapshot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    id: Id,
    body: Option<Json<SnapshotRequest>>,
) -> E2bResult<(StatusCode, Json<SnapshotInfo>)> {
    let SandboxPath(id) = id?;
    let req = body.map(|Json(b)| b).unwrap_or_default();
    if req.memory == Some(false) {
        return Err(unsupported(
            "a filesystem-only snapshot (memory=false); a snapshot always keeps memory",
        ));
    }
    let name = req
        .name
        .unwrap_or_else(|| format!("snapshot-{}", SnapshotId::generate()));
    let actor = AuditActor::from_caller(&caller);
    let view = state
        .sandboxes
        .take_snapshot(&id, &name, &caller.key_id, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(info(&view.snapshot))))
}

fn info(s: &SnapshotRecord) -> SnapshotInfo {
    SnapshotInfo {
        snapshot_id: s.id.to_string(),
        names: s.name.iter().cloned().collect(),
    }
}

/// The team's live named snapshots (of `sandbox` only, if given), oldest
/// first. Snapshots live with their sandbox, so the team's sandboxes are
/// where they are found.
async fn team_snapshots(
    state: &AppState,
    caller: &Caller,
    sandbox: Option<&SandboxId>,
) -> Result<Vec<SnapshotRecord>, WarrenError> {
    let ids: Vec<SandboxId> = match sandbox {
        Some(id) => vec![id.clone()],
        None => state
            .sandboxes
            .list(&caller.team, SandboxFilter::default())
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        let (views, _) = state.sandboxes.list_snapshots(&id).await?;
        out.extend(
            views
                .into_iter()
                .map(|v| v.snapshot)
                .filter(|s| s.kind == SnapshotKind::Named && s.deleted_at.is_none()),
        );
    }
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

/// Whether `s` is what `which` names: its id or its name.
fn is_named(s: &SnapshotRecord, which: &str) -> bool {
    s.id.as_str() == which || s.name.as_deref() == Some(which)
}

/// The snapshot an E2B `templateID` names, when it names no template: one
/// of the team's snapshots by id, or the newest by name.
pub(super) async fn snapshot_named(
    state: &AppState,
    caller: &Caller,
    template_id: &str,
) -> E2bResult<Option<SnapshotId>> {
    if state.sandboxes.has_template(template_id) {
        return Ok(None);
    }
    let all = team_snapshots(state, caller, None).await?;
    Ok(all
        .iter()
        .rev()
        .find(|s| is_named(s, template_id))
        .map(|s| s.id.clone()))
}

/// What `GET /snapshots` asks for.
#[derive(Debug, Default, PartialEq)]
pub struct SnapshotQuery {
    sandbox: Option<String>,
    name: Option<String>,
    limit: Limit,
    next_token: Option<String>,
}

impl QueryParams for SnapshotQuery {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "sandboxID" => self.sandbox = Some(value.into_owned()),
            "name" => self.name = Some(value.into_owned()),
            "nextToken" => self.next_token = Some(value.into_owned()),
            "limit" => self.limit = value.parse()?,
            other => return Err(query::unknown(other)),
        }
        Ok(())
    }
}

/// `GET /snapshots`: the team's snapshots, oldest first, in pages of
/// `limit` (the next page's token, the last id of the page, in
/// `x-next-token`); `sandboxID` and `name` (a name or an id) filter. An
/// unknown or another team's sandbox has no snapshots.
pub async fn list_snapshots(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    E2bQuery(q): E2bQuery<SnapshotQuery>,
) -> E2bResult<impl IntoResponse> {
    let sandbox = match &q.sandbox {
        None => None,
        Some(raw) => match raw.parse::<SandboxId>() {
            Ok(id)
                if state
                    .sandboxes
                    .lookup(&id)
                    .await?
                    .is_some_and(|r| r.team == caller.team && !r.state.is_terminal()) =>
            {
                Some(id)
            }
            _ => return Ok((HeaderMap::new(), Json(Vec::new()))),
        },
    };
    let mut all = team_snapshots(&state, &caller, sandbox.as_ref()).await?;
    if let Some(name) = &q.name {
        all.retain(|s| is_named(s, name));
    }
    let (page, headers) = page(&all, |s| s.id.as_str(), q.next_token.as_deref(), q.limit.0)?;
    Ok((headers, Json(page.iter().map(info).collect::<Vec<_>>())))
}

/// `DELETE /templates/{id}`: deletes one of the team's snapshots (by id or
/// name); 204, 404 when the team has none of that name. Templates are not
/// deleted through E2B's API.
pub async fn delete_snapshot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(which): Path<String>,
) -> E2bResult<StatusCode> {
    let all = team_snapshots(&state, &caller, None).await?;
    let Some(snapshot) = all.iter().rev().find(|s| is_named(s, &which)) else {
        if state.sandboxes.has_template(&which) {
            return Err(unsupported(
                "deleting a template through the E2B API (use warren template)",
            ));
        }
        return Err(WarrenError::not_found(format!(
            "no snapshot '{}'",
            which.chars().take(64).collect::<String>()
        ))
        .into());
    };
    let actor = AuditActor::from_caller(&caller);
    state
        .sandboxes
        .delete_snapshot(&snapshot.sandbox_id, snapshot.id.as_str(), &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2b::paging::DEFAULT_PAGE;

    #[test]
    fn snapshot_query_reads_what_the_sdk_sends() {
        let q: SnapshotQuery =
            query::parse(Some("sandboxID=abc&name=base-snap&limit=5&nextToken=t")).unwrap();
        assert_eq!(q.sandbox.as_deref(), Some("abc"));
        assert_eq!(q.name.as_deref(), Some("base-snap"));
        assert_eq!(q.limit, Limit(5));
        assert_eq!(q.next_token.as_deref(), Some("t"));
        assert_eq!(
            query::parse::<SnapshotQuery>(None).unwrap().limit,
            Limit(DEFAULT_PAGE)
        );
        assert!(query::parse::<SnapshotQuery>(Some("limit=101")).is_err());
        assert!(query::parse::<SnapshotQuery>(Some("colour=red")).is_err());
    }
}
