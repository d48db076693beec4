//! The pool worker: at start it tears down pooled sandboxes left from a
//! previous run and loads the stored settings; then, on every tick or
//! wake-up, for each pool it drains sandboxes of an outdated template
//! identity or size, boots toward the target and retires what exceeds it;
//! a deleted pool is drained. When the daemon stops, every ready pooled
//! sandbox is retired.
//!
//! Host capacity bounds the refill: a boot is started only while the
//! daemon's disk reserve holds, at most [`MAX_BOOTS`] at a time, and a
//! failed boot (no free network slot, a runtime error) holds the pool's
//! boots back for [`BACKOFF`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use warren_core::network::NetworkPolicy;
use warren_core::{Persistence, SandboxId, SandboxState, Transition, WarrenError};
use warren_envd::http_api::InitRequest;
use warren_store::{NewSandbox, PoolRecord, SandboxFilter, pool_owner, pool_team};

use super::{Ready, template_key};
use crate::agents::Agents;
use crate::service::Sandboxes;
use crate::service::create::deadline;

/// How often the worker looks at the pools without being woken.
const TICK: Duration = Duration::from_millis(250);
/// Boots in flight at once, over every pool.
const MAX_BOOTS: u32 = 4;
/// How long a pool waits after a failed boot.
const BACKOFF: Duration = Duration::from_secs(5);

/// What one pass decided for one pool.
struct Plan {
    retire: Vec<SandboxId>,
    boot: u32,
    settings: Option<PoolRecord>,
    template: Option<warren_template::Template>,
}

