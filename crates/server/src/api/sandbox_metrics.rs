//! `GET /v1/sandboxes/{id}/metrics`: a sandbox's metered minutes, for
//! charts of its CPU, memory and network over time.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use warren_api_types::{ApiError, MetricMinute, SandboxMetrics};
use warren_core::{WarrenError, rfc3339};

use crate::error::ApiResult;
use crate::extract::{ApiQuery, SandboxPath};
use crate::state::AppState;

/// The longest look back.
const MAX_MINUTES: u32 = 24 * 60;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsParams {
    /// How many minutes back from now, 1-1440 (default 60).
    pub minutes: Option<u32>,
}

/// The sandbox's CPU, memory and network minute by minute, as the meter
/// measured them (its interval, `--meter-interval`, decides how fresh the
/// last minute is).
#[utoipa::path(get, path = "/v1/sandboxes/{id}/metrics", tag = "sandboxes",
    params(("id" = String, Path), MetricsParams),
    responses((status = 200, body = SandboxMetrics), (status = 400, body = ApiError),
        (status = 404, body = ApiError)))]
pub async fn metrics(
    State(state): State<AppState>,
    SandboxPath(id): SandboxPath,
    ApiQuery(params): ApiQuery<MetricsParams>,
) -> ApiResult<Json<SandboxMetrics>> {
    let minutes = params.minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(WarrenError::invalid(format!(
            "minutes must be between 1 and {MAX_MINUTES}, got {minutes}"
        ))
        .into());
    }
    let samples = state.sandboxes.usage_minutes(&id, minutes).await?;
    let minutes = samples
        .into_iter()
        .map(|s| {
            let u = s.usage;
            let running_ms = u.running_ms as f64;
            let while_running = |mib_ms: u64| {
                if running_ms > 0.0 {
                    mib_ms as f64 / running_ms
                } else {
                    0.0
                }
            };
            MetricMinute {
                minute: OffsetDateTime::from_unix_timestamp(s.minute * 60)
                    .map(rfc3339)
                    .unwrap_or_default(),
                cpu_cores: u.cpu_ns as f64 / 60e9,
                memory_mib: while_running(u.memory_mib_ms),
                memory_limit_mib: while_running(u.memory_limit_mib_ms),
                egress_bytes: u.egress_bytes,
                ingress_bytes: u.ingress_bytes,
                running_s: running_ms / 1000.0,
            }
        })
        .collect();
    Ok(Json(SandboxMetrics { minutes }))
}
