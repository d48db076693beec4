//! Budgets (see `warren_core::budget` and `docs/metering.md`): set by team
//! admins, lifted for a period by operators, checked on the live meter.
//!
//! - Admission: a create, resume or fork in a budget's scope (its team,
//!   and its user or key if it names one) is refused with
//!   `budget_exceeded` (402) while the budget's spend this period has
//!   reached its amount, unless an operator lifted it for the period. The
//!   spend is read from the meter's sums at the call.
//! - Enforcement, after every meter sample: a budget past
//!   `WARNING_FRACTION` of its amount sends `budget.warning` once per
//!   period; one past its amount sends `budget.exceeded` once per period
//!   (both audit entries and lifecycle webhooks; the marks are
//!   compare-and-set in the store, so a restart never sends one twice), and
//!   while it stays spent its running sandboxes are paused or killed, as
//!   its action says, by `system:budget`.

use rand::RngCore;
use serde_json::json;
use time::OffsetDateTime;
use warren_core::budget::{BudgetAction, Period, WARNING_FRACTION, check_amount};
use warren_core::metering::GroupBy;
use warren_core::{ErrorKind, KeyId, SandboxState, TeamId, UserId, WarrenError};
use warren_store::{BudgetMark, BudgetRecord, SandboxFilter, SandboxRecord, UsageQuery};

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

/// Most budgets one team may have.
pub const MAX_BUDGETS_PER_TEAM: usize = 32;

fn new_id() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("bdg_{}", hex::encode(bytes))
}

/// A new budget, as a team admin asks for it.
#[derive(Debug, Clone)]
pub struct NewBudget {
    pub period: Period,
    pub amount: f64,
    pub action: BudgetAction,
    pub user: Option<UserId>,
    pub key: Option<KeyId>,
}

/// A budget with its spend this period.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub budget: BudgetRecord,
    pub spend: f64,
    pub period_start: OffsetDateTime,
    pub period: String,
}

impl BudgetView {
    pub fn spent(&self) -> bool {
        self.spend >= self.budget.amount
    }

    pub fn lifted(&self) -> bool {
        self.budget.override_period.as_deref() == Some(self.period.as_str())
    }
}

/// Whether a sandbox of `team` dispatched by `owner` with `key` counts
/// against `b`.
fn in_scope(b: &BudgetRecord, team: &TeamId, owner: &UserId, key: &KeyId) -> bool {
    b.team == *team
        && b.user.as_ref().is_none_or(|u| u == owner)
        && b.key.as_ref().is_none_or(|k| k == key)
}

fn exceeded(view: &BudgetView, currency: &str) -> WarrenError {
    let b = &view.budget;
    let scope = match (&b.user, &b.key) {
        (Some(u), _) => format!(" for user {u}"),
        (None, Some(k)) => format!(" for key {k}"),
        (None, None) => String::new(),
    };
    WarrenError::new(
        ErrorKind::BudgetExceeded,
        format!(
            "budget {}{scope} is spent: {:.4} of {:.4} {currency} this {} (since {}); a team admin may raise it or an operator lift it",
            b.id,
            view.spend,
            b.amount,
            b.period,
            warren_core::rfc3339(view.period_start)
        ),
    )
}

impl Sandboxes {
    /// `b` with its spend now.
    async fn budget_view(&self, b: BudgetRecord) -> Result<BudgetView, WarrenError> {
        let now = self.clock.now();
        let period_start = b.period.start(now);
        let query = UsageQuery {
            group_by: GroupBy::Team,
            team: Some(b.team.clone()),
            sandbox: None,
            owner: b.user.clone(),
            key: b.key.clone(),
            since: period_start,
            until: now,
        };
        let spend = self
            .store
            .usage_report(&query)
            .await?
            .iter()
            .map(|g| self.prices().cost(&g.usage).total)
            .sum();
        Ok(BudgetView {
            period: b.period.key(now),
            budget: b,
            spend,
            period_start,
        })
    }

    /// The budgets of `team`, or of every team, with their spend.
    pub async fn budgets(&self, team: Option<&TeamId>) -> Result<Vec<BudgetView>, WarrenError> {
        let mut out = Vec::new();
        for b in self.store.list_budgets(team).await? {
            out.push(self.budget_view(b).await?);
        }
        Ok(out)
    }

