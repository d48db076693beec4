//! Creating a sandbox: validate, record it (state `creating`, network slot
//! assigned), start it in the runtime, wait for its agent, hand the agent its
//! environment and token, then mark it `running`.
//!
//! A failure at any step marks the sandbox `failed` and queues its teardown.
//! A kill that lands while the sandbox is being created wins: the creator sees
//! the compare-and-set fail and tears down what it started.

use std::collections::BTreeMap;

use serde_json::Map;
use time::OffsetDateTime;
use warren_api_types::CreateSandboxRequest;
use warren_audit::Outcome;
use warren_core::inbox::InboxSettings;
use warren_core::laps::Laps;
use warren_core::network::NetworkPolicy;
use warren_core::spec::validate_env;
use warren_core::{
    KeyId, Limits, OnIdle, Persistence, SandboxId, SandboxState, SnapshotId, TeamId, Transition,
    UserId, WarrenError,
};
use warren_envd::http_api::InitRequest;
use warren_runtime::{Instance, RootFs, RuntimeSpec};
use warren_store::{NewSandbox, SandboxRecord, StoreError};
use warren_template::{StartCommand, TemplateRef};

use super::traced::{op_span, traced};
use super::{DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S, Sandboxes};
use crate::agents::Agents;
use crate::audit::Action;
use crate::audit::AuditActor;

const MAX_METADATA_PAIRS: usize = 64;
const MAX_METADATA_KEY: usize = 128;
const MAX_METADATA_VALUE: usize = 1024;
const MAX_ENV_VARS: usize = 1024;
/// How long a restored sandbox's agent may take to answer.
const RESTORED_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who a new sandbox belongs to and acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatcher {
    pub team: TeamId,
    pub user: UserId,
    pub key: KeyId,
    /// Whether the caller holds `secrets:use`: a sandbox that inherits
    /// secret injections (a fork, a create from a snapshot) uses the
    /// secrets as much as one whose policy names them.
    pub may_use_secrets: bool,
}

impl From<&crate::auth::Caller> for Dispatcher {
    fn from(c: &crate::auth::Caller) -> Self {
        Self {
            team: c.team.clone(),
            user: c.user.clone(),
            key: c.key_id.clone(),
            may_use_secrets: c.permissions.contains(warren_core::Scope::SecretsUse),
        }
    }
}

impl Dispatcher {
    /// `403` when `policy` injects secrets and this caller may not use them.
    pub fn check_secret_use(&self, policy: &NetworkPolicy) -> Result<(), WarrenError> {
        if policy.inject.is_empty() || self.may_use_secrets {
            return Ok(());
        }
        Err(WarrenError::new(
            warren_core::ErrorKind::PermissionDenied,
            format!(
                "the sandbox would inherit injections of team secrets: this key lacks the scope {}",
                warren_core::Scope::SecretsUse
            ),
        ))
    }
}

/// A validated create request.
#[derive(Debug, Clone)]
pub struct CreateParams {
    pub template: String,
    pub limits: Limits,
    pub timeout_s: u64,
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub dispatcher: Dispatcher,
    pub persistence: Persistence,
    /// Start from this snapshot instead of the template.
    pub snapshot: Option<SnapshotId>,
    /// The sandbox's network policy; `None` takes the daemon's default (or
    /// the snapshot's policy when starting from one).
    pub network: Option<NetworkPolicy>,
    /// How its inbox takes events (`docs/events.md`).
    pub inbox: InboxSettings,
    /// Team volumes to mount (`service::volumes`).
    pub volumes: Vec<super::volumes::MountRequest>,
}

