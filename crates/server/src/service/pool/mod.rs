//! Warm pools: per template, ready sandboxes that creates claim instead of
//! booting one (`docs/pools.md`).
//!
//! Protocol:
//! - The worker ([`worker`]) boots pooled sandboxes as rows of the reserved
//!   pool team (`warren_store::pool_team`), under a deny-all network policy
//!   and without a sandbox token: no team lists, reads, counts or expires
//!   them, and they reach nothing.
//! - A create that a pool can honour (same template, built the same way
//!   per [`template_key`], the pool's exact limits, not from a snapshot,
//!   and no caller environment when the template has a start command,
//!   which ran before the claim) takes one ready sandbox out of the
//!   in-memory queue; the store then moves its row to the caller's team in
//!   one transaction within the team's quota
//!   (`Store::claim_pooled_sandbox`). The claim applies the caller's
//!   network policy, hands the agent the caller's environment, issues the
//!   sandbox token, and records the entries a cold create records, with
//!   `pooled: true`. Anything the pool cannot honour, or a claim that
//!   fails, falls back to a cold create.
//! - A pooled sandbox is claimed at most once and never returns to a pool:
//!   no claimant sees another's files, processes, environment or token.
//! - Settings live in the store; pooled sandboxes do not survive a daemon
//!   restart: the worker tears down every pool-team sandbox it finds at
//!   start, and drains the pools when the daemon stops.

mod forecast;
mod settings;
mod worker;

pub(crate) use super::template_key;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use warren_audit::Outcome;
use warren_core::{Limits, SandboxId, WarrenError};
use warren_envd::http_api::InitRequest;
use warren_store::{PoolClaim, PoolRecord, SandboxRecord, StoreError};

pub use forecast::Forecast;
pub use settings::{MAX_POOL_SIZE, PoolChange, PoolView};

use super::Sandboxes;
use super::create::CreateParams;
use crate::audit::{Action, AuditActor};

/// A pooled sandbox ready to be claimed.
#[derive(Debug, Clone)]
struct Ready {
    id: SandboxId,
    /// [`template_key`] of the template it was started from.
    key: String,
    limits: Limits,
    /// The host's end of its link (where it reaches the sandbox API).
    host: std::net::IpAddr,
    /// Kept frozen until claimed.
    frozen: bool,
}

/// One template's pool in memory.
#[derive(Debug, Default)]
struct Pool {
    /// `None` once the pool is deleted: the worker drains it.
    settings: Option<PoolRecord>,
    /// Oldest first; claims take the oldest.
    ready: VecDeque<Ready>,
    booting: u32,
    demand: Forecast,
    /// What the worker last aimed for.
    target: u32,
    hits: u64,
    misses: u64,
    /// No boots before this (after a failed one).
    backoff_until: Option<Instant>,
}

/// Every pool's state; the worker and the claims share it.
pub(crate) struct PoolState {
    pools: Mutex<HashMap<String, Pool>>,
    /// Wakes the worker (a claim, a settings change).
    wake: tokio::sync::Notify,
    /// The monotonic origin of the forecast's clock.
    epoch: Instant,
    /// Measured boot time of pooled sandboxes, seconds (moving average).
    refill_s: Mutex<f64>,
}

impl Default for PoolState {
    fn default() -> Self {
        Self {
            pools: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            epoch: Instant::now(),
            refill_s: Mutex::new(0.5),
        }
    }
}

