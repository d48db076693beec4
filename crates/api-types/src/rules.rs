//! Anomaly rules (`/v1/rules`, docs/metering.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One rule: fires when `kind`'s measurement of a running sandbox has been
/// at or above `threshold` for `for_s` seconds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// `cpu`, `memory`, `pids` (shares of the sandbox's limits, 0-1),
    /// `spend_rate` (cost per hour), `egress_denials` (refusals per
    /// minute), `process_age` (seconds) or `forks` (branches per minute).
    pub kind: String,
    pub threshold: f64,
    /// Seconds the condition must hold (0: the first sample), at most a week.
    #[serde(default)]
    pub for_s: u64,
    /// `notify`, `pause` or `kill`.
    pub action: String,
}

/// `GET /v1/rules`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RuleSet {
    /// The caller's team's own rules.
    pub team: Vec<RuleSpec>,
    /// The operator's rules for every team.
    pub operator: Vec<RuleSpec>,
    /// In force for the team: per kind its own, else the operator's, else
    /// the default.
    pub effective: Vec<RuleSpec>,
}

/// `PUT /v1/rules`: replaces the team's rules, or the operator's with
/// `scope: operator` (operators).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetRulesRequest {
    /// `team` (default) or `operator`.
    #[serde(default)]
    pub scope: Option<String>,
    pub rules: Vec<RuleSpec>,
}