impl CreateParams {
    /// `defaults`: the daemon's limits for what the request leaves unset.
    pub fn from_request(
        req: CreateSandboxRequest,
        dispatcher: Dispatcher,
        defaults: &Limits,
    ) -> Result<Self, WarrenError> {
        let snapshot = match &req.snapshot {
            None => None,
            Some(_)
                if req.template.is_some()
                    || req.cpus.is_some()
                    || req.memory_mb.is_some()
                    || req.disk_mb.is_some() =>
            {
                return Err(WarrenError::invalid(
                    "a sandbox started from a snapshot takes the snapshot's template, cpus, memory_mb and disk_mb: leave them unset",
                ));
            }
            Some(s) => Some(s.parse::<SnapshotId>()?),
        };
        let template = req.template.unwrap_or_else(|| "base".to_owned());
        TemplateRef::parse(&template)?;
        let limits = Limits {
            cpus: req.cpus.unwrap_or(defaults.cpus),
            memory_mb: req.memory_mb.unwrap_or(defaults.memory_mb),
            pids: defaults.pids,
            disk_mb: req.disk_mb.unwrap_or(defaults.disk_mb),
        };
        limits.validate()?;
        let timeout_s = validate_timeout(req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S))?;
        if req.env.len() > MAX_ENV_VARS {
            return Err(WarrenError::invalid(format!(
                "at most {MAX_ENV_VARS} environment variables are allowed"
            )));
        }
        validate_env(&req.env)?;
        validate_metadata(&req.metadata)?;
        let on_idle = match &req.on_idle {
            Some(s) => s.parse()?,
            None if req.persistent => OnIdle::Pause,
            None => OnIdle::Kill,
        };
        let persistence = Persistence {
            timeout_s,
            idle_timeout_s: req.idle_timeout_s,
            on_idle,
            paused_ttl_s: req
                .paused_ttl_s
                .unwrap_or(Persistence::DEFAULT_PAUSED_TTL_S),
            auto_resume: req.auto_resume.unwrap_or(true),
        };
        persistence.validate()?;
        if let Some(network) = &req.network {
            network.validate()?;
        }
        let inbox = InboxSettings {
            wake: req.wake.unwrap_or_default(),
            handler: req.on_event,
        };
        inbox.validate()?;
        let volumes = super::volumes::validate_mounts(&req.volumes)?;
        if !volumes.is_empty() && snapshot.is_some() {
            return Err(WarrenError::invalid(
                "a sandbox started from a snapshot cannot mount volumes (see docs/volumes.md)",
            ));
        }
        if !volumes.is_empty() && on_idle.pause_mode().is_some() {
            return Err(WarrenError::invalid(
                "a sandbox with volumes cannot be paused, so it cannot be persistent or have on_idle 'pause' or 'pause_filesystem' (see docs/volumes.md)",
            ));
        }
        Ok(Self {
            template,
            limits,
            timeout_s,
            env: req.env,
            metadata: req.metadata,
            dispatcher,
            persistence,
            snapshot,
            network: req.network,
            inbox,
            volumes,
        })
    }
}

/// The details of a `sandbox.create` entry (a pooled create adds
/// `pooled`).
pub(super) fn create_details(rec: &SandboxRecord) -> Map<String, serde_json::Value> {
    let mut details = Map::new();
    details.insert("template".into(), rec.template.clone().into());
    details.insert("cpus".into(), rec.limits.cpus.into());
    details.insert("memory_mb".into(), rec.limits.memory_mb.into());
    details.insert("disk_mb".into(), rec.limits.disk_mb.into());
    details.insert(
        "expires_at".into(),
        warren_core::rfc3339(rec.expires_at).into(),
    );
    details
}

/// A lifetime in seconds: 1..=MAX_TIMEOUT_S.
pub fn validate_timeout(timeout_s: u64) -> Result<u64, WarrenError> {
    if timeout_s == 0 || timeout_s > MAX_TIMEOUT_S {
        return Err(WarrenError::invalid(format!(
            "timeout_s must be between 1 and {MAX_TIMEOUT_S}, got {timeout_s}"
        )));
    }
    Ok(timeout_s)
}

