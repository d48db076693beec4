//! E2B's lifecycle webhooks and events, served by Warren's webhook service
//! (`service::webhooks`).
//!
//! - `/events/webhooks` (POST, GET) and `/events/webhooks/{id}` (GET,
//!   PATCH, DELETE): E2B's registration shape (`name`, `url`, `enabled`,
//!   `events`, `signatureSecret`; answers with `id`, `teamID`, `createdAt`).
//!   Event names are E2B's (`sandbox.lifecycle.created` …), mapped to
//!   Warren's both ways; `sandbox.lifecycle.updated` is accepted and never
//!   sent (Warren has no such event), and no `events` means every event E2B
//!   names. A registration made here is delivered in E2B's payload with
//!   E2B's `e2b-signature` headers; its destination is checked like any
//!   other.
//! - `/events/sandboxes/{id}`: the sandbox's lifecycle events in E2B's
//!   shape, newest first unless `orderAsc=true`, paged by `offset` and
//!   `limit` (default 10, at most 100), filtered by repeated `types`.

use std::borrow::Cow;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warren_core::{WarrenError, rfc3339};
use warren_store::{EventPage, WebhookFlavor, WebhookRecord};

use super::error::E2bResult;
use super::query::{E2bQuery, QueryParams, unknown};
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{ApiJson, SandboxPath};
use crate::service::webhooks::{Change, Registration, names, payload};
use crate::state::AppState;

type Body<T> = Result<ApiJson<T>, AppError>;

/// `POST /events/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhook {
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    events: Vec<String>,
    signature_secret: String,
}

/// `PATCH /events/webhooks/{id}`: the fields given replace the stored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    signature_secret: Option<String>,
}

/// A registration as E2B shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct E2bWebhook {
    id: String,
    #[serde(rename = "teamID")]
    team_id: String,
    name: String,
    created_at: String,
    enabled: bool,
    url: String,
    events: Vec<String>,
}

fn to_e2b(w: WebhookRecord) -> E2bWebhook {
    E2bWebhook {
        id: w.id,
        team_id: w.team.to_string(),
        name: w.name,
        created_at: rfc3339(w.created_at),
        enabled: w.enabled,
        url: w.url,
        events: w
            .events
            .iter()
            .filter_map(|e| names::to_e2b(e))
            .map(str::to_owned)
            .collect(),
    }
}

/// `POST /events/webhooks`: 201 with the registration.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewWebhook>,
) -> E2bResult<(StatusCode, Json<E2bWebhook>)> {
    let ApiJson(req) = body?;
    let reg = Registration {
        url: req.url,
        events: names::from_e2b(&req.events)?,
        secret: Some(req.signature_secret),
        name: req.name,
        flavor: WebhookFlavor::E2b,
        enabled: req.enabled.unwrap_or(true),
    };
    let (rec, _) = state
        .webhooks
        .create(&caller.team, &caller.key_id, reg)
        .await?;
    Ok((StatusCode::CREATED, Json(to_e2b(rec))))
}

/// `GET /events/webhooks`: the team's registrations (Warren's own too).
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> E2bResult<Json<Vec<E2bWebhook>>> {
    let all = state.webhooks.list(&caller.team).await?;
    Ok(Json(all.into_iter().map(to_e2b).collect()))
}

/// `GET /events/webhooks/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> E2bResult<Json<E2bWebhook>> {
    Ok(Json(to_e2b(state.webhooks.get(&caller.team, &id).await?)))
}

/// `PATCH /events/webhooks/{id}`: the changed registration.
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body<WebhookPatch>,
) -> E2bResult<Json<E2bWebhook>> {
    let ApiJson(req) = body?;
    let current = state.webhooks.get(&caller.team, &id).await?;
    if current.flavor != WebhookFlavor::E2b && req.events.is_some() {
        return Err(WarrenError::invalid(
            "this webhook was registered with /v1/webhooks: change its events there",
        )
        .into());
    }
    let change = Change {
        url: req.url,
        events: req.events.as_deref().map(names::from_e2b).transpose()?,
        name: req.name,
        enabled: req.enabled,
        secret: req.signature_secret,
    };
    let rec = state.webhooks.update(&caller.team, &id, change).await?;
    Ok(Json(to_e2b(rec)))
}

/// `DELETE /events/webhooks/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> E2bResult<StatusCode> {
    state.webhooks.delete(&caller.team, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `/events/sandboxes/{id}`.
#[derive(Debug)]
pub struct EventsQuery(EventPage);

impl Default for EventsQuery {
    fn default() -> Self {
        Self(EventPage {
            offset: 0,
            limit: 10,
            ascending: false,
            types: Vec::new(),
        })
    }
}

impl QueryParams for EventsQuery {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "offset" => {
                self.0.offset = value.parse().map_err(|_| {
                    WarrenError::invalid(format!("offset must be a count, got '{value}'"))
                })?
            }
            "limit" => {
                self.0.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=100).contains(l))
                    .ok_or_else(|| {
                        WarrenError::invalid(format!("limit must be 1-100, got '{value}'"))
                    })?
            }
            "orderAsc" => {
                self.0.ascending = value.parse().map_err(|_| {
                    WarrenError::invalid(format!("orderAsc must be true or false, got '{value}'"))
                })?
            }
            "types" => {
                let name = names::KNOWN
                    .iter()
                    .find(|n| names::to_e2b(n) == Some(value.as_ref()))
                    .ok_or_else(|| {
                        WarrenError::invalid(format!(
                            "unknown event type '{}'",
                            value.chars().take(64).collect::<String>()
                        ))
                    })?;
                self.0.types.push((*name).to_owned());
            }
            other => return Err(unknown(other)),
        }
        Ok(())
    }
}

/// `GET /events/sandboxes/{id}`: the sandbox's lifecycle events.
pub async fn sandbox_events(
    State(state): State<AppState>,
    id: Result<SandboxPath, AppError>,
    E2bQuery(EventsQuery(page)): E2bQuery<EventsQuery>,
) -> E2bResult<Json<Vec<Value>>> {
    let SandboxPath(id) = id?;
    let events = state
        .webhooks
        .sandbox_events(id.as_str(), &page)
        .await?
        .iter()
        .filter(|e| names::to_e2b(&e.kind).is_some())
        .map(|e| payload::e2b_body(e, "v1"))
        .collect();
    Ok(Json(events))
}
