//! `/v1/sandboxes/{id}/events`: send an event to a sandbox's inbox, list
//! the inbox (`docs/events.md`).

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use warren_api_types::{EventAccepted, EventList, SendEventRequest};
use warren_core::WarrenError;

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath};
use crate::service::events::{MAX_EVENT_PAGE, SentEvent, event_view};
use crate::state::AppState;

/// Events listed when the caller names no `limit`.
const DEFAULT_PAGE: u32 = 100;

/// Puts an event in the sandbox's inbox; 202 once it is durable. A retry
/// with the same `dedupe_key` gets the first event's number back.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/events", tag = "events",
    params(("id" = String, Path)),
    request_body = SendEventRequest,
    responses((status = 202, body = EventAccepted), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn send(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(req): ApiJson<SendEventRequest>,
) -> ApiResult<(StatusCode, Json<EventAccepted>)> {
    let sent = SentEvent {
        kind: req.kind,
        source: req.source,
        data: req.data,
        dedupe_key: req.dedupe_key,
    };
    let actor = AuditActor::from_caller(&caller);
    let appended = state.sandboxes.send_event(&id, sent, &actor).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EventAccepted {
            seq: appended.event.seq,
            duplicate: !appended.created,
        }),
    ))
}

/// The inbox in order: events after `after` (default 0), at most `limit`
/// (default 100, at most 1000), each with its delivery state.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/events", tag = "events",
    params(("id" = String, Path), ("after" = Option<u64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = EventList), (status = 404, body = warren_api_types::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<EventList>> {
    let (after, limit) = parse_page(query.as_deref())?;
    let rows = state.sandboxes.list_events(&id, after, limit).await?;
    let next_after = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let events = rows.into_iter().map(event_view).collect();
    Ok(Json(EventList { events, next_after }))
}

fn parse_page(query: Option<&str>) -> Result<(u64, u32), WarrenError> {
    let (mut after, mut limit) = (0, DEFAULT_PAGE);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "after" => {
                after = v.parse().map_err(|_| {
                    WarrenError::invalid(format!("after must be a sequence number, got '{v}'"))
                })?
            }
            "limit" => limit = page_limit(&v)?,
            other => {
                return Err(WarrenError::invalid(format!(
                    "unknown query parameter '{}'; use after and limit",
                    other.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    Ok((after, limit))
}

/// A `limit` query value: 1 to [`MAX_EVENT_PAGE`].
pub(super) fn page_limit(v: &str) -> Result<u32, WarrenError> {
    v.parse()
        .ok()
        .filter(|l| (1..=MAX_EVENT_PAGE).contains(l))
        .ok_or_else(|| WarrenError::invalid(format!("limit must be 1-{MAX_EVENT_PAGE}, got '{v}'")))
}