/// The moment a lifetime of `timeout_s` that starts at `now` ends; the
/// number is validated before it meets the clock, so no client number can
/// overflow it.
pub fn deadline(now: OffsetDateTime, timeout_s: u64) -> Result<OffsetDateTime, WarrenError> {
    let seconds = i64::try_from(validate_timeout(timeout_s)?)
        .map_err(|_| WarrenError::invalid("timeout_s is too large"))?;
    now.checked_add(time::Duration::seconds(seconds))
        .ok_or_else(|| WarrenError::invalid("timeout_s reaches past the end of time"))
}

fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), WarrenError> {
    if metadata.len() > MAX_METADATA_PAIRS {
        return Err(WarrenError::invalid(format!(
            "at most {MAX_METADATA_PAIRS} metadata entries are allowed"
        )));
    }
    for (k, v) in metadata {
        if k.is_empty() || k.len() > MAX_METADATA_KEY || k.contains(['=', '\0']) {
            return Err(WarrenError::invalid(format!(
                "metadata key '{}' must be 1-{MAX_METADATA_KEY} bytes without '=' or NUL",
                k.chars().take(40).collect::<String>()
            )));
        }
        if v.len() > MAX_METADATA_VALUE || v.contains('\0') {
            return Err(WarrenError::invalid(format!(
                "metadata value of '{k}' must be at most {MAX_METADATA_VALUE} bytes without NUL"
            )));
        }
    }
    Ok(())
}

impl Sandboxes {
    /// Creates a sandbox from a template, a snapshot or a warm pool.
    pub async fn create(
        &self,
        p: CreateParams,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        let span = op_span!("sandbox.create", p.dispatcher.team, template = %p.template);
        let created = traced(&span, self.create_untraced(p, actor)).await;
        if let Ok(rec) = &created {
            span.record("sandbox.id", rec.id.as_str());
        }
        created
    }

    async fn create_untraced(
        &self,
        p: CreateParams,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        self.disk.check()?;
        let d = &p.dispatcher;
        self.admit_spend(&d.team, &d.user, &d.key).await?;
        if let Some(snapshot) = p.snapshot.clone() {
            return self.create_from_snapshot(&snapshot, p, actor).await;
        }
        let mounts = self
            .resolve_mounts(&p.dispatcher.team, &p.volumes, p.limits.disk_mb)
            .await?;
        let mut laps = Laps::start();
        let template = self.templates.ready(&p.template)?;
        let expires_at = deadline(self.clock.now(), p.timeout_s)?;
        // An imported image's Env is the default; the caller's env wins.
        let mut env = template.default_env();
        env.extend(p.env.clone());
        // Pooled sandboxes and images were started without the volumes. A
        // pooled sandbox is running already: it goes before an image's
        // restore.
        if mounts.is_empty()
            && let Some(rec) = self
                .claim_pooled(&p, &template, &env, expires_at, actor)
                .await?
        {
            return Ok(rec);
        }
        // A pooled sandbox was running already; anything else starts one.
        let _turn = self.admit_start().await?;
        laps.lap("turn");
        if mounts.is_empty()
            && let Some(done) = self.create_from_template_snapshot(&p, actor).await
        {
            return done;
        }
        let rec = self
            .store
            .create_sandbox_in_quota(NewSandbox {
                id: SandboxId::generate(),
                template: template.name.clone(),
                template_version: template.version.clone(),
                limits: p.limits,
                env,
                metadata: p.metadata,
                team: p.dispatcher.team,
                owner: p.dispatcher.user,
                created_by: p.dispatcher.key,
                expires_at,
                persistence: p.persistence,
                source_snapshot: None,
                network: p
                    .network
                    .unwrap_or_else(|| self.network.default_policy().clone()),
                inbox: p.inbox,
            })
            .await?;
        self.changes.publish(&rec);
        laps.lap("row");
        let id = rec.id.clone();
        let start = template.start();
        let mut spec = self.runtime_spec(&rec, RootFs::TemplateDir(template.rootfs))?;
        match self.attach_mounts(&id, &mounts).await {
            Ok(binds) => spec.volumes = binds,
            Err(e) => {
                self.fail(&id, actor, &e.message).await;
                return Err(e);
            }
        }
        if let Err(e) = self.boot(&spec, &rec, start.as_ref(), &mut laps).await {
            tracing::warn!(sandbox = %id, error = %e.message, "sandbox failed to start");
            self.fail(&id, actor, &e.message).await;
            return Err(e);
        }
        let rec = self.finish_create(&id, actor).await;
        laps.lap("finish");
        tracing::debug!(sandbox = %id, %laps, "sandbox created");
        rec
    }

