//! `/v1/sandboxes/{id}/timers`: events a sandbox's inbox gets at a set
//! time (`docs/events.md`, "Sources").

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use time::format_description::well_known::Rfc3339;
use warren_api_types::{CreateTimerRequest, Timer, TimerList};
use warren_core::{WarrenError, rfc3339};
use warren_store::TimerRecord;

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath, SandboxSnapshotPath};
use crate::service::events::SentEvent;
use crate::service::timers::{When, parse_after};
use crate::state::AppState;

/// The source of a timer's event when the caller names none.
const DEFAULT_SOURCE: &str = "timer";

fn timer_to_api(t: TimerRecord) -> Timer {
    Timer {
        id: t.id,
        fires_at: rfc3339(t.fires_at),
        kind: t.kind,
        source: t.source,
        data: serde_json::from_str(&t.data).unwrap_or(serde_json::Value::Null),
        created_at: rfc3339(t.created_at),
    }
}

fn when(req: &CreateTimerRequest) -> Result<When, WarrenError> {
    match (&req.at, &req.after) {
        (Some(at), None) => time::OffsetDateTime::parse(at, &Rfc3339)
            .map(When::At)
            .map_err(|_| {
                WarrenError::invalid(format!(
                    "at must be an RFC 3339 time such as 2030-01-01T09:00:00Z, got '{}'",
                    at.chars().take(64).collect::<String>()
                ))
            }),
        (None, Some(serde_json::Value::Number(n))) => n
            .as_u64()
            .map(When::After)
            .ok_or_else(|| WarrenError::invalid("after must be a whole number of seconds")),
        (None, Some(serde_json::Value::String(s))) => parse_after(s).map(When::After),
        (None, Some(_)) => Err(WarrenError::invalid(
            "after must be seconds or a duration string such as \"1h\"",
        )),
        _ => Err(WarrenError::invalid("name exactly one of at and after")),
    }
}

/// Sets a timer: its event goes to the sandbox's inbox at `at` or `after`
/// seconds from now (at most 365 days ahead, at most 100 pending).
#[utoipa::path(post, path = "/v1/sandboxes/{id}/timers", tag = "events",
    params(("id" = String, Path)), request_body = CreateTimerRequest,
    responses((status = 201, body = Timer), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError), (status = 429, body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<CreateTimerRequest>,
) -> ApiResult<(StatusCode, Json<Timer>)> {
    let when = when(&req)?;
    let event = SentEvent {
        kind: req.event.kind,
        source: req
            .event
            .source
            .unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
        data: req.event.data,
        dedupe_key: None,
    };
    let actor = AuditActor::from_caller(&caller);
    let timer = state
        .sandboxes
        .create_timer(&id, when, event, &caller.key_id, &actor)
        .await?;
    Ok((StatusCode::CREATED, Json(timer_to_api(timer))))
}

/// The sandbox's pending timers, soonest first.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/timers", tag = "events",
    params(("id" = String, Path)),
    responses((status = 200, body = TimerList), (status = 404, body = warren_api_types::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
) -> ApiResult<Json<TimerList>> {
    let timers = state.sandboxes.list_timers(&id).await?;
    Ok(Json(TimerList {
        timers: timers.into_iter().map(timer_to_api).collect(),
    }))
}

/// Deletes a pending timer.
#[utoipa::path(delete, path = "/v1/sandboxes/{id}/timers/{timer}", tag = "events",
    params(("id" = String, Path), ("timer" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxSnapshotPath(id, timer): SandboxSnapshotPath,
) -> ApiResult<StatusCode> {
    let actor = AuditActor::from_caller(&caller);
    state.sandboxes.delete_timer(&id, &timer, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
