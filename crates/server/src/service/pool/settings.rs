//! Pool settings as operators see and set them (`/v1/pools`): validated,
//! stored, then handed to the worker.

use warren_core::{KeyId, Limits, WarrenError};
use warren_store::PoolRecord;

use super::Pool;
use crate::service::Sandboxes;

/// The most ready sandboxes one pool may keep.
pub const MAX_POOL_SIZE: u32 = 256;

/// A pool's new settings; unset sizes take the daemon's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolChange {
    pub min: u32,
    pub max: u32,
    pub cpus: Option<u32>,
    pub memory_mb: Option<u32>,
    pub disk_mb: Option<u32>,
    pub frozen: bool,
}

/// A pool's settings and its state now.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub settings: PoolRecord,
    pub ready: u32,
    pub booting: u32,
    /// What the worker aims for now (`docs/pools.md`).
    pub target: u32,
    /// Creates of the template served from the pool, and not, since the
    /// daemon started.
    pub hits: u64,
    pub misses: u64,
    /// Creates per second asking for the template (moving average).
    pub rate: f64,
}

impl Sandboxes {
    /// Every pool with its state.
    pub async fn pools(&self) -> Result<Vec<PoolView>, WarrenError> {
        let stored = self.store.list_pools().await?;
        Ok(stored.into_iter().map(|s| self.view(s)).collect())
    }

    fn view(&self, settings: PoolRecord) -> PoolView {
        let t = self.pools.seconds();
        let pools = self.pools.lock();
        let pool = pools.get(&settings.template);
        let count = |f: fn(&Pool) -> u32| pool.map(f).unwrap_or(0);
        PoolView {
            ready: count(|p| u32::try_from(p.ready.len()).unwrap_or(u32::MAX)),
            booting: count(|p| p.booting),
            target: count(|p| p.target).max(settings.min),
            hits: pool.map(|p| p.hits).unwrap_or(0),
            misses: pool.map(|p| p.misses).unwrap_or(0),
            rate: pool.map(|p| p.demand.rate_at(t)).unwrap_or(0.0),
            settings,
        }
    }

    /// Creates or replaces the pool of `template`, set by the key `by`.
    pub async fn set_pool(
        &self,
        template: &str,
        change: &PoolChange,
        by: &KeyId,
    ) -> Result<PoolView, WarrenError> {
        warren_core::spec::validate_template_name(template)?;
        if !self.has_template(template) {
            return Err(WarrenError::invalid(format!(
                "template '{template}' does not exist: build or import it first"
            )));
        }
        if change.max == 0 || change.max > MAX_POOL_SIZE {
            return Err(WarrenError::invalid(format!(
                "max must be between 1 and {MAX_POOL_SIZE}, got {}",
                change.max
            )));
        }
        if change.min > change.max {
            return Err(WarrenError::invalid(format!(
                "min ({}) must not exceed max ({})",
                change.min, change.max
            )));
        }
        let defaults = self.default_limits_for(Some(template));
        let limits = Limits {
            cpus: change.cpus.unwrap_or(defaults.cpus),
            memory_mb: change.memory_mb.unwrap_or(defaults.memory_mb),
            disk_mb: change.disk_mb.unwrap_or(defaults.disk_mb),
            pids: defaults.pids,
        };
        limits.validate()?;
        let record = PoolRecord {
            template: template.to_owned(),
            limits,
            min: change.min,
            max: change.max,
            frozen: change.frozen,
            updated_at: self.clock.now(),
            updated_by: by.clone(),
        };
        let stored = self.store.put_pool(&record).await?;
        self.adopt_settings(stored.clone());
        Ok(self.view(stored))
    }

    /// Deletes the pool of `template`; its ready sandboxes are drained.
    pub async fn delete_pool(&self, template: &str) -> Result<(), WarrenError> {
        self.store
            .delete_pool(template)
            .await
            .map_err(|e| match e {
                warren_store::StoreError::NotFound(_) => {
                    WarrenError::not_found(format!("template '{template}' has no pool"))
                }
                e => e.into(),
            })?;
        if let Some(pool) = self.pools.lock().get_mut(template) {
            pool.settings = None;
        }
        self.pools.wake.notify_one();
        Ok(())
    }

    /// Hands stored settings to the worker. The pool's size as stored has
    /// the daemon's process limit (the store keeps cpus, memory and disk).
    pub(super) fn adopt_settings(&self, mut settings: PoolRecord) {
        settings.limits.pids = self.default_limits.pids;
        let mut pools = self.pools.lock();
        let pool = pools.entry(settings.template.clone()).or_default();
        pool.settings = Some(settings);
        drop(pools);
        self.pools.wake.notify_one();
    }
}