    /// Admits the start of a sandbox: the host has memory to spare
    /// (`service::memory`) and a turn to start is free or comes soon
    /// (`service::gate`); a refusal is `503` with a retry hint. The turn is
    /// held until the returned value is dropped. Memory is checked again
    /// once the turn comes: it may have run short meanwhile.
    pub(super) async fn admit_start(&self) -> Result<super::gate::Turn, WarrenError> {
        self.memory.check()?;
        let turn = self.gate.enter().await?;
        self.memory.check()?;
        Ok(turn)
    }

    /// What the runtime needs to start (or restore) the sandbox `rec`: its
    /// template's root filesystem, the agent, limits and its place on the
    /// host network.
    pub(super) fn runtime_spec(
        &self,
        rec: &SandboxRecord,
        rootfs: RootFs,
    ) -> Result<RuntimeSpec, WarrenError> {
        Ok(RuntimeSpec {
            id: rec.id.clone(),
            rootfs,
            agent: self.agent_binary.clone(),
            env: RuntimeSpec::agent_env(),
            limits: rec.limits,
            network: self.network.attachment(rec)?,
            volumes: Vec::new(),
        })
    }

    /// Moves a sandbox whose instance is up from creating to running; a
    /// kill that landed meanwhile wins and the instance is torn down.
    pub(super) async fn finish_create(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        self.finish_create_with(id, actor, Map::new()).await
    }

    /// [`Self::finish_create`] with `extra` details in its audit entry.
    pub(super) async fn finish_create_with(
        &self,
        id: &SandboxId,
        actor: &AuditActor,
        extra: Map<String, serde_json::Value>,
    ) -> Result<SandboxRecord, WarrenError> {
        let id = id.clone();
        match self
            .store
            .transition(&id, SandboxState::Creating, SandboxState::Running)
            .await
        {
            Ok(rec) => {
                self.changes.publish(&rec);
                tracing::info!(sandbox = %id, template = %rec.template, "sandbox running");
                self.drain_inbox(&id);
                let mut details = create_details(&rec);
                details.extend(extra);
                self.record_lifecycle(actor, &id, Action::SandboxCreate, Outcome::Ok, details)
                    .await;
                Ok(rec)
            }
            Err(StoreError::Conflict { actual, .. }) => {
                self.agents.remove(&id);
                self.teardown.enqueue(id.clone());
                Err(WarrenError::precondition(format!(
                    "sandbox {id} became {actual} while it was being created"
                )))
            }
            Err(e) => {
                let e = WarrenError::from(e);
                self.fail(&id, actor, &e.message).await;
                Err(e)
            }
        }
    }