impl Sandboxes {
    /// Keeps the pools at their targets until `shutdown` fires.
    pub async fn run_pools(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        self.tear_down_leftovers().await;
        match self.store.list_pools().await {
            Ok(stored) => {
                for s in stored {
                    let known = self
                        .pools
                        .lock()
                        .get(&s.template)
                        .is_some_and(|p| p.settings.is_some());
                    if !known {
                        self.adopt_settings(s);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not load the pools' settings"),
        }
        loop {
            self.pass().await;
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = self.pools.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        let ids: Vec<SandboxId> = {
            let mut pools = self.pools.lock();
            pools
                .values_mut()
                .flat_map(|p| {
                    p.settings = None;
                    p.ready.drain(..).map(|r| r.id)
                })
                .collect()
        };
        for id in ids {
            self.retire(&id).await;
        }
    }

    /// Pooled sandboxes from before this start are torn down: their agents'
    /// state and template identity are not known to this run.
    async fn tear_down_leftovers(&self) {
        let pool = pool_team();
        let filter = SandboxFilter {
            team: Some(pool),
            ..SandboxFilter::default()
        };
        match self.store.list_sandboxes(&filter).await {
            Ok(left) => {
                for rec in left {
                    tracing::info!(sandbox = %rec.id, "tearing down a pooled sandbox from before the restart");
                    self.retire(&rec.id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list pooled sandboxes"),
        }
    }

    /// One look at every pool.
    async fn pass(self: &Arc<Self>) {
        let names: Vec<String> = self.pools.lock().keys().cloned().collect();
        for name in names {
            // The template as it is now; `None` if it is gone or not ready.
            let template = self.templates.ready(&name).ok();
            let plan = self.plan(&name, template);
            for id in plan.retire {
                self.retire(&id).await;
            }
            if let (Some(settings), Some(template)) = (plan.settings, plan.template) {
                for _ in 0..plan.boot {
                    let me = self.clone();
                    let (settings, template) = (settings.clone(), template.clone());
                    tokio::spawn(async move { me.refill_one(settings, template).await });
                }
            }
        }
    }

    /// Decides what to retire and how many to boot for the pool `name`,
    /// counting the boots as started.
    fn plan(&self, name: &str, template: Option<warren_template::Template>) -> Plan {
        let t = self.pools.seconds();
        let refill = self.pools.refill_s();
        let mut pools = self.pools.lock();
        let in_flight: u32 = pools.values().map(|p| p.booting).sum();
        let Some(pool) = pools.get_mut(name) else {
            return Plan {
                retire: Vec::new(),
                boot: 0,
                settings: None,
                template: None,
            };
        };
        let mut retire = Vec::new();
        let Some(settings) = pool.settings.clone() else {
            retire.extend(pool.ready.drain(..).map(|r| r.id));
            if pool.booting == 0 {
                pools.remove(name);
            }
            return Plan {
                retire,
                boot: 0,
                settings: None,
                template: None,
            };
        };
        let key = template.as_ref().map(template_key);
        let (keep, stale): (Vec<Ready>, Vec<Ready>) = pool.ready.drain(..).partition(|r| {
            Some(&r.key) == key.as_ref()
                && r.limits == settings.limits
                && r.frozen == settings.frozen
        });
        retire.extend(stale.into_iter().map(|r| r.id));
        pool.ready = keep.into();
        let target = pool.demand.target(t, refill, settings.min, settings.max);
        pool.target = target;
        let have = u32::try_from(pool.ready.len()).unwrap_or(u32::MAX) + pool.booting;
        if have > target {
            let extra = (have - target).min(u32::try_from(pool.ready.len()).unwrap_or(0));
            for _ in 0..extra {
                if let Some(r) = pool.ready.pop_back() {
                    retire.push(r.id);
                }
            }
        }
        let waiting = pool.backoff_until.is_some_and(|u| Instant::now() < u);
        let mut boot = 0;
        if template.is_some()
            && !waiting
            && have < target
            && self.disk.check().is_ok()
            && self.memory.check().is_ok()
        {
            boot = (target - have).min(MAX_BOOTS.saturating_sub(in_flight));
            pool.booting += boot;
        }
        Plan {
            retire,
            boot,
            settings: Some(settings),
            template,
        }
    }

    /// Boots one pooled sandbox and queues it as ready, unless its pool
    /// changed meanwhile.
    async fn refill_one(
        self: Arc<Self>,
        settings: PoolRecord,
        template: warren_template::Template,
    ) {
        let started = Instant::now();
        let key = template_key(&template);
        let booted = self.boot_pooled(&settings, template).await;
        let leftover = self.settle_boot(&settings, key, booted, started);
        if let Some(id) = leftover {
            self.retire(&id).await;
        }
        self.pools.wake.notify_one();
    }

    /// Queues a booted sandbox as ready if its pool still wants one of its
    /// size; returns it otherwise, for retiring.
    fn settle_boot(
        &self,
        settings: &PoolRecord,
        key: String,
        booted: Result<Ready, WarrenError>,
        started: Instant,
    ) -> Option<SandboxId> {
        let mut pools = self.pools.lock();
        let pool = pools.get_mut(&settings.template);
        let wanted = pool.as_ref().is_some_and(|p| {
            p.settings
                .as_ref()
                .is_some_and(|s| s.limits == settings.limits)
        });
        match (booted, pool) {
            (Ok(ready), Some(pool)) if wanted => {
                pool.booting = pool.booting.saturating_sub(1);
                self.pools.note_boot(started.elapsed());
                pool.ready.push_back(Ready { key, ..ready });
                None
            }
            (Ok(ready), pool) => {
                if let Some(pool) = pool {
                    pool.booting = pool.booting.saturating_sub(1);
                }
                Some(ready.id)
            }
            (Err(e), pool) => {
                tracing::warn!(template = %settings.template, error = %e.message, "could not boot a pooled sandbox");
                if let Some(pool) = pool {
                    pool.booting = pool.booting.saturating_sub(1);
                    pool.backoff_until = Some(Instant::now() + BACKOFF);
                }
                None
            }
        }
    }

    /// Starts a sandbox of the pool's template and size as the pool team's:
    /// deny-all network, the template's environment, no sandbox token.
    async fn boot_pooled(
        &self,
        settings: &PoolRecord,
        template: warren_template::Template,
    ) -> Result<Ready, WarrenError> {
        let (owner, key) = pool_owner();
        let env = template.default_env();
        let rec = self
            .store
            .create_sandbox(NewSandbox {
                id: SandboxId::generate(),
                template: template.name.clone(),
                template_version: template.version.clone(),
                limits: settings.limits,
                env,
                metadata: Default::default(),
                team: pool_team(),
                owner,
                created_by: key,
                expires_at: deadline(self.clock.now(), super::super::MAX_TIMEOUT_S)?,
                persistence: Persistence::default(),
                source_snapshot: None,
                network: NetworkPolicy::default(),
                inbox: Default::default(),
            })
            .await?;
        let id = rec.id.clone();
        let result = async {
            let spec = self.runtime_spec(
                &rec,
                warren_runtime::RootFs::TemplateDir(template.rootfs.clone()),
            )?;
            self.runtime.create(&spec).await?;
            let instance = self.runtime.start(&id).await?;
            self.network.apply(&rec, instance.agent_addr.ip()).await?;
            let client = self
                .agents
                .attach(&id, instance.agent_addr, instance.origin)?;
            Agents::wait_ready(&client).await?;
            let mut env = rec.env.clone();
            env.extend(self.identity.env(&id, instance.host_addr));
            let init = InitRequest {
                env_vars: Some(env),
                access_token: Some(self.agents.token(&id)),
                timestamp: Some(warren_core::rfc3339(time::OffsetDateTime::now_utc())),
                warren_ca_cert: Some(self.ca_certificate.clone()),
                ..InitRequest::default()
            };
            client.init(&init).await.map_err(crate::agent_error)?;
            if let Some(start) = template.start() {
                self.run_start_command(&rec, instance.agent_addr.ip(), &start).await?;
            }
            // The first process a sandbox starts pays for cold caches
            // inside gVisor; pay it here, not in the claimant's first
            // command. An image without /bin/true just goes unwarmed.
            if let Err(e) = self.run_to_end(&id, None, "/bin/true", &[], "/").await {
                tracing::debug!(sandbox = %id, error = %e.message, "could not warm a pooled sandbox");
            }
            if settings.frozen {
                self.runtime.freeze(&id).await?;
            }
            self.store
                .transition(&id, SandboxState::Creating, SandboxState::Running)
                .await?;
            Ok::<_, WarrenError>(Ready {
                id: id.clone(),
                key: String::new(),
                limits: rec.limits,
                host: instance.host_addr,
                frozen: settings.frozen,
            })
        }
        .await;
        if result.is_err() {
            self.retire(&id).await;
        }
        result
    }

    /// Ends a pooled sandbox without a claim: no team's audit trail or
    /// webhooks hear of it (it was never a team's).
    pub(super) async fn retire(&self, id: &SandboxId) {
        // A frozen pool's sandbox is let go on first: a frozen agent answers
        // nothing the kill waits for. One that is not frozen refuses the thaw.
        let _ = self.runtime.thaw(id).await;
        match self.transition(id, Transition::Kill).await {
            Ok(_) => {}
            Err(e) if e.kind == warren_core::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(sandbox = %id, error = %e.message, "could not retire a pooled sandbox");
            }
        }
        self.agents.remove(id);
        self.identity.forget(id);
        self.locks.forget(id);
        self.teardown.enqueue(id.clone());
    }
}
