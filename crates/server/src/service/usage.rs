//! Usage reports over the meter's sums (see `meter`), scoped to what the
//! caller may see: a team's own sandboxes, every team's for operators.

use std::sync::Arc;

use warren_core::WarrenError;
use warren_core::metering::{Prices, Usage};
use warren_store::{SandboxRecord, UsageGroup, UsageQuery};

use super::Sandboxes;

impl Sandboxes {
    /// One meter sample, then the budgets checked against it.
    pub async fn meter_tick(&self) -> Result<(), WarrenError> {
        let observed = self.meter.sample().await?;
        self.enforce_budgets().await;
        self.evaluate_rules(observed).await;
        Ok(())
    }

    /// Samples and checks budgets every meter interval until `shutdown`
    /// fires, then samples once more.
    pub async fn run_metering(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.meter.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = tick.tick() => false,
                _ = shutdown.changed() => true,
            };
            if let Err(e) = self.meter_tick().await {
                tracing::warn!(error = %e, "the meter could not record a sample");
            }
            if stop {
                return;
            }
        }
    }

    /// What each team's sandboxes used since the daemon started.
    pub async fn usage_since_start(&self) -> Vec<(warren_core::TeamId, Usage)> {
        self.meter.team_totals().await
    }

    /// What each live sandbox used since the daemon started, with its team.
    pub async fn usage_by_sandbox_since_start(
        &self,
    ) -> Vec<(warren_core::SandboxId, warren_core::TeamId, Usage)> {
        self.meter.sandbox_totals().await
    }

    /// The price table usage is costed with.
    pub fn prices(&self) -> &Prices {
        self.meter.prices()
    }

    /// Usage summed as `query` says.
    /// The metered minutes of sandbox `id` over the last `minutes`, oldest
    /// first.
    pub async fn usage_minutes(
        &self,
        id: &warren_core::SandboxId,
        minutes: u32,
    ) -> Result<Vec<warren_store::UsageSample>, WarrenError> {
        let now = self.clock.now().unix_timestamp() / 60;
        Ok(self
            .store
            .usage_minutes(id, now - i64::from(minutes) + 1)
            .await?)
    }

    pub async fn usage_report(&self, query: &UsageQuery) -> Result<Vec<UsageGroup>, WarrenError> {
        Ok(self.store.usage_report(query).await?)
    }

    /// Everything sandbox `rec` used since it was created.
    pub async fn sandbox_usage(&self, rec: &SandboxRecord) -> Result<Usage, WarrenError> {
        let query = UsageQuery {
            group_by: warren_core::metering::GroupBy::Sandbox,
            team: Some(rec.team.clone()),
            sandbox: Some(rec.id.clone()),
            owner: None,
            key: None,
            since: rec.created_at,
            until: self.clock.now(),
        };
        let groups = self.store.usage_report(&query).await?;
        Ok(groups
            .into_iter()
            .next()
            .map(|g| g.usage)
            .unwrap_or_default())
    }
}
