//! The daemon's services and routers, put together from their parts.
//!
//! `warren serve` (`daemon.rs`) makes the parts that face the host (the
//! runtime, the address pool and firewall, the egress services, the listeners) and hands
//! the rest to [`assemble`]; the in-process server of tests
//! ([`crate::testing`]) hands it a runtime of its choosing and no network.
//! Both then serve the same routers through the same layers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::{Router, middleware};
use tokio::task::JoinHandle;
use warren_egress::intercept::WarrenCa;
use warren_runtime::Runtime;
use warren_snapshot::SnapshotStore;
use warren_store::{SqliteStore, Store};
use warren_template::TemplateStore;

use crate::ServeError;
use crate::agents::Agents;
use crate::api::router;
use crate::audit::{Audit, AuditTasks};
use crate::auth::{Authenticator, Credentials, Grants, KeyError, Pepper, TokenIssuer};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::ports::{PortProxy, route as route_ports};
use crate::service::gate::CreateGate;
use crate::service::memory::MemoryReserve;
use crate::service::meter::{Meter, MeteredRuntime};
use crate::service::secrets::SecretsCipher;
use crate::service::storage::DiskReserve;
use crate::service::webhooks::{Destinations, Webhooks};
use crate::service::{
    Hooks, Network, SandboxDeps, SandboxIdentity, Sandboxes, Secrets, Standby, Teardown, Tenancy,
};
use crate::state::AppState;
use crate::templates::TemplateBuilds;

/// The daemon's own secrets, each a file in `<data_dir>/secrets/`.
pub(crate) struct DaemonSecrets {
    /// Mixed into every API key's hash (`key-pepper`).
    pub pepper: Pepper,
    /// Derives the agents' access tokens (`agent-secret`).
    pub agent: Pepper,
    /// Signs sandbox tokens (`sandbox-token-secret`).
    pub tokens: TokenIssuer,
    /// Signs access grants (`grant-secret`).
    pub grant: Pepper,
    /// Signs the upload URLs of E2B's build files (`upload-secret`).
    pub upload: Pepper,
}

impl DaemonSecrets {
    /// Loads the secrets from `dir`, creating those missing.
    pub fn load(dir: &Path, sandbox_token_ttl_s: u64) -> Result<Self, KeyError> {
        let load = |name: &str| Pepper::load_or_create(&dir.join(name));
        Ok(Self {
            pepper: load("key-pepper")?,
            agent: load("agent-secret")?,
            tokens: TokenIssuer::new(load("sandbox-token-secret")?, sandbox_token_ttl_s),
            grant: load("grant-secret")?,
            upload: load("upload-secret")?,
        })
    }
}

/// A start-up failure naming what failed, with the error's whole chain.
pub(crate) fn startup(what: &str, e: impl std::error::Error) -> ServeError {
    ServeError::Startup(format!("{what}: {}", warren_core::error::chain(&e)))
}

/// The daemon's state that lives in its data directory, opened: its
/// secrets, the store, the audit log (writer and signer started), the
/// team and key service, the team secrets and the Warren CA.
pub(crate) struct Opened {
    pub secrets: DaemonSecrets,
    pub store: Arc<dyn Store>,
    pub audit: Audit,
    pub audit_tasks: AuditTasks,
    pub tenancy: Arc<Tenancy>,
    pub team_secrets: Arc<Secrets>,
    pub ca: Arc<WarrenCa>,
    /// Seals webhook secrets (the same key as the team secrets').
    pub webhook_cipher: SecretsCipher,
}