    /// Starts the runtime instance, brings its agent up and runs the
    /// template's start command, if any (`service::start`).
    pub(super) async fn boot(
        &self,
        spec: &RuntimeSpec,
        rec: &SandboxRecord,
        start: Option<&StartCommand>,
        laps: &mut Laps,
    ) -> Result<(), WarrenError> {
        self.runtime.create(spec).await?;
        laps.lap("prepare");
        let instance = self.runtime.start(&spec.id).await?;
        laps.lap("start");
        self.init_agent(rec, &instance, None).await?;
        laps.lap("agent");
        match start {
            Some(start) => {
                self.run_start_command(rec, instance.agent_addr.ip(), start)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Connects to the agent of `rec` at `instance`, waits for it and hands
    /// it the sandbox's environment (with Warren's own variables, which win
    /// over the caller's), its access token, the current time and the Warren
    /// CA certificate to trust (installed idempotently), then a
    /// fresh sandbox token. Every path that brings an instance up (create,
    /// resume, rollback, fork, create from snapshot) goes through here, so
    /// every instance gets a token of its own and none inherits another's.
    /// `restored_from` names the sandbox whose snapshot the instance was
    /// restored from: its agent still holds that sandbox's access token
    /// (and clock) until this call.
    pub(super) async fn init_agent(
        &self,
        rec: &SandboxRecord,
        instance: &Instance,
        restored_from: Option<&SandboxId>,
    ) -> Result<(), WarrenError> {
        self.init_agent_with(rec, instance, restored_from, true)
            .await
    }

    /// [`Self::init_agent`]; without `trust_ca` the agent installs no
    /// Warren CA (template builds: the template would keep it).
    pub(super) async fn init_agent_with(
        &self,
        rec: &SandboxRecord,
        instance: &Instance,
        restored_from: Option<&SandboxId>,
        trust_ca: bool,
    ) -> Result<(), WarrenError> {
        let mut laps = Laps::start();
        let addr = instance.agent_addr.ip();
        match instance.network_kept {
            true => self.network.reapply(rec, addr).await?,
            false => self.network.apply(rec, addr).await?,
        }
        laps.lap("network");
        let client = self
            .agents
            .attach(&rec.id, instance.agent_addr, instance.origin)?;
        match restored_from {
            // A restored agent answers at once or not at all (see
            // `Sandboxes::restore_instance`).
            Some(_) => Agents::wait_ready_within(&client, RESTORED_READY_TIMEOUT).await?,
            None => Agents::wait_ready(&client).await?,
        }
        laps.lap("ready");
        let current = match restored_from {
            Some(source) => client.clone().with_access_token(self.agents.token(source)),
            None => client.clone(),
        };
        let mut env = rec.env.clone();
        env.extend(self.identity.env(&rec.id, instance.host_addr));
        let init = InitRequest {
            env_vars: Some(env),
            access_token: Some(self.agents.token(&rec.id)),
            timestamp: Some(warren_core::rfc3339(OffsetDateTime::now_utc())),
            warren_ca_cert: trust_ca.then(|| self.ca_certificate.clone()),
            ..InitRequest::default()
        };
        current.init(&init).await.map_err(crate::agent_error)?;
        laps.lap("init");
        let why = if restored_from.is_some() {
            "restore"
        } else {
            "start"
        };
        self.issue_token(&client, rec, why).await?;
        laps.lap("token");
        if restored_from.is_some() {
            self.wait_restored_start_port(rec, instance).await;
            laps.lap("start_port");
        }
        tracing::debug!(sandbox = %rec.id, %laps, "agent initialised");
        Ok(())
    }

    /// Marks a sandbox failed for `reason`, records it and cleans up.
    pub(crate) async fn fail(&self, id: &SandboxId, actor: &AuditActor, reason: &str) {
        if let Err(e) = self.transition(id, Transition::Fail).await {
            tracing::warn!(sandbox = %id, error = %e.message, "could not mark sandbox failed");
        }
        self.agents.remove(id);
        let mut details = Map::new();
        details.insert("error".into(), reason.into());
        self.record_lifecycle(actor, id, Action::SandboxFail, Outcome::Error, details)
            .await;
        // After the entry, as for a kill (see `unrecorded`).
        self.teardown.enqueue(id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Dispatcher {
        Dispatcher {
            team: TeamId::generate(),
            user: UserId::generate(),
            key: KeyId::generate(),
            may_use_secrets: false,
        }
    }

    #[test]
    fn defaults_apply() {
        let p =
            CreateParams::from_request(CreateSandboxRequest::default(), key(), &Limits::default())
                .unwrap();
        assert_eq!(p.template, "base");
        assert_eq!(p.timeout_s, DEFAULT_TIMEOUT_S);
        assert_eq!(p.limits, Limits::default());
        let daemons = Limits {
            disk_mb: 300,
            ..Limits::default()
        };
        let p =
            CreateParams::from_request(CreateSandboxRequest::default(), key(), &daemons).unwrap();
        assert_eq!(p.limits.disk_mb, 300);
        let asked = CreateSandboxRequest {
            disk_mb: Some(256),
            ..Default::default()
        };
        let p = CreateParams::from_request(asked, key(), &daemons).unwrap();
        assert_eq!(p.limits.disk_mb, 256);
    }

    #[test]
    fn persistence_and_snapshot_options() {
        let p = CreateParams::from_request(
            CreateSandboxRequest {
                persistent: true,
                idle_timeout_s: Some(60),
                ..Default::default()
            },
            key(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(p.persistence.on_idle, OnIdle::Pause);
        assert_eq!(p.persistence.idle_timeout_s, Some(60));
        assert!(p.persistence.auto_resume);
        let snap = SnapshotId::generate();
        let p = CreateParams::from_request(
            CreateSandboxRequest {
                snapshot: Some(snap.to_string()),
                ..Default::default()
            },
            key(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(p.snapshot, Some(snap.clone()));
        let cases = [
            (
                CreateSandboxRequest {
                    snapshot: Some(snap.to_string()),
                    cpus: Some(2),
                    ..Default::default()
                },
                "snapshot's template",
            ),
            (
                CreateSandboxRequest {
                    snapshot: Some(snap.to_string()),
                    disk_mb: Some(256),
                    ..Default::default()
                },
                "disk_mb",
            ),
            (
                CreateSandboxRequest {
                    snapshot: Some("nope".into()),
                    ..Default::default()
                },
                "snapshot id",
            ),
            (
                CreateSandboxRequest {
                    on_idle: Some("hibernate".into()),
                    ..Default::default()
                },
                "on_idle",
            ),
            (
                CreateSandboxRequest {
                    paused_ttl_s: Some(0),
                    ..Default::default()
                },
                "paused_ttl_s",
            ),
        ];
        for (req, word) in cases {
            let err = CreateParams::from_request(req, key(), &Limits::default()).unwrap_err();
            assert!(err.message.contains(word), "{} lacks {word}", err.message);
        }
    }

    #[test]
    fn bad_input_is_named() {
        let cases = [
            (
                CreateSandboxRequest {
                    cpus: Some(0),
                    ..Default::default()
                },
                "cpus",
            ),
            (
                CreateSandboxRequest {
                    memory_mb: Some(1),
                    ..Default::default()
                },
                "memory_mb",
            ),
            (
                CreateSandboxRequest {
                    disk_mb: Some(32),
                    ..Default::default()
                },
                "disk_mb",
            ),
            (
                CreateSandboxRequest {
                    timeout_s: Some(0),
                    ..Default::default()
                },
                "timeout_s",
            ),
            (
                CreateSandboxRequest {
                    template: Some("../etc".into()),
                    ..Default::default()
                },
                "template",
            ),
            (
                CreateSandboxRequest {
                    metadata: [("a=b".to_owned(), "c".to_owned())].into(),
                    ..Default::default()
                },
                "metadata",
            ),
            (
                CreateSandboxRequest {
                    env: [("1X".to_owned(), "c".to_owned())].into(),
                    ..Default::default()
                },
                "environment",
            ),
        ];
        for (req, word) in cases {
            let err = CreateParams::from_request(req, key(), &Limits::default()).unwrap_err();
            assert!(err.message.contains(word), "{} lacks {word}", err.message);
        }
    }
}
