//! Taking events from inside a sandbox (`/v1/self/events`, sandbox tokens
//! only) and the wake policy (`/v1/sandboxes/{id}/wake`); see
//! `docs/events.md`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use warren_api_types::{AckRequest, AckResult, SelfEvents, WakeRequest};
use warren_core::WarrenError;
use warren_core::inbox::WakePolicy;

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath, SelfSandbox};
use crate::service::events::event_view;
use crate::service::inbox::MAX_WAIT;
use crate::state::AppState;

/// `after`, `wait` (seconds) and `limit` of a long-poll.
struct Poll {
    after: u64,
    wait: Duration,
    limit: u32,
}

fn parse_poll(query: Option<&str>) -> Result<Poll, WarrenError> {
    let mut poll = Poll {
        after: 0,
        wait: Duration::ZERO,
        limit: 100,
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = |what: &str| {
            v.parse::<u64>().map_err(|_| {
                WarrenError::invalid(format!("{what} must be a whole number, got '{v}'"))
            })
        };
        match k.as_ref() {
            "after" => poll.after = number("after")?,
            "wait" => {
                poll.wait = Duration::from_secs(number("wait")?);
                if poll.wait > MAX_WAIT {
                    return Err(WarrenError::invalid(format!(
                        "wait is at most {} seconds",
                        MAX_WAIT.as_secs()
                    )));
                }
            }
            "limit" => poll.limit = super::events::page_limit(&v)?,
            other => {
                return Err(WarrenError::invalid(format!(
                    "unknown query parameter '{}'; use after, wait and limit",
                    other.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    Ok(poll)
}

/// The calling sandbox's events after `after` that it has not
/// acknowledged, in order; with `wait`, waits up to that many seconds (at
/// most 60) for one to arrive. Unacknowledged events are handed out again.
#[utoipa::path(get, path = "/v1/self/events", tag = "events",
    params(("after" = Option<u64>, Query), ("wait" = Option<u64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = SelfEvents), (status = 403, body = warren_api_types::ApiError)))]
pub async fn take(
    State(state): State<AppState>,
    SelfSandbox(id): SelfSandbox,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<SelfEvents>> {
    let poll = parse_poll(query.as_deref())?;
    let (events, inbox) = state
        .sandboxes
        .self_events(&id, poll.after, poll.wait, poll.limit)
        .await?;
    Ok(Json(SelfEvents {
        events: events.into_iter().map(event_view).collect(),
        acked_seq: inbox.acked_seq,
        last_seq: inbox.last_seq,
    }))
}

/// Acknowledges every event of the calling sandbox up to `seq`; they are
/// not handed out again. Acknowledging less than before changes nothing.
#[utoipa::path(post, path = "/v1/self/events/ack", tag = "events",
    request_body = AckRequest,
    responses((status = 200, body = AckResult), (status = 400, body = warren_api_types::ApiError)))]
pub async fn ack(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SelfSandbox(id): SelfSandbox,
    ApiJson(req): ApiJson<AckRequest>,
) -> ApiResult<Json<AckResult>> {
    let actor = AuditActor::from_caller(&caller);
    let inbox = state.sandboxes.ack_events(&id, req.seq, &actor).await?;
    Ok(Json(AckResult {
        acked_seq: inbox.acked_seq,
    }))
}

/// Which event types resume the sandbox when it is paused: type names or
/// prefixes ending in `*`; `[]` never.
#[utoipa::path(put, path = "/v1/sandboxes/{id}/wake", tag = "events",
    params(("id" = String, Path)),
    request_body = WakeRequest,
    responses((status = 200, body = WakeRequest), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn set_wake(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<WakeRequest>,
) -> ApiResult<Json<WakeRequest>> {
    let actor = AuditActor::from_caller(&caller);
    let inbox = state
        .sandboxes
        .set_wake(&id, WakePolicy { on: req.on }, &actor)
        .await?;
    Ok(Json(WakeRequest {
        on: inbox.settings.wake.on,
    }))
}