/// Opens what lives in `data` (`warren.db`) and `secrets_dir`, creating
/// what is missing.
pub(crate) async fn open(
    data: &Path,
    secrets_dir: &Path,
    sandbox_token_ttl_s: u64,
    clock: &Clock,
) -> Result<Opened, ServeError> {
    let secrets = DaemonSecrets::load(secrets_dir, sandbox_token_ttl_s)
        .map_err(|e| startup("daemon secrets", e))?;
    let sqlite = SqliteStore::open(&data.join("warren.db"))
        .await
        .map_err(|e| startup("cannot open the store", e))?;
    let audit_key = warren_audit::keyfile::load_or_create(&secrets_dir.join("audit.key"))
        .map_err(|e| startup("audit signing key", e))?;
    let (audit, audit_tasks) = Audit::start(sqlite.audit(), audit_key)
        .await
        .map_err(|e| startup("audit log", e))?;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let tenancy = Arc::new(Tenancy::new(
        store.clone(),
        secrets.pepper.clone(),
        audit.clone(),
        clock.clone(),
    ));
    let cipher = SecretsCipher::load_or_create(&secrets_dir.join("secrets-key"))
        .map_err(|e| startup("secrets key", e))?;
    let team_secrets = Arc::new(Secrets::new(store.clone(), cipher, audit.clone()));
    let webhook_cipher = SecretsCipher::load_or_create(&secrets_dir.join("secrets-key"))
        .map_err(|e| startup("secrets key", e))?;
    let ca = Arc::new(WarrenCa::load_or_create(secrets_dir).map_err(|e| startup("Warren CA", e))?);
    Ok(Opened {
        secrets,
        store,
        audit,
        audit_tasks,
        tenancy,
        team_secrets,
        ca,
        webhook_cipher,
    })
}

/// What the services are built from.
pub(crate) struct Parts {
    pub data_dir: PathBuf,
    pub secrets: DaemonSecrets,
    pub store: Arc<dyn Store>,
    pub audit: Audit,
    pub tenancy: Arc<Tenancy>,
    pub team_secrets: Arc<Secrets>,
    pub runtime: Arc<dyn Runtime>,
    pub network: Arc<Network>,
    pub templates: Arc<TemplateStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub agent_binary: PathBuf,
    /// Limits of sandboxes created without their own.
    pub default_limits: warren_core::Limits,
    /// The Warren CA certificate (PEM) every agent installs.
    pub ca_certificate: String,
    pub sandbox_api_port: u16,
    pub standby_s: u64,
    pub disk_reserve_mb: u64,
    pub memory_reserve_mb: u64,
    pub max_creating: usize,
    pub create_queue: usize,
    pub grant_ttl_s: u64,
    /// Normalized (`ports::parse_domain`).
    pub ports_domain: String,
    pub e2b_domain: String,
    pub clock: Clock,
    pub webhook_cipher: SecretsCipher,
    /// Where webhook deliveries may go.
    pub webhook_destinations: Destinations,
    pub webhook_first_retry: std::time::Duration,
    /// Where template builds' RUN steps may reach (`Config::build_allow`).
    pub build_allow: Vec<warren_core::network::NetRule>,
    pub meter_interval: std::time::Duration,
    /// Whether the runtime is metered (see `Config::metering`).
    pub metering: bool,
    pub prices: warren_core::metering::Prices,
    /// `Config::metrics_per_sandbox`.
    pub metrics_per_sandbox: bool,
}

/// The services and the two routers, ready to serve.
pub(crate) struct Assembled {
    pub sandboxes: Arc<Sandboxes>,
    /// Inbound webhook hooks (their seen-delivery pruner is a worker).
    pub hooks: Arc<Hooks>,
    /// Lifecycle webhooks; its worker is started by the caller.
    pub webhooks: Arc<Webhooks>,
    /// Ends once every teardown queued before the services were dropped
    /// has run.
    pub teardown_worker: JoinHandle<()>,
    /// The main API, with the port proxy in front.
    pub api: Router,
    /// The sandbox listener's API: sandbox tokens only.
    pub sandbox_api: Router,
}

