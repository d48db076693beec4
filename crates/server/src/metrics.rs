//! `GET /metrics`: the daemon's signals in the Prometheus/OpenMetrics text
//! format, for operators (`teams:manage`; Prometheus sends the key as a
//! Bearer token).
//!
//! Series, every label bounded:
//! - `warren_http_requests_total{method,route,status}` and
//!   `warren_http_request_duration_seconds{method,route}`: every API call
//!   that matched a route, by its route template (never a raw path, so
//!   sandbox ids do not become labels), timed from the request's arrival
//!   to its answer's head. Create, exec, pause, resume and fork latencies
//!   are these histograms at their routes (native and E2B).
//! - `warren_sandboxes{state}`: sandboxes by state, counted at scrape time.
//! - `warren_pool_ready{template}`, `warren_pool_target{template}` and
//!   `warren_pool_claims_total{template,outcome}`: warm pools, read at
//!   scrape time.
//! - `warren_team_cpu_seconds{team}`, `warren_team_memory_gib_seconds{team}`,
//!   `warren_team_egress_bytes{team}` and `warren_team_cost{team,currency}`:
//!   what each team's sandboxes used since the daemon started, as the meter
//!   counted it (`docs/metering.md`); one series per team.
//! - With `--metrics-per-sandbox` only: the same four per live sandbox,
//!   `warren_sandbox_*{sandbox,team}` (a label value per sandbox id).
//! - `warren_audit_append_seconds`: from handing an entry to the audit
//!   writer to its commit.
//! - `warren_egress_decisions_total{kind,verdict,reason}` and
//!   `warren_egress_relayed_bytes_total{kind,direction}`: the resolver's,
//!   the egress proxy's and the packet log's decisions (`crate::signals`).
//! - `warren_creates_starting`, `warren_creates_waiting` and
//!   `warren_creates_refused`: the create gate (`service::gate`): turns
//!   held and callers queued at scrape time, and creates refused as busy
//!   since the daemon started.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;
use warren_core::metering::{Prices, Usage};
use warren_core::{SandboxId, TeamId, WarrenError};

