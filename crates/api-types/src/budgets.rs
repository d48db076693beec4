//! Budgets (`/v1/budgets`): what a team, or one of its users or keys, may
//! spend per day or month (docs/metering.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/budgets`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CreateBudgetRequest {
    /// `day` or `month` (UTC).
    pub period: String,
    /// In the price table's currency; 0 to 10^12.
    pub amount: f64,
    /// `pause` (default), `kill` or `notify`: what happens to the running
    /// sandboxes in its scope once it is spent.
    #[serde(default)]
    pub action: Option<String>,
    /// Only sandboxes this user (id) dispatched.
    #[serde(default)]
    pub user: Option<String>,
    /// Only sandboxes this key (id) created.
    #[serde(default)]
    pub key: Option<String>,
}

/// `PUT /v1/budgets/{id}`: absent fields keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpdateBudgetRequest {
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub action: Option<String>,
}

/// `PUT /v1/budgets/{id}/override` (operators).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OverrideBudgetRequest {
    /// `true` lifts the budget until its period ends; `false` puts it back.
    pub lifted: bool,
}

/// A budget and where it stands this period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Budget {
    pub id: String,
    pub team: String,
    pub user: Option<String>,
    pub key: Option<String>,
    pub period: String,
    pub amount: f64,
    pub currency: String,
    pub action: String,
    /// Cost of its scope's usage since `period_start`.
    pub spend: f64,
    /// RFC 3339.
    pub period_start: String,
    /// Whether its warning (80 %) was sent this period.
    pub warned: bool,
    /// Whether its spend reached its amount this period.
    pub exceeded: bool,
    /// Whether an operator lifted it for this period.
    pub lifted: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /v1/budgets`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BudgetList {
    pub budgets: Vec<Budget>,
}