/// Builds the services over `p` and the routers over them.
pub(crate) fn assemble(p: Parts) -> Assembled {
    let meter = Arc::new(Meter::new(
        p.store.clone(),
        p.runtime.clone(),
        p.network.clone(),
        p.clock.clone(),
        p.prices,
        p.meter_interval,
    ));
    let runtime: Arc<dyn Runtime> = if p.metering {
        Arc::new(MeteredRuntime::new(p.runtime, meter.clone()))
    } else {
        p.runtime
    };
    let (teardown, teardown_worker) =
        Teardown::start(runtime.clone(), p.store.clone(), p.network.clone());
    let agents = Agents::new(p.secrets.agent);
    let tokens = p.secrets.tokens.with_clock(p.clock.clone());
    let webhooks = Arc::new(Webhooks::new(
        p.store.clone(),
        p.webhook_cipher,
        p.clock.clone(),
        p.webhook_destinations,
        p.webhook_first_retry,
    ));
    let sandboxes = Sandboxes::new(SandboxDeps {
        store: p.store.clone(),
        runtime,
        meter: meter.clone(),
        templates: p.templates.clone(),
        agents: agents.clone(),
        agent_binary: p.agent_binary,
        teardown,
        identity: SandboxIdentity::new(tokens.clone(), p.sandbox_api_port),
        audit: p.audit.clone(),
        snapshots: p.snapshots,
        standby: Standby::new(std::time::Duration::from_secs(p.standby_s)),
        network: p.network,
        volumes: crate::service::volumes::VolumeDirs::new(p.data_dir.join("volumes")),
        recordings: crate::service::recordings::Recordings::new(p.data_dir.join("recordings")),
        disk: DiskReserve::new(p.data_dir, p.disk_reserve_mb),
        memory: MemoryReserve::new(p.memory_reserve_mb),
        gate: CreateGate::new(p.max_creating, p.create_queue),
        default_limits: p.default_limits,
        ca_certificate: p.ca_certificate,
        clock: p.clock.clone(),
        webhooks: webhooks.clone(),
    });
    let grants = Grants::new(
        p.store.clone(),
        p.secrets.grant,
        p.grant_ttl_s,
        p.clock.clone(),
    );
    let hooks = Arc::new(Hooks::new(
        p.store.clone(),
        sandboxes.clone(),
        p.team_secrets.clone(),
        p.audit.clone(),
        p.clock.clone(),
    ));
    let templates = Arc::new(TemplateBuilds::new(
        p.templates,
        p.store.clone(),
        sandboxes.clone(),
        p.build_allow,
    ));
    let state = AppState {
        sandboxes: sandboxes.clone(),
        hooks: hooks.clone(),
        templates: templates.clone(),
        metrics: Arc::new(Metrics::new(
            sandboxes.signals(),
            &p.audit,
            p.metrics_per_sandbox,
        )),
        e2b_builds: Arc::new(crate::e2b::Builds::new(
            templates,
            p.secrets.upload,
            p.clock.clone(),
        )),
        tenancy: p.tenancy,
        secrets: p.team_secrets,
        audit: p.audit,
        e2b_domain: p.e2b_domain.into(),
        ports_domain: p.ports_domain.as_str().into(),
        grants: grants.clone(),
        webhooks: webhooks.clone(),
        watchers: Default::default(),
    };
    let auth = Authenticator {
        store: p.store,
        pepper: p.secrets.pepper,
        tokens,
        sources: Arc::new(agents),
        accepts: Credentials::ApiKeys,
        clock: p.clock,
        sessions: Default::default(),
    };
    let sandbox_auth = Authenticator {
        accepts: Credentials::SandboxTokens,
        ..auth.clone()
    };
    let ports = PortProxy::new(sandboxes.clone(), auth.clone(), grants, &p.ports_domain);
    let api = router(state.clone(), auth).layer(middleware::from_fn_with_state(ports, route_ports));
    let sandbox_api = router(state, sandbox_auth);
    Assembled {
        sandboxes,
        hooks,
        webhooks,
        teardown_worker,
        api,
        sandbox_api,
    }
}
