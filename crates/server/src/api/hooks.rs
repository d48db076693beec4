//! `/v1/hooks`: the team's inbound webhook hooks, and the delivery
//! endpoint senders post to (`docs/events.md`, "Sources").
//!
//! `POST /v1/hooks/{id}/deliver` is the one route of this API with no API
//! key: the hook's signature is its credential, so it is served outside
//! the authenticated routes, on the main listener only.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use warren_api_types::{
    CreateHookRequest, DeliveryAccepted, Hook, HookCreated, HookList, HookSubscription,
};
use warren_store::HookRecord;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::hooks::{DeliveryHeaders, MAX_DELIVERY_BYTES, NewHook, NewSubscription};
use crate::state::AppState;
use warren_core::rfc3339;

fn new_subscription(s: HookSubscription) -> NewSubscription {
    NewSubscription {
        sandbox: s.sandbox,
        repository: s.repository,
        pull_request: s.pull_request,
        branch: s.branch,
        events: s.events,
    }
}

fn hook_to_api(h: HookRecord) -> Hook {
    Hook {
        delivery_path: format!("/v1/hooks/{}/deliver", h.id),
        id: h.id,
        kind: h.kind.as_str().to_owned(),
        subscriptions: h
            .subscriptions
            .into_iter()
            .map(|s| HookSubscription {
                id: Some(s.id),
                sandbox: s.sandbox.to_string(),
                repository: s.repository,
                pull_request: s.pull_request,
                branch: s.branch,
                events: s.events,
            })
            .collect(),
        accepted: h.accepted,
        rejected: h.rejected,
        last_delivery_at: h.last_delivery_at.map(rfc3339),
        created_at: rfc3339(h.created_at),
        created_by: h.created_by.to_string(),
    }
}

/// Creates a hook; its secret is in this answer and never again.
#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", request_body = CreateHookRequest,
    responses((status = 201, body = HookCreated), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateHookRequest>,
) -> ApiResult<(StatusCode, Json<HookCreated>)> {
    let new = NewHook {
        kind: req.kind,
        secret: req.secret,
        subscriptions: req
            .subscriptions
            .into_iter()
            .map(new_subscription)
            .collect(),
    };
    let (hook, secret) = state.hooks.create(&caller, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(HookCreated {
            hook: hook_to_api(hook),
            secret,
        }),
    ))
}

/// The team's hooks, without their secrets.
#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", responses((status = 200, body = HookList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<HookList>> {
    let hooks = state.hooks.list(&caller.team).await?;
    Ok(Json(HookList {
        hooks: hooks.into_iter().map(hook_to_api).collect(),
    }))
}

/// One hook of the team, with its delivery counts.
#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 200, body = Hook), (status = 404, body = warren_api_types::ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Hook>> {
    Ok(Json(hook_to_api(state.hooks.get(&caller.team, &id).await?)))
}

/// Deletes a hook of the team; its deliveries are refused from now on.
#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.hooks.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a subscription to a hook: one more sandbox (or pull request,
/// branch, event types) its deliveries go to.
#[utoipa::path(post, path = "/v1/hooks/{id}/subscriptions", tag = "hooks",
    params(("id" = String, Path)), request_body = HookSubscription,
    responses((status = 201, body = Hook), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError), (status = 429, body = warren_api_types::ApiError)))]
pub async fn subscribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HookSubscription>,
) -> ApiResult<(StatusCode, Json<Hook>)> {
    let hook = state
        .hooks
        .subscribe(&caller, &id, new_subscription(req))
        .await?;
    Ok((StatusCode::CREATED, Json(hook_to_api(hook))))
}

/// Removes a subscription from a hook.
#[utoipa::path(delete, path = "/v1/hooks/{id}/subscriptions/{sub}", tag = "hooks",
    params(("id" = String, Path), ("sub" = u32, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, sub)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let sub: u32 = sub.parse().map_err(|_| {
        warren_core::WarrenError::not_found(format!(
            "hook {id} has no subscription '{}'",
            sub.chars().take(32).collect::<String>()
        ))
    })?;
    state.hooks.unsubscribe(&caller, &id, sub).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A delivery from GitHub (`X-Hub-Signature-256`, `X-GitHub-Event`,
/// `X-GitHub-Delivery`) or a Standard Webhooks sender (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`). No API key: the signature
/// is checked against the hook's secret. 401 for any refused signature
/// (missing, wrong, stale), 404 for an unknown hook, 413 past 1 MiB (or a
/// payload over the inbox's 256 KiB).
#[utoipa::path(post, path = "/v1/hooks/{id}/deliver", tag = "hooks", params(("id" = String, Path)),
    security(()),
    responses((status = 202, body = DeliveryAccepted), (status = 200, body = DeliveryAccepted),
        (status = 401, body = warren_api_types::ApiError), (status = 404, body = warren_api_types::ApiError),
        (status = 413, body = warren_api_types::ApiError)))]
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<DeliveryAccepted>)> {
    let hook = state.hooks.find(&id).await?;
    let body = match axum::body::to_bytes(body, MAX_DELIVERY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return Err(state.hooks.too_large(&hook).await.into()),
    };
    let received = DeliveryHeaders {
        hub_signature_256: header(&headers, "x-hub-signature-256"),
        github_event: header(&headers, "x-github-event"),
        github_delivery: header(&headers, "x-github-delivery"),
        webhook_id: header(&headers, "webhook-id"),
        webhook_timestamp: header(&headers, "webhook-timestamp"),
        webhook_signature: header(&headers, "webhook-signature"),
    };
    let done = state.hooks.deliver(&hook, &received, &body).await?;
    let status = if done.duplicate || done.sandboxes == 0 {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(DeliveryAccepted {
            delivered: done.sandboxes,
            duplicate: done.duplicate,
        }),
    ))
}