    /// Team `team`'s budget `id` (another team's is not found).
    async fn team_budget(&self, team: &TeamId, id: &str) -> Result<BudgetRecord, WarrenError> {
        match self.store.get_budget(id).await? {
            Some(b) if b.team == *team => Ok(b),
            _ => Err(WarrenError::not_found(format!("budget {id} not found"))),
        }
    }

    /// Creates a budget in `team`; its user and key must be the team's.
    pub async fn create_budget(
        &self,
        team: &TeamId,
        new: NewBudget,
        actor: &AuditActor,
        by: &KeyId,
    ) -> Result<BudgetView, WarrenError> {
        check_amount(new.amount)?;
        if let Some(user) = &new.user
            && !self
                .store
                .list_users(team)
                .await?
                .iter()
                .any(|u| u.id == *user)
        {
            return Err(WarrenError::invalid(format!(
                "user {user} is not a user of this team"
            )));
        }
        if let Some(key) = &new.key
            && !matches!(self.store.get_key(key).await?, Some(k) if k.team == *team)
        {
            return Err(WarrenError::invalid(format!(
                "key {key} is not a key of this team"
            )));
        }
        if self.store.list_budgets(Some(team)).await?.len() >= MAX_BUDGETS_PER_TEAM {
            return Err(WarrenError::new(
                ErrorKind::ResourceExhausted,
                format!("a team has at most {MAX_BUDGETS_PER_TEAM} budgets; delete one first"),
            ));
        }
        let now = self.clock.now();
        let record = BudgetRecord {
            id: new_id(),
            team: team.clone(),
            user: new.user,
            key: new.key,
            period: new.period,
            amount: new.amount,
            action: new.action,
            warned_period: None,
            exceeded_period: None,
            override_period: None,
            created_by: by.clone(),
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.put_budget(&record).await?;
        self.audit_budget(actor, Action::BudgetSet, &stored, None)
            .await;
        self.budget_view(stored).await
    }

    /// Changes a budget's amount or action. A raised amount takes effect at
    /// once; a warning or excess already sent this period is sent again
    /// when the new amount is crossed.
    pub async fn update_budget(
        &self,
        team: &TeamId,
        id: &str,
        amount: Option<f64>,
        action: Option<BudgetAction>,
        actor: &AuditActor,
    ) -> Result<BudgetView, WarrenError> {
        let mut b = self.team_budget(team, id).await?;
        if let Some(amount) = amount {
            check_amount(amount)?;
            if amount != b.amount {
                b.amount = amount;
                b.warned_period = None;
                b.exceeded_period = None;
            }
        }
        if let Some(action) = action {
            b.action = action;
        }
        b.updated_at = self.clock.now();
        let stored = self.store.put_budget(&b).await?;
        self.audit_budget(actor, Action::BudgetSet, &stored, None)
            .await;
        self.budget_view(stored).await
    }

    pub async fn delete_budget(
        &self,
        team: &TeamId,
        id: &str,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        let b = self.team_budget(team, id).await?;
        self.store.delete_budget(team, id).await?;
        self.audit_budget(actor, Action::BudgetDelete, &b, None)
            .await;
        Ok(())
    }

    /// Operators: lifts budget `id` (of any team) for the current period,
    /// or puts it back in force.
    pub async fn override_budget(
        &self,
        id: &str,
        lift: bool,
        actor: &AuditActor,
    ) -> Result<BudgetView, WarrenError> {
        let mut b = self
            .store
            .get_budget(id)
            .await?
            .ok_or_else(|| WarrenError::not_found(format!("budget {id} not found")))?;
        let now = self.clock.now();
        b.override_period = lift.then(|| b.period.key(now));
        b.updated_at = now;
        let stored = self.store.put_budget(&b).await?;
        let actor = actor.in_team(&stored.team);
        self.audit_budget(&actor, Action::BudgetOverride, &stored, None)
            .await;
        self.budget_view(stored).await
    }

    async fn audit_budget(
        &self,
        actor: &AuditActor,
        action: Action,
        b: &BudgetRecord,
        spend: Option<f64>,
    ) {
        let mut event = Event::new(action, b.id.clone())
            .with("period", b.period.to_string())
            // The audit log takes no floating point numbers: decimal text.
            .with("amount", b.amount.to_string())
            .with("action", b.action.to_string())
            .with("currency", self.prices().currency.clone());
        if let Some(u) = &b.user {
            event = event.with("user", u.to_string());
        }
        if let Some(k) = &b.key {
            event = event.with("key", k.to_string());
        }
        if let Some(spend) = spend {
            event = event.with("spend", spend.to_string());
        }
        if action == Action::BudgetOverride {
            event = event.with("lifted", b.override_period.is_some());
        }
        self.audit.record_done(&actor.in_team(&b.team), event).await;
    }

    /// Refuses new work in a spent budget's scope (see the module docs).
    pub(crate) async fn admit_spend(
        &self,
        team: &TeamId,
        owner: &UserId,
        key: &KeyId,
    ) -> Result<(), WarrenError> {
        for b in self.store.list_budgets(Some(team)).await? {
            if !in_scope(&b, team, owner, key) {
                continue;
            }
            let view = self.budget_view(b).await?;
            if view.spent() && !view.lifted() {
                return Err(exceeded(&view, &self.prices().currency));
            }
        }
        Ok(())
    }

    /// Sends due warnings and excesses, and applies spent budgets' actions
    /// (see the module docs). Failures are logged; the next sample retries.
    pub(crate) async fn enforce_budgets(&self) {
        let views = match self.budgets(None).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not read budgets");
                return;
            }
        };
        let system = AuditActor::system("budget");
        for view in views {
            let b = &view.budget;
            let currency = self.prices().currency.clone();
            let data = |kind: &str| {
                json!({
                    "type": kind,
                    "budget": b.id,
                    "team": b.team.to_string(),
                    "user": b.user.as_ref().map(ToString::to_string),
                    "key": b.key.as_ref().map(ToString::to_string),
                    "period": view.period,
                    "amount": b.amount,
                    "spend": view.spend,
                    "currency": currency,
                    "action": b.action.to_string(),
                })
            };
            if view.spend >= WARNING_FRACTION * b.amount
                && self.claim_mark(b, BudgetMark::Warned, &view.period).await
            {
                tracing::info!(budget = %b.id, spend = view.spend, amount = b.amount, "budget warning");
                self.audit_budget(&system, Action::BudgetWarning, b, Some(view.spend))
                    .await;
                self.webhooks
                    .emit_team(&b.team, "budget.warning", data("budget.warning"))
                    .await;
            }
            if !view.spent() || view.lifted() {
                continue;
            }
            if self.claim_mark(b, BudgetMark::Exceeded, &view.period).await {
                tracing::info!(budget = %b.id, spend = view.spend, amount = b.amount, "budget exceeded");
                self.audit_budget(&system, Action::BudgetExceeded, b, Some(view.spend))
                    .await;
                self.webhooks
                    .emit_team(&b.team, "budget.exceeded", data("budget.exceeded"))
                    .await;
            }
            if b.action != BudgetAction::Notify {
                self.stop_spending(b, &system).await;
            }
        }
    }

    async fn claim_mark(&self, b: &BudgetRecord, which: BudgetMark, period: &str) -> bool {
        self.store
            .mark_budget(&b.id, which, period)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(budget = %b.id, error = %e, "could not mark a budget");
                false
            })
    }

    /// Pauses or kills the running sandboxes in `b`'s scope.
    async fn stop_spending(&self, b: &BudgetRecord, system: &AuditActor) {
        let filter = SandboxFilter {
            team: Some(b.team.clone()),
            states: vec![SandboxState::Running],
            ..SandboxFilter::default()
        };
        let running: Vec<SandboxRecord> = match self.store.list_sandboxes(&filter).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(budget = %b.id, error = %e, "could not list the budget's sandboxes");
                return;
            }
        };
        for rec in running
            .iter()
            .filter(|r| in_scope(b, &b.team, &r.owner, &r.created_by))
        {
            let actor = system.in_team(&rec.team);
            let done = match b.action {
                BudgetAction::Pause => self
                    .pause(&rec.id, warren_core::PauseMode::Full, &actor)
                    .await
                    .map(drop),
                BudgetAction::Kill => self.kill(&rec.id, &actor).await,
                BudgetAction::Notify => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!(budget = %b.id, sandbox = %rec.id, error = %e.message, "could not stop a sandbox of a spent budget");
            }
        }
    }
}
