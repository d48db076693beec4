//! Budget rows (see `warren_core::budget`). Each belongs to one team and
//! optionally narrows to one user's or one key's sandboxes.

use time::OffsetDateTime;
use warren_core::budget::{BudgetAction, Period};
use warren_core::{KeyId, TeamId, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRecord {
    pub id: String,
    pub team: TeamId,
    /// Only sandboxes this user dispatched.
    pub user: Option<UserId>,
    /// Only sandboxes this key created.
    pub key: Option<KeyId>,
    pub period: Period,
    pub amount: f64,
    pub action: BudgetAction,
    /// The last period its warning was sent for.
    pub warned_period: Option<String>,
    /// The last period its exceeded event was sent for.
    pub exceeded_period: Option<String>,
    /// A period an operator lifted it for.
    pub override_period: Option<String>,
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Which of a budget's once-per-period marks to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMark {
    Warned,
    Exceeded,
}