impl PoolState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pool>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seconds(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn refill_s(&self) -> f64 {
        *self.refill_s.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note_boot(&self, took: std::time::Duration) {
        let mut r = self.refill_s.lock().unwrap_or_else(|e| e.into_inner());
        *r = 0.8 * *r + 0.2 * took.as_secs_f64();
    }

    /// Counts a create of `template` and takes the oldest ready sandbox
    /// that `want` can be served by; sandboxes of an outdated template
    /// identity are left for the worker to drain.
    fn take(&self, template: &str, key: &str, want: &Limits) -> Option<Ready> {
        let t = self.seconds();
        let mut pools = self.lock();
        let pool = pools.get_mut(template)?;
        pool.settings.as_ref()?;
        pool.demand.record(t);
        let at = pool
            .ready
            .iter()
            .position(|r| r.key == key && r.limits == *want);
        let got = at.and_then(|i| pool.ready.remove(i));
        match got {
            Some(_) => pool.hits += 1,
            None => pool.misses += 1,
        }
        self.wake.notify_one();
        got
    }

    /// Puts back a sandbox whose claim did not happen.
    fn put_back(&self, template: &str, ready: Ready) {
        let mut pools = self.lock();
        if let Some(pool) = pools.get_mut(template) {
            pool.hits = pool.hits.saturating_sub(1);
            pool.misses += 1;
            pool.ready.push_front(ready);
        }
    }
}

impl Sandboxes {
    /// Serves the create `p` from a pool, if one can: the claimed sandbox's
    /// row, or `None` for a cold create. `env` is the environment the
    /// sandbox gets (template's and caller's), `expires_at` its expiry.
    /// Only a quota refusal is an error: a cold create would meet it too.
    pub(super) async fn claim_pooled(
        &self,
        p: &CreateParams,
        template: &warren_template::Template,
        env: &std::collections::BTreeMap<String, String>,
        expires_at: time::OffsetDateTime,
        actor: &AuditActor,
    ) -> Result<Option<SandboxRecord>, WarrenError> {
        let has_start = template.start().is_some();
        if has_start && !p.env.is_empty() {
            // The start command ran before the claim, without the
            // caller's environment: only a cold create gives it that.
            self.pools.take(&p.template, "", &Limits::default());
            return Ok(None);
        }
        let mut laps = warren_core::laps::Laps::start();
        let key = template_key(template);
        let Some(ready) = self.pools.take(&p.template, &key, &p.limits) else {
            return Ok(None);
        };
        let claim = PoolClaim {
            team: p.dispatcher.team.clone(),
            owner: p.dispatcher.user.clone(),
            created_by: p.dispatcher.key.clone(),
            env: env.clone(),
            metadata: p.metadata.clone(),
            expires_at,
            persistence: p.persistence,
            network: p
                .network
                .clone()
                .unwrap_or_else(|| self.network.default_policy().clone()),
            inbox: p.inbox.clone(),
        };
        let rec = match self.store.claim_pooled_sandbox(&ready.id, &claim).await {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                // Gone meanwhile (it died, or the pool was drained).
                return Ok(None);
            }
            Err(e @ StoreError::QuotaExceeded(_)) => {
                self.pools.put_back(&p.template, ready);
                return Err(e.into());
            }
            Err(e) => {
                tracing::warn!(sandbox = %ready.id, error = %e, "could not claim a pooled sandbox");
                self.retire(&ready.id).await;
                return Ok(None);
            }
        };
        laps.lap("claim");
        let handed = match self.hand_over(&rec, ready.host, ready.frozen).await {
            Ok(token_expires) => {
                laps.lap("network+init+token");
                // Both entries at once share the audit log's commit. The
                // create's details are a cold create's, marked pooled.
                let mut details = super::create::create_details(&rec);
                details.insert("pooled".into(), true.into());
                tokio::join!(
                    self.record_token_issue(&rec, "start", token_expires),
                    self.record_lifecycle(
                        actor,
                        &rec.id,
                        Action::SandboxCreate,
                        Outcome::Ok,
                        details
                    )
                );
                Ok(())
            }
            Err(e) => Err(e),
        };
        match handed {
            Ok(()) => {
                self.drain_inbox(&rec.id);
                laps.lap("audit");
                tracing::info!(sandbox = %rec.id, template = %rec.template, %laps, "sandbox running (pooled)");
                Ok(Some(rec))
            }
            Err(e) => {
                tracing::warn!(sandbox = %rec.id, error = %e.message, "a claimed pooled sandbox could not be handed over; creating cold");
                self.fail(&rec.id, actor, &e.message).await;
                Ok(None)
            }
        }
    }

    /// Thaws the claimed sandbox `rec` if it was kept `frozen`, then gives
    /// it its caller's policy, environment and sandbox token (written by
    /// the agent at its `/init`); returns the token's expiry.
    async fn hand_over(
        &self,
        rec: &SandboxRecord,
        host: std::net::IpAddr,
        frozen: bool,
    ) -> Result<time::OffsetDateTime, WarrenError> {
        if frozen {
            self.runtime.thaw(&rec.id).await?;
        }
        let addr = self.network.address_of(&rec.id).ok_or_else(|| {
            WarrenError::internal(format!("pooled sandbox {} has no address", rec.id))
        })?;
        // Warren's own variables win over the caller's, as at a cold create.
        let mut env = rec.env.clone();
        env.extend(self.identity.env(&rec.id, host));
        let (token, expires_at) = self.identity.mint_for_init(rec);
        let init = InitRequest {
            env_vars: Some(env),
            timestamp: Some(warren_core::rfc3339(time::OffsetDateTime::now_utc())),
            warren_token: Some(token),
            ..InitRequest::default()
        };
        let client = self.agents.client(&rec.id, None).await?;
        // The policy and the environment are independent: both at once.
        let (network, init) = tokio::join!(self.network.rebind(rec, addr), client.init(&init));
        network?;
        init.map_err(crate::agent_error)?;
        Ok(expires_at)
    }
}
