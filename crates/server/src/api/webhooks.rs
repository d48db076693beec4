//! `/v1/webhooks`: register, list and delete the team's lifecycle
//! webhooks and read their delivery logs (`docs/webhooks.md`).

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use warren_api_types::{
    CreateWebhookRequest, CreatedWebhook, Delivery, DeliveryAttempt, DeliveryList, Webhook,
    WebhookList,
};
use warren_core::{WarrenError, rfc3339};
use warren_store::{DeliveryRecord, WebhookFlavor, WebhookRecord};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::service::webhooks::Registration;
use crate::state::AppState;

/// Deliveries listed when the caller names no `limit`, and the most.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

pub(crate) fn webhook_to_api(w: WebhookRecord) -> Webhook {
    Webhook {
        id: w.id,
        name: w.name,
        url: w.url,
        events: w.events,
        enabled: w.enabled,
        created_at: rfc3339(w.created_at),
    }
}

fn delivery_to_api(d: DeliveryRecord) -> Delivery {
    Delivery {
        event_id: d.event.id,
        kind: d.event.kind,
        sandbox_id: d.event.sandbox,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        next_attempt_at: d.next_attempt_at.map(rfc3339),
        delivered_at: d.delivered_at.map(rfc3339),
        log: d
            .log
            .into_iter()
            .map(|a| DeliveryAttempt {
                attempt: a.attempt,
                at: rfc3339(a.at),
                status: a.status,
                error: a.error,
                response: a.response,
            })
            .collect(),
    }
}

/// Registers a webhook; 201 with its secret, shown this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = warren_api_types::ApiError),
        (status = 429, body = warren_api_types::ApiError)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let reg = Registration {
        url: req.url,
        events: req.events,
        secret: req.secret,
        name: req.name,
        flavor: WebhookFlavor::Warren,
        enabled: true,
    };
    let (rec, secret) = state
        .webhooks
        .create(&caller.team, &caller.key_id, reg)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: webhook_to_api(rec),
            secret,
        }),
    ))
}

/// The team's webhooks, oldest first (their secrets are never shown).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<WebhookList>> {
    let webhooks = state.webhooks.list(&caller.team).await?;
    Ok(Json(WebhookList {
        webhooks: webhooks.into_iter().map(webhook_to_api).collect(),
    }))
}

/// One of the team's webhooks.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 404, body = warren_api_types::ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    let rec = state.webhooks.get(&caller.team, &id).await?;
    Ok(Json(webhook_to_api(rec)))
}

/// Deletes a webhook; its pending deliveries are not sent.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = warren_api_types::ApiError)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.webhooks.delete(&caller.team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's delivery log, newest event first, each with its attempts.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = DeliveryList), (status = 404, body = warren_api_types::ApiError)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<DeliveryList>> {
    let mut limit = DEFAULT_PAGE;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or_else(|| {
                        WarrenError::invalid(format!("limit must be 1-{MAX_PAGE}, got '{v}'"))
                    })?
            }
            other => {
                return Err(WarrenError::invalid(format!(
                    "unknown query parameter '{}'; use limit",
                    other.chars().take(32).collect::<String>()
                ))
                .into());
            }
        }
    }
    let rows = state.webhooks.deliveries(&caller.team, &id, limit).await?;
    Ok(Json(DeliveryList {
        deliveries: rows.into_iter().map(delivery_to_api).collect(),
    }))
}