use crate::audit::Audit;
use crate::error::ApiResult;
use crate::signals::Signals;
use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TemplateLabels {
    template: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TeamLabels {
    team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CostLabels {
    team: String,
    currency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SandboxLabels {
    sandbox: String,
    team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SandboxCostLabels {
    sandbox: String,
    team: String,
    currency: String,
}

/// Use since the daemon started, one series per live sandbox.
#[derive(Default)]
struct PerSandbox {
    cpu: Family<SandboxLabels, FloatGauge>,
    memory: Family<SandboxLabels, FloatGauge>,
    egress: Family<SandboxLabels, Gauge>,
    cost: Family<SandboxCostLabels, FloatGauge>,
}

impl PerSandbox {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "sandbox_cpu_seconds",
            "CPU time each live sandbox used since the daemon started",
            self.cpu.clone(),
        );
        registry.register(
            "sandbox_memory_gib_seconds",
            "Memory in use by each live sandbox, integrated since the daemon started",
            self.memory.clone(),
        );
        registry.register(
            "sandbox_egress_bytes",
            "Bytes each live sandbox sent beyond the host since the daemon started",
            self.egress.clone(),
        );
        registry.register(
            "sandbox_cost",
            "What each live sandbox's use since the daemon started costs",
            self.cost.clone(),
        );
    }

    /// Replaces every series with those of `totals`.
    fn set(&self, totals: &[(SandboxId, TeamId, Usage)], prices: &Prices) {
        self.cpu.clear();
        self.memory.clear();
        self.egress.clear();
        self.cost.clear();
        for (sandbox, team, usage) in totals {
            let labels = SandboxLabels {
                sandbox: sandbox.to_string(),
                team: team.to_string(),
            };
            self.cpu.get_or_create(&labels).set(usage.cpu_seconds());
            self.memory
                .get_or_create(&labels)
                .set(usage.memory_gib_seconds());
            self.egress
                .get_or_create(&labels)
                .set(i64::try_from(usage.egress_bytes).unwrap_or(i64::MAX));
            self.cost
                .get_or_create(&SandboxCostLabels {
                    sandbox: labels.sandbox,
                    team: labels.team,
                    currency: prices.currency.clone(),
                })
                .set(prices.cost(usage).total);
        }
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClaimLabels {
    template: String,
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The registry and the series the daemon updates.
pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    sandboxes: Family<StateLabels, Gauge>,
    pool_ready: Family<TemplateLabels, Gauge>,
    pool_target: Family<TemplateLabels, Gauge>,
    pool_claims: Family<ClaimLabels, Gauge>,
    team_cpu: Family<TeamLabels, FloatGauge>,
    team_memory: Family<TeamLabels, FloatGauge>,
    team_egress: Family<TeamLabels, Gauge>,
    team_cost: Family<CostLabels, FloatGauge>,
    per_sandbox: Option<PerSandbox>,
    creates_starting: Gauge,
    creates_waiting: Gauge,
    creates_refused: Gauge,
}

impl Metrics {
    /// The registry, with the counters `signals` and `audit` keep, and
    /// per-sandbox series if `per_sandbox`.
    pub fn new(signals: &Signals, audit: &Audit, per_sandbox: bool) -> Self {
        let mut registry = Registry::with_prefix("warren");
        signals.register(&mut registry);
        registry.register(
            "audit_append_seconds",
            "Time from handing an entry to the audit writer to its commit",
            audit.append_latency(),
        );
        let per_sandbox = per_sandbox.then(PerSandbox::default);
        if let Some(p) = &per_sandbox {
            p.register(&mut registry);
        }
        let requests = Family::<CallLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let sandboxes = Family::<StateLabels, Gauge>::default();
        let pool_ready = Family::<TemplateLabels, Gauge>::default();
        let pool_target = Family::<TemplateLabels, Gauge>::default();
        let pool_claims = Family::<ClaimLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "API calls by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from an API call's arrival to its answer's head, by route template",
            latency.clone(),
        );
        registry.register("sandboxes", "Sandboxes by state", sandboxes.clone());
        registry.register(
            "pool_ready",
            "Ready sandboxes in each warm pool",
            pool_ready.clone(),
        );
        registry.register(
            "pool_target",
            "What each warm pool aims for now",
            pool_target.clone(),
        );
        registry.register(
            "pool_claims",
            "Creates of each pooled template since the daemon started, served from the pool (hit) or cold (miss)",
            pool_claims.clone(),
        );
        let team_cpu = Family::<TeamLabels, FloatGauge>::default();
        let team_memory = Family::<TeamLabels, FloatGauge>::default();
        let team_egress = Family::<TeamLabels, Gauge>::default();
        let team_cost = Family::<CostLabels, FloatGauge>::default();
        registry.register(
            "team_cpu_seconds",
            "CPU time each team's sandboxes used since the daemon started",
            team_cpu.clone(),
        );
        registry.register(
            "team_memory_gib_seconds",
            "Memory in use by each team's sandboxes, integrated since the daemon started",
            team_memory.clone(),
        );
        registry.register(
            "team_egress_bytes",
            "Bytes each team's sandboxes sent beyond the host since the daemon started",
            team_egress.clone(),
        );
        registry.register(
            "team_cost",
            "What each team's usage since the daemon started costs, by the price table",
            team_cost.clone(),
        );
        let (creates_starting, creates_waiting, creates_refused) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "creates_starting",
            "Sandboxes being created now (turns held at the create gate)",
            creates_starting.clone(),
        );
        registry.register(
            "creates_waiting",
            "Creates waiting for a turn at the create gate",
            creates_waiting.clone(),
        );
        registry.register(
            "creates_refused",
            "Creates refused as busy (503) since the daemon started",
            creates_refused.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sandboxes,
            pool_ready,
            pool_target,
            pool_claims,
            team_cpu,
            team_memory,
            team_egress,
            team_cost,
            per_sandbox,
            creates_starting,
            creates_waiting,
            creates_refused,
        }
    }

    fn observe(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&CallLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Reads the gauges that are counted, not tracked, from `state`.
    async fn refresh(&self, state: &AppState) -> Result<(), WarrenError> {
        for (s, n) in state.sandboxes.count_by_state().await? {
            self.sandboxes
                .get_or_create(&StateLabels {
                    state: s.as_str().to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for pool in state.sandboxes.pools().await? {
            let template = TemplateLabels {
                template: pool.settings.template.clone(),
            };
            self.pool_ready
                .get_or_create(&template)
                .set(i64::from(pool.ready));
            self.pool_target
                .get_or_create(&template)
                .set(i64::from(pool.target));
            for (outcome, n) in [("hit", pool.hits), ("miss", pool.misses)] {
                self.pool_claims
                    .get_or_create(&ClaimLabels {
                        template: pool.settings.template.clone(),
                        outcome,
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let gate = state.sandboxes.create_gate_load();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.creates_starting.set(count(gate.in_flight));
        self.creates_waiting.set(count(gate.waiting));
        self.creates_refused
            .set(i64::try_from(gate.refused).unwrap_or(i64::MAX));
        let prices = state.sandboxes.prices();
        for (team, usage) in state.sandboxes.usage_since_start().await {
            let team = team.to_string();
            let labels = TeamLabels { team: team.clone() };
            self.team_cpu
                .get_or_create(&labels)
                .set(usage.cpu_seconds());
            self.team_memory
                .get_or_create(&labels)
                .set(usage.memory_gib_seconds());
            self.team_egress
                .get_or_create(&labels)
                .set(i64::try_from(usage.egress_bytes).unwrap_or(i64::MAX));
            self.team_cost
                .get_or_create(&CostLabels {
                    team,
                    currency: prices.currency.clone(),
                })
                .set(prices.cost(&usage).total);
        }
        if let Some(p) = &self.per_sandbox {
            p.set(
                &state.sandboxes.usage_by_sandbox_since_start().await,
                prices,
            );
        }
        Ok(())
    }
}

/// Counts and times every call that matched a route; a call carrying a
/// W3C `traceparent` header runs in that trace (`warren_otlp`).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resp = match traceparent {
        Some(tp) => {
            let context = tracing::info_span!(target: warren_otlp::CONTEXT_TARGET, "request", traceparent = tp.as_str());
            next.run(req).instrument(context).await
        }
        None => next.run(req).await,
    };
    if let Some(route) = route {
        metrics.observe(
            &method,
            &route,
            resp.status(),
            started.elapsed().as_secs_f64(),
        );
    }
    resp
}

/// The daemon's metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
        (status = 403, body = warren_api_types::ApiError)))]
pub async fn scrape(State(state): State<AppState>) -> ApiResult<Response> {
    state.metrics.refresh(&state).await?;
    let mut text = String::new();
    encode(&mut text, &state.metrics.registry)
        .map_err(|e| WarrenError::internal(format!("could not encode the metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
