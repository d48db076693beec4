//! A sandbox's network policy (replace it live) and its network events.

use axum::Json;
use axum::extract::{Extension, RawQuery, State};
use warren_api_types::{NetworkEvent, NetworkEventList, NetworkPolicySchema, Sandbox};
use warren_core::WarrenError;
use warren_core::network::NetworkPolicy;

use super::sandboxes::to_api;
use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, SandboxPath};
use crate::state::AppState;
use warren_core::rfc3339;

/// Events one page holds by default, and at most.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// Replaces the sandbox's network policy; a running sandbox gets it at
/// once (new connections and queries; open ones stay).
#[utoipa::path(put, path = "/v1/sandboxes/{id}/network", tag = "network",
    params(("id" = String, Path)), request_body = NetworkPolicySchema,
    responses((status = 200, body = Sandbox), (status = 400, body = warren_api_types::ApiError),
        (status = 404, body = warren_api_types::ApiError)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    SandboxPath(id): SandboxPath,
    ApiJson(policy): ApiJson<NetworkPolicy>,
) -> ApiResult<Json<Sandbox>> {
    let actor = AuditActor::from_caller(&caller);
    // The injected secrets are checked like at create; the environment of
    // a running sandbox does not change (placeholders are set at create).
    state
        .secrets
        .check_injections(&caller, &caller.team, &policy)
        .await?;
    let rec = state.sandboxes.set_network(&id, policy, &actor).await?;
    Ok(Json(to_api(rec)))
}

/// The sandbox's network decisions, newest first: DNS queries and
/// connections with their verdicts and byte counts.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/network/events", tag = "network",
    params(("id" = String, Path),
        ("before" = Option<i64>, Query, description = "only events older than this seq"),
        ("limit" = Option<u32>, Query, description = "1-1000, default 100")),
    responses((status = 200, body = NetworkEventList), (status = 404, body = warren_api_types::ApiError)))]
pub async fn events(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<NetworkEventList>> {
    let (before, limit) = parse_page(query.as_deref())?;
    let rows = state.sandboxes.network_events(&id, before, limit).await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let events = rows
        .into_iter()
        .map(|r| NetworkEvent {
            seq: r.seq,
            at: rfc3339(r.event.at),
            kind: r.event.kind,
            dest: r.event.dest.map(|d| d.to_string()),
            port: r.event.port,
            name: r.event.name,
            verdict: r.event.verdict,
            reason: r.event.reason,
            bytes_out: r.event.bytes_out,
            bytes_in: r.event.bytes_in,
        })
        .collect();
    Ok(Json(NetworkEventList {
        events,
        next_before,
    }))
}

fn parse_page(query: Option<&str>) -> Result<(Option<i64>, u32), WarrenError> {
    let mut before = None;
    let mut limit = DEFAULT_PAGE;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "before" => {
                before = Some(v.parse::<i64>().map_err(|_| {
                    WarrenError::invalid(format!("before must be an event seq, got '{v}'"))
                })?);
            }
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        WarrenError::invalid(format!(
                            "limit must be between 1 and {MAX_PAGE}, got '{v}'"
                        ))
                    })?;
            }
            other => {
                return Err(WarrenError::invalid(format!(
                    "unknown query parameter '{other}' (expected before or limit)"
                )));
            }
        }
    }
    Ok((before, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse() {
        assert_eq!(parse_page(None).unwrap(), (None, DEFAULT_PAGE));
        assert_eq!(
            parse_page(Some("before=42&limit=5")).unwrap(),
            (Some(42), 5)
        );
        for bad in ["limit=0", "limit=1001", "before=x", "page=2"] {
            assert!(parse_page(Some(bad)).is_err(), "{bad}");
        }
    }
}
