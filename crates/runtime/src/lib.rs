//! The sandbox runtime: one trait, [`Runtime`], and its backends.
//!
//! A runtime turns a [`RuntimeSpec`] into a running, isolated instance whose
//! agent the daemon reaches at [`Instance::agent_addr`]. Runtimes know nothing
//! of the store, of users or of the API; the service layer drives them.
//!
//! Invariants every backend keeps:
//! - `destroy` is idempotent and leaks nothing (processes, mounts, network
//!   namespaces, veths, cgroups, files) even after a partial `create`.
//! - `list_live` finds every instance this runtime (with the same state
//!   directory) started, so a restarted daemon can re-attach to them.
//! - Instances of two runtimes with different state directories never see
//!   each other.
//!
//! Modules:
//! - [`gvisor`]: the backend in use, runsc in a network namespace per
//!   sandbox (its runsc-specific workarounds are named in `gvisor/quirks.rs`);
//! - `conformance` (feature `conformance`): the invariants above and the
//!   rest of the trait's contract as `check_*` functions any backend's tests
//!   run, driving instances through the trait and their agent;
//! - `fake` (feature `testing`): an in-memory runtime whose instances'
//!   agents are in-process envd servers, with failures and delays on demand,
//!   for tests of the layers above.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use warren_core::{Limits, SandboxId};

pub mod gvisor;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod fake;

mod error;
pub use error::RuntimeError;
pub use warren_net::NetworkAttachment;

/// What one sandbox needs, whatever the backend: the backend decides how to
/// provide it (gVisor: an OCI bundle, bind mounts, an overlay and a network
/// namespace; see `docs/runtime.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSpec {
    /// Also the runtime's container id (fixed length).
    pub id: SandboxId,
    /// The sandbox's root filesystem; its writes never reach the source.
    pub rootfs: RootFs,
    /// Host path of the static `warren-agent` binary, run as the sandbox's
    /// first process (read-only inside).
    pub agent: PathBuf,
    /// Environment of the agent process (the agent builds its children's
    /// environment itself); [`RuntimeSpec::agent_env`] is the usual one.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    /// Where the sandbox sits on the host network, decided by the daemon's
    /// network layer (see [`NetworkAttachment`]). The backend connects the
    /// sandbox there and nowhere else.
    pub network: NetworkAttachment,
    /// Host directories bind-mounted read-write into the sandbox (team
    /// volumes). Their writes reach the host directory at once, bypass the
    /// sandbox's disk and survive it.
    pub volumes: Vec<VolumeBind>,
}

/// One host directory mounted read-write into a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBind {
    /// The host directory; the caller made it and trusts its path.
    pub source: PathBuf,
    /// Absolute, normalised path inside the sandbox.
    pub target: String,
}

impl RuntimeSpec {
    /// The agent process's usual environment: a `PATH` and root's `HOME`.
    pub fn agent_env() -> Vec<(String, String)> {
        [
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    }
}

/// Where a sandbox's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFs {
    /// A template's root filesystem directory, shared read-only by every
    /// sandbox of that template; each sandbox writes to its own layer.
    TemplateDir(PathBuf),
    /// A directory this sandbox alone writes to, with no layer of its own
    /// (template builds: the directory becomes the next version). Nothing
    /// else may use it while the sandbox runs; such a sandbox is never
    /// checkpointed.
    WritableDir(PathBuf),
}

impl RootFs {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::TemplateDir(p) | Self::WritableDir(p) => p,
        }
    }
}

/// A live sandbox as the runtime knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: SandboxId,
    /// Where the agent (envd protocol) listens, reachable from the host.
    pub agent_addr: SocketAddr,
    /// The host's end of the sandbox's link: the address at which the
    /// sandbox reaches the daemon's sandbox API.
    pub host_addr: std::net::IpAddr,
    /// How the daemon recognises this instance's own requests on its
    /// sandbox listener.
    pub origin: Origin,
    /// Whether the sandbox's network (namespace, link and firewall chain)
    /// is the one it had before this instance (a thaw, or a restore of the
    /// same sandbox into the same slot) rather than built afresh.
    pub network_kept: bool,
}

/// What proves that a connection to the daemon comes from one sandbox, as
/// its backend guarantees it. A sandbox token is honoured only together
/// with this proof, so a token copied out of its sandbox is worth nothing.
///
/// Backends that give each sandbox an address of its own on the host
/// (gVisor: the attachment's address, guarded on its veth so nothing else
/// can send from it) say [`Origin::SourceAddress`]. A backend without
/// per-sandbox addresses (one host socket per sandbox, vsock, a shared
/// bridge) needs another variant that names what it guarantees, e.g. the
/// listener or socket the connection arrived on, and the daemon's
/// authenticator a matching check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Every packet of the sandbox, and no other's, has this source address.
    SourceAddress(std::net::IpAddr),
}

impl Origin {
    /// Whether a connection from `peer` carries this proof.
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        match self {
            Self::SourceAddress(addr) => *addr == peer,
        }
    }
}

/// Resource usage of a live sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_bytes: u64,
    pub pids: u64,
    /// Bytes the sandbox's writable layer holds on the host's disk.
    pub disk_bytes: u64,
}

/// A sandbox runtime backend.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Short name, e.g. `gvisor`.
    fn name(&self) -> &'static str;

    /// Prepares everything for `spec` (root filesystem, agent, limits,
    /// network attachment) without starting it.
    async fn create(&self, spec: &RuntimeSpec) -> Result<(), RuntimeError>;

    /// Starts a created sandbox; returns once its processes run (the caller
    /// waits for the agent).
    async fn start(&self, id: &SandboxId) -> Result<Instance, RuntimeError>;

    /// Writes the sandbox's full state (memory, processes, root filesystem
    /// writes) into the empty directory `dest`. Without `leave_running` the
    /// sandbox is gone afterwards (its resources are released by `destroy`).
    async fn checkpoint(
        &self,
        id: &SandboxId,
        dest: &Path,
        leave_running: bool,
    ) -> Result<(), RuntimeError>;

    /// Starts a new instance for `spec` from a checkpoint directory.
    async fn restore(&self, snapshot: &Path, spec: &RuntimeSpec) -> Result<Instance, RuntimeError>;

    /// Stops the sandbox's processes (SIGKILL to the whole sandbox), which
    /// releases its CPU and memory at once; what remains (directories,
    /// network) goes with `destroy`, or is reused or replaced by a later
    /// `restore` of the same id.
    async fn stop(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Suspends every process of the running sandbox in place: no CPU is
    /// used, memory is kept, [`Self::thaw`] goes on within milliseconds.
    /// [`Self::stop`] and [`Self::destroy`] also end a frozen sandbox.
    async fn freeze(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Continues a frozen sandbox; fails if it is not frozen (stopped,
    /// gone, or never frozen).
    async fn thaw(&self, id: &SandboxId) -> Result<Instance, RuntimeError>;

    /// Removes every trace of the sandbox. Idempotent.
    async fn destroy(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Current resource usage.
    async fn stats(&self, id: &SandboxId) -> Result<Stats, RuntimeError>;

    /// Whether an instance the runtime holds as live (running or frozen)
    /// has ended by itself: its kernel died, or everything in it exited.
    /// Cheap enough to ask every second (no process is started); `false`
    /// for an id the runtime does not hold.
    async fn has_exited(&self, id: &SandboxId) -> Result<bool, RuntimeError>;

    /// Every live instance this runtime started, for re-attaching after a
    /// daemon restart.
    async fn list_live(&self) -> Result<Vec<Instance>, RuntimeError>;
}
