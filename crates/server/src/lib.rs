//! The daemon: services that own sandbox lifecycles, and the axum routers of
//! the HTTP API. `warren serve` builds a [`Config`] and calls [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

mod agents;
pub mod api;
mod assemble;
pub mod audit;
pub mod auth;
pub mod clock;
mod credentials;
mod daemon;
pub mod dashboard;
mod data_lock;
pub mod e2b;
pub mod error;
pub(crate) mod extract;
mod forward;
mod listener;
mod metrics;
pub mod ports;
mod route_table;
pub mod service;
mod signals;
pub mod signature;
mod state;
mod templates;
#[cfg(feature = "testing")]
pub mod testing;

/// The sandbox backends `warren serve` can run. Each is a
/// `warren_runtime::Runtime`; the daemon picks one at start and checks
/// that the host can run it (`docs/runtime.md`, Conformance, says what a
/// new one must pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeKind {
    /// gVisor's runsc, a network namespace per sandbox.
    #[default]
    Gvisor,
}

/// Everything `warren serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// The sandbox backend; default gVisor.
    pub runtime: RuntimeKind,
    /// Address of the HTTP API; default 127.0.0.1:8700.
    pub listen: SocketAddr,
    /// State directory; default /var/lib/warren.
    pub data_dir: PathBuf,
    /// Where templates live; default `<data_dir>/templates`. Several daemons
    /// may share one (templates are read-only once built).
    pub templates_dir: Option<PathBuf>,
    /// The static `warren-agent` binary mounted into every sandbox; default:
    /// `warren-agent` next to the running executable.
    pub agent_binary: Option<PathBuf>,
    /// IPv4 range carved into one /30 per sandbox; default 10.77.0.0/16.
    /// Daemons on one host need disjoint ranges.
    pub sandbox_cidr: String,
    /// Port of the sandbox listener, where processes inside sandboxes call
    /// the API with their sandbox token; default: the API port + 1. It
    /// takes connections from sandboxes only.
    pub sandbox_api_port: Option<u16>,
    /// Lifetime of sandbox tokens in seconds, 900-3600; default 1800.
    pub sandbox_token_ttl_s: u64,
    /// Lifetime of access grants (the tokens that open a sandbox's agent
    /// and ports) in seconds, 300 to 30 days; default a day.
    pub grant_ttl_s: u64,
    /// Seconds a paused sandbox's instance stays frozen in memory, so a
    /// resume within them takes milliseconds; 0 turns standby off.
    pub standby_s: u64,
    /// Hosts `{port}-{id}.{domain}` reach a sandbox's port; default
    /// `localhost` ([`ports::DEFAULT_DOMAIN`]).
    pub ports_domain: String,
    /// Most connections one client address may hold open to the API
    /// listener; default 256 (`listener::Limits`).
    pub max_connections_per_source: usize,
    /// The domain E2B's answers name, so that the SDKs' `getHost(port)`
    /// (`{port}-{id}.{domain}`) reaches the port proxy; default
    /// `{ports_domain}:{API port}`. Set it to the public name when a TLS
    /// proxy is in front (the SDK's users pick the scheme).
    pub e2b_domain: Option<String>,
    /// Free space (MiB) the data directory's filesystem keeps: below it new
    /// sandboxes are refused with 507; default 2048.
    pub disk_reserve_mb: u64,
    /// Memory (MiB) the host keeps available: below it new and resumed
    /// sandboxes are refused with 503 and a retry hint; default 1024
    /// (`service::memory`). 0 turns the check off.
    pub memory_reserve_mb: u64,
    /// Sandboxes starting at once; default twice the CPUs
    /// (`service::gate`).
    pub max_creating: usize,
    /// Creates that may wait for a turn to start; more are refused with
    /// 503 and a retry hint; default 32.
    pub create_queue: usize,
    /// Disk limit (MiB) of sandboxes created without `disk_mb`; default
    /// 10240 ([`warren_core::Limits::DEFAULT_DISK_MB`]).
    pub default_disk_mb: u32,
    /// Network policy of sandboxes created without one; default: deny
    /// everything.
    pub network_default: warren_core::network::NetworkPolicy,
    /// Where the sandboxes' resolver sends the queries it allows; default:
    /// the first nameserver of the host's /etc/resolv.conf, port 53.
    pub dns_upstream: Option<SocketAddr>,
    /// Host port of the sandboxes' DNS resolver; default: the API port + 2.
    pub dns_port: Option<u16>,
    /// Host port of the transparent egress proxy; default: the API port + 3.
    pub egress_proxy_port: Option<u16>,
    /// A CA certificate file (PEM) trusted, besides the system's CAs, for
    /// the servers the egress proxy injects secrets into requests to.
    pub upstream_ca: Option<PathBuf>,
    /// Ranges lifecycle webhooks may be delivered to although they are
    /// closed by default (loopback, link-local, private, …); the sandbox
    /// pool stays closed (`docs/webhooks.md`).
    pub webhook_allow: Vec<warren_core::network::Cidr>,
    /// Seconds before a failed webhook delivery's first retry; default 5.
    pub webhook_first_retry_s: u64,
    /// Whether templates with a start command are snapshotted once and
    /// created by restoring that image (`docs/templates.md`); default on.
    pub template_snapshots: bool,
    /// Destinations every template build's RUN steps may reach besides
    /// the host's Debian mirror (E2B's builds name none of their own).
    pub build_allow: Vec<warren_core::network::NetRule>,
    /// How often the meter samples every sandbox; default 15 s.
    pub meter_interval: std::time::Duration,
    /// Whether the meter runs; without it nothing is metered, and budgets
    /// and anomaly rules are not enforced (for benchmarks); default on.
    pub metering: bool,
    /// What usage costs (`docs/metering.md`); default
    /// [`warren_core::metering::Prices::default`].
    pub prices: warren_core::metering::Prices,
    /// Whether `/metrics` also has one series per live sandbox (its use
    /// since the daemon started); default off, as every sandbox id becomes
    /// a label value.
    pub metrics_per_sandbox: bool,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Startup(String),
}

/// Runs the daemon until `shutdown` completes, then drains and returns.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    daemon::run(config, shutdown).await
}

/// Maps a failure talking to a sandbox agent onto the error vocabulary.
pub(crate) fn agent_error(e: warren_envd::ClientError) -> warren_core::WarrenError {
    use warren_core::ErrorKind as K;
    use warren_envd::Code as C;
    if let warren_envd::ClientError::InsufficientStorage(message) = &e {
        return warren_core::WarrenError::new(K::InsufficientStorage, message.clone());
    }
    let kind = match e.code() {
        C::InvalidArgument | C::OutOfRange => K::InvalidArgument,
        C::NotFound => K::NotFound,
        C::AlreadyExists => K::AlreadyExists,
        C::PermissionDenied => K::PermissionDenied,
        C::FailedPrecondition | C::Aborted => K::FailedPrecondition,
        C::ResourceExhausted => K::ResourceExhausted,
        C::Unavailable | C::Canceled => K::Unavailable,
        C::DeadlineExceeded => K::DeadlineExceeded,
        C::Unauthenticated | C::Unimplemented | C::Unknown | C::Internal | C::DataLoss => {
            K::Internal
        }
    };
    let message = match &e {
        warren_envd::ClientError::Rpc(rpc) => rpc.message.clone(),
        other => format!("sandbox agent: {other}"),
    };
    warren_core::WarrenError::new(kind, message)
}
