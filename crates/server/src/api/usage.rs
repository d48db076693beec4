//! `GET /v1/usage`: the meter's sums, grouped and costed, as JSON or CSV.
//! A team sees its own sandboxes; operators (`teams:manage`) see every
//! team's, or one with `team=`.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use warren_api_types as api;
use warren_core::metering::{GroupBy, Prices, Usage};
use warren_core::{ErrorKind, Scope, TeamId, WarrenError, rfc3339};
use warren_store::UsageQuery;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Longest interval one report covers.
const MAX_SPAN: Duration = Duration::days(400);
/// The interval when the caller names no `since`.
const DEFAULT_SPAN: Duration = Duration::days(30);

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// `team`, `user`, `key`, `sandbox` (default), `template` or `metadata.KEY`.
    pub group_by: Option<String>,
    /// From: RFC 3339, or a span back from now such as `7d`, `24h`, `30m` (default 30d).
    pub since: Option<String>,
    /// To: RFC 3339 or a span back from now (default now).
    pub until: Option<String>,
    /// Operators only: one team's sandboxes (its id).
    pub team: Option<String>,
    /// `json` (default) or `csv` (as does `Accept: text/csv`).
    pub format: Option<String>,
}

/// `7d`, `24h`, `30m` or `90s` back from `now`, or an RFC 3339 time.
fn parse_time(field: &str, text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, WarrenError> {
    let bad = || {
        WarrenError::invalid(format!(
            "{field} must be an RFC 3339 time (2026-01-31T12:00:00Z) or a span back from now like 7d, 24h or 30m, not {text:?}"
        ))
    };
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| (0..=100_000).contains(n))
        .ok_or_else(bad)?;
    let span = match unit {
        'd' => Duration::days(n),
        'h' => Duration::hours(n),
        'm' => Duration::minutes(n),
        's' => Duration::seconds(n),
        _ => return Err(bad()),
    };
    Ok(now - span)
}

/// The report's query, scoped to what `caller` may see.
fn query(
    params: &UsageParams,
    caller: &Caller,
    now: OffsetDateTime,
) -> Result<UsageQuery, WarrenError> {
    let group_by = GroupBy::parse(params.group_by.as_deref().unwrap_or("sandbox"))?;
    let since = match &params.since {
        Some(t) => parse_time("since", t, now)?,
        None => now - DEFAULT_SPAN,
    };
    let until = match &params.until {
        Some(t) => parse_time("until", t, now)?,
        None => now,
    };
    if since > until {
        return Err(WarrenError::invalid(format!(
            "since ({}) is after until ({})",
            rfc3339(since),
            rfc3339(until)
        )));
    }
    if until - since > MAX_SPAN {
        return Err(WarrenError::invalid(
            "a usage report covers at most 400 days; narrow since and until",
        ));
    }
    let operator = caller.permissions.contains(Scope::TeamsManage);
    let team =
        match (&params.team, operator) {
            (Some(team), true) => Some(team.parse::<TeamId>().map_err(|_| {
                WarrenError::invalid(format!("team must be a team id, not {team:?}"))
            })?),
            (None, true) => None,
            (Some(team), false) if team != caller.team.as_str() => {
                return Err(WarrenError::new(
                    ErrorKind::PermissionDenied,
                    "only operators read other teams' usage; leave team out for your own",
                ));
            }
            (_, false) => Some(caller.team.clone()),
        };
    Ok(UsageQuery {
        group_by,
        team,
        sandbox: None,
        owner: None,
        key: None,
        since,
        until,
    })
}

/// `usage` in the API's units, with its cost under `prices`.
pub fn totals(usage: &Usage, prices: &Prices) -> api::UsageTotals {
    let c = prices.cost(usage);
    api::UsageTotals {
        cpu_seconds: usage.cpu_seconds(),
        memory_gib_seconds: usage.memory_gib_seconds(),
        memory_limit_gib_seconds: usage.memory_limit_gib_seconds(),
        disk_gib_hours: usage.disk_gib_hours(),
        snapshot_gib_hours: usage.snapshot_gib_hours(),
        egress_bytes: usage.egress_bytes,
        ingress_bytes: usage.ingress_bytes,
        running_seconds: usage.running_ms as f64 / 1000.0,
        standby_seconds: usage.standby_ms as f64 / 1000.0,
        paused_seconds: usage.paused_ms as f64 / 1000.0,
        cost: api::Cost {
            currency: c.currency,
            cpu: c.cpu,
            memory: c.memory,
            disk: c.disk,
            snapshots: c.snapshots,
            egress: c.egress,
            total: c.total,
        },
    }
}

fn wants_csv(params: &UsageParams, headers: &HeaderMap) -> Result<bool, WarrenError> {
    match params.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(WarrenError::invalid(format!(
            "format must be json or csv, not {other:?}"
        ))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"))),
    }
}

/// Usage of the caller's sandboxes (every team's for operators), grouped.
#[utoipa::path(get, path = "/v1/usage", tag = "metering", params(UsageParams),
    responses((status = 200, body = api::UsageReport, description = "JSON, or CSV with format=csv"),
        (status = 400, body = warren_api_types::ApiError),
        (status = 403, body = warren_api_types::ApiError)))]
pub async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> ApiResult<Response> {
    let now = state.sandboxes.now();
    let q = query(&params, &caller, now)?;
    let csv = wants_csv(&params, &headers)?;
    let groups = state.sandboxes.usage_report(&q).await?;
    let prices = state.sandboxes.prices();
    let mut sum = Usage::default();
    for g in &groups {
        sum.add(&g.usage);
    }
    let report = api::UsageReport {
        group_by: q.group_by.name(),
        since: rfc3339(q.since),
        until: rfc3339(q.until),
        groups: groups
            .iter()
            .map(|g| api::UsageGroup {
                key: g.key.clone(),
                sandboxes: g.sandboxes,
                usage: totals(&g.usage, prices),
            })
            .collect(),
        total: totals(&sum, prices),
    };
    if csv {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            super::usage_csv::render(&report),
        )
            .into_response());
    }
    Ok(axum::Json(report).into_response())
}
