//! A runtime without sandboxes, for tests of the layers above the runtime
//! (feature `testing`).
//!
//! [`FakeRuntime`] keeps its instances in memory, in a [`FakeHost`] that
//! every runtime made [`FakeRuntime::on`] the same host shares: dropping a
//! runtime leaves its instances running, and a new one finds them (a daemon
//! restart). Each running instance's agent is an in-process HTTP server on
//! `127.0.0.1` (see `agent`) speaking the envd calls the daemon makes most:
//! health, init, files (in memory), process start, list, signal, input,
//! stdin's end, a PTY's size and the end of every process (quiesce), with
//! a tiny command set, a terminal, or a test's own [`CommandHandler`]. The
//! address is kept per attachment address, so a restore into the same slot
//! answers where the original did.
//!
//! Checkpoints copy the agent's memory (files, processes, token,
//! environment) into `fake-image.json` in the image directory; a restore
//! reads it back under any id, so fork works too.
//!
//! Tests steer it with [`FakeRuntime::fail_next`] (the next call of an
//! operation fails), [`FakeRuntime::delay`] (every call of an operation
//! waits first), [`FakeRuntime::calls`] and [`FakeRuntime::on_command`].
//!
//! It does not isolate anything, enforce CPU or memory limits (the pids
//! limit caps the agent's processes), run real programs, or speak the
//! filesystem service, `Connect`, stdin or PTYs.

mod agent;
mod commands;
mod interactive;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;
use warren_core::SandboxId;

pub use commands::{CommandHandler, CommandOutput};

use crate::{Instance, Origin, Runtime, RuntimeError, RuntimeSpec, Stats};
use agent::{AgentState, HandlerSlot, Memory};

/// The file a fake checkpoint writes into its image directory.
pub const IMAGE_FILE: &str = "fake-image.json";

/// A runtime operation, for failures and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Start,
    Checkpoint,
    Restore,
    Stop,
    Freeze,
    Thaw,
    Destroy,
    Stats,
    HasExited,
    ListLive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    Running,
    Frozen,
    Stopped,
}

/// A running agent: its memory and the task serving it.
struct Agent {
    state: Arc<AgentState>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Agent {
    /// Ends the server and waits until its listener is closed, so the
    /// address can be bound again.
    async fn shut_down(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Sandbox {
    spec: RuntimeSpec,
    status: Status,
    agent: Option<Agent>,
}

#[derive(Default)]
struct Controls {
    failures: HashMap<Op, VecDeque<RuntimeError>>,
    delays: HashMap<Op, Duration>,
    calls: HashMap<Op, usize>,
}

#[derive(Default)]
struct HostInner {
    sandboxes: tokio::sync::Mutex<HashMap<SandboxId, Sandbox>>,
    /// The agent address of each attachment address used so far.
    slots: Mutex<HashMap<std::net::Ipv4Addr, SocketAddr>>,
    controls: Mutex<Controls>,
    handler: HandlerSlot,
}

/// The state every [`FakeRuntime`] made on it shares (the fake's "host").
#[derive(Clone, Default)]
pub struct FakeHost {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost").finish_non_exhaustive()
    }
}

/// The in-memory runtime. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct FakeRuntime {
    host: FakeHost,
}

impl FakeRuntime {
    /// A runtime on a host of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// A runtime on `host`, seeing the instances of every other runtime on it.
    pub fn on(host: &FakeHost) -> Self {
        Self { host: host.clone() }
    }

    /// The host this runtime works on.
    pub fn host(&self) -> &FakeHost {
        &self.host
    }

    fn controls(&self) -> MutexGuard<'_, Controls> {
        self.host
            .inner
            .controls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The next call of `op` fails with a [`RuntimeError::Command`].
    pub fn fail_next(&self, op: Op) {
        self.fail_next_with(
            op,
            RuntimeError::Command {
                op: format!("fake {op:?}"),
                detail: "failure injected by the test".into(),
            },
        );
    }

    /// The next call of `op` (after those already queued) fails with `error`.
    pub fn fail_next_with(&self, op: Op, error: RuntimeError) {
        self.controls()
            .failures
            .entry(op)
            .or_default()
            .push_back(error);
    }

    /// Every call of `op` waits `delay` before it does anything (zero ends
    /// the delay).
    pub fn delay(&self, op: Op, delay: Duration) {
        self.controls().delays.insert(op, delay);
    }

    /// How many times `op` was called on this host.
    pub fn calls(&self, op: Op) -> usize {
        self.controls().calls.get(&op).copied().unwrap_or(0)
    }

    /// Runs `handler` for every command before the built-ins.
    pub fn on_command(&self, handler: impl CommandHandler + 'static) {
        *self
            .host
            .inner
            .handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(handler));
    }

    /// Ends every process of the live instance `id`, as a crash would;
    /// `has_exited` then says so.
    pub async fn crash(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let sandboxes = self.host.inner.sandboxes.lock().await;
        let agent = sandboxes
            .get(id)
            .and_then(|s| s.agent.as_ref())
            .ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        agent.state.end();
        Ok(())
    }

    /// What the host still holds of `id` (empty once it is destroyed).
    pub async fn traces(&self, id: &SandboxId) -> Vec<String> {
        let sandboxes = self.host.inner.sandboxes.lock().await;
        let mut found = Vec::new();
        if let Some(sandbox) = sandboxes.get(id) {
            found.push(format!("fake sandbox in state {:?}", sandbox.status));
            if let Some(agent) = &sandbox.agent
                && !agent.task.is_finished()
            {
                found.push(format!("agent server on {}", agent.addr));
            }
        }
        found
    }

    /// Counts the call, waits its delay, and takes an injected failure.
    async fn enter(&self, op: Op) -> Result<(), RuntimeError> {
        let (delay, failure) = {
            let mut c = self.controls();
            *c.calls.entry(op).or_default() += 1;
            let delay = c.delays.get(&op).copied().unwrap_or_default();
            let failure = c.failures.get_mut(&op).and_then(VecDeque::pop_front);
            (delay, failure)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Starts an agent holding `memory` for `spec` at the port kept for its
    /// attachment's address.
    async fn launch(&self, spec: &RuntimeSpec, memory: Memory) -> Result<Agent, RuntimeError> {
        let known = self
            .host
            .inner
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&spec.network.address)
            .copied();
        let want = known.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let io = |source| RuntimeError::Io {
            op: format!("binding the fake agent of {} to {want}", spec.id),
            source,
        };
        let socket = tokio::net::TcpSocket::new_v4().map_err(io)?;
        socket.set_reuseaddr(true).map_err(io)?;
        socket.bind(want).map_err(io)?;
        let listener = socket.listen(128).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        self.host
            .inner
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.network.address, addr);
        let state = AgentState::new(memory, spec.limits, self.host.inner.handler.clone());
        let task = tokio::spawn(agent::serve(listener, state.clone()));
        Ok(Agent { state, addr, task })
    }

    fn instance(id: &SandboxId, agent: &Agent, network_kept: bool) -> Instance {
        Instance {
            id: id.clone(),
            agent_addr: agent.addr,
            host_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            origin: Origin::SourceAddress(agent.addr.ip()),
            network_kept,
        }
    }
}

fn not_found(id: &SandboxId) -> RuntimeError {
    RuntimeError::NotFound(id.to_string())
}

fn refused(op: &str, id: &SandboxId, why: &str) -> RuntimeError {
    RuntimeError::Command {
        op: format!("{op} sandbox {id}"),
        detail: why.into(),
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn create(&self, spec: &RuntimeSpec) -> Result<(), RuntimeError> {
        self.enter(Op::Create).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        if sandboxes.contains_key(&spec.id) {
            return Err(refused("creating", &spec.id, "it already exists"));
        }
        sandboxes.insert(
            spec.id.clone(),
            Sandbox {
                spec: spec.clone(),
                status: Status::Created,
                agent: None,
            },
        );
        Ok(())
    }

    async fn start(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        self.enter(Op::Start).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        let sandbox = sandboxes.get_mut(id).ok_or_else(|| not_found(id))?;
        if let (Status::Running, Some(agent)) = (sandbox.status, &sandbox.agent)
            && !agent.state.has_ended()
        {
            return Ok(Self::instance(id, agent, false));
        }
        if let Some(old) = sandbox.agent.take() {
            old.shut_down().await;
        }
        let agent = self.launch(&sandbox.spec, Memory::default()).await?;
        let instance = Self::instance(id, &agent, false);
        sandbox.agent = Some(agent);
        sandbox.status = Status::Running;
        Ok(instance)
    }

    async fn checkpoint(
        &self,
        id: &SandboxId,
        dest: &Path,
        leave_running: bool,
    ) -> Result<(), RuntimeError> {
        self.enter(Op::Checkpoint).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        let sandbox = sandboxes.get_mut(id).ok_or_else(|| not_found(id))?;
        let agent = match (&sandbox.agent, sandbox.status) {
            (Some(agent), Status::Running) => agent,
            _ => return Err(refused("checkpointing", id, "it is not running")),
        };
        let json = serde_json::to_vec(&agent.state.snapshot())
            .map_err(|e| refused("checkpointing", id, &format!("encoding the image: {e}")))?;
        let path = dest.join(IMAGE_FILE);
        std::fs::write(&path, json).map_err(|source| RuntimeError::Io {
            op: format!("writing {}", path.display()),
            source,
        })?;
        if !leave_running {
            if let Some(agent) = sandbox.agent.take() {
                agent.shut_down().await;
            }
            sandbox.status = Status::Stopped;
        }
        Ok(())
    }

    async fn restore(&self, snapshot: &Path, spec: &RuntimeSpec) -> Result<Instance, RuntimeError> {
        self.enter(Op::Restore).await?;
        let path = snapshot.join(IMAGE_FILE);
        let bytes = std::fs::read(&path).map_err(|source| RuntimeError::Io {
            op: format!("reading {}", path.display()),
            source,
        })?;
        let memory: Memory = serde_json::from_slice(&bytes).map_err(|e| {
            refused(
                "restoring",
                &spec.id,
                &format!("corrupt image {}: {e}", path.display()),
            )
        })?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        if let Some(old) = sandboxes.get_mut(&spec.id) {
            if matches!(old.status, Status::Running | Status::Frozen)
                && old.agent.as_ref().is_some_and(|a| !a.state.has_ended())
            {
                return Err(refused("restoring", &spec.id, "it is still running"));
            }
            if let Some(agent) = old.agent.take() {
                agent.shut_down().await;
            }
        }
        let agent = self.launch(spec, memory).await?;
        let instance = Self::instance(&spec.id, &agent, false);
        sandboxes.insert(
            spec.id.clone(),
            Sandbox {
                spec: spec.clone(),
                status: Status::Running,
                agent: Some(agent),
            },
        );
        Ok(instance)
    }

    async fn stop(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Stop).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        let sandbox = sandboxes.get_mut(id).ok_or_else(|| not_found(id))?;
        if let Some(agent) = sandbox.agent.take() {
            agent.shut_down().await;
        }
        sandbox.status = Status::Stopped;
        Ok(())
    }

    async fn freeze(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Freeze).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        let sandbox = sandboxes.get_mut(id).ok_or_else(|| not_found(id))?;
        match (&sandbox.agent, sandbox.status) {
            (Some(agent), Status::Running) => agent.state.set_frozen(true),
            _ => return Err(refused("freezing", id, "it is not running")),
        }
        sandbox.status = Status::Frozen;
        Ok(())
    }

    async fn thaw(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        self.enter(Op::Thaw).await?;
        let mut sandboxes = self.host.inner.sandboxes.lock().await;
        let sandbox = sandboxes.get_mut(id).ok_or_else(|| not_found(id))?;
        let instance = match (&sandbox.agent, sandbox.status) {
            (Some(agent), Status::Frozen) => {
                agent.state.set_frozen(false);
                Self::instance(id, agent, true)
            }
            _ => return Err(refused("thawing", id, "it is not frozen")),
        };
        sandbox.status = Status::Running;
        Ok(instance)
    }

    async fn destroy(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.enter(Op::Destroy).await?;
        let removed = self.host.inner.sandboxes.lock().await.remove(id);
        if let Some(agent) = removed.and_then(|mut s| s.agent.take()) {
            agent.shut_down().await;
        }
        Ok(())
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats, RuntimeError> {
        self.enter(Op::Stats).await?;
        let sandboxes = self.host.inner.sandboxes.lock().await;
        match sandboxes.get(id) {
            Some(Sandbox {
                status: Status::Running | Status::Frozen,
                agent: Some(agent),
                ..
            }) if !agent.state.has_ended() => {
                let (cpu_usage_ns, memory_bytes, pids) = agent.state.usage();
                Ok(Stats {
                    cpu_usage_ns,
                    memory_bytes,
                    pids,
                    disk_bytes: 0,
                })
            }
            _ => Err(not_found(id)),
        }
    }

    async fn has_exited(&self, id: &SandboxId) -> Result<bool, RuntimeError> {
        self.enter(Op::HasExited).await?;
        let sandboxes = self.host.inner.sandboxes.lock().await;
        Ok(match sandboxes.get(id) {
            Some(Sandbox {
                status: Status::Running | Status::Frozen,
                agent: Some(agent),
                ..
            }) => agent.state.has_ended(),
            _ => false,
        })
    }

    async fn list_live(&self) -> Result<Vec<Instance>, RuntimeError> {
        self.enter(Op::ListLive).await?;
        let sandboxes = self.host.inner.sandboxes.lock().await;
        let mut live: Vec<Instance> = sandboxes
            .iter()
            .filter_map(|(id, s)| match (&s.agent, s.status) {
                (Some(agent), Status::Running | Status::Frozen) if !agent.state.has_ended() => {
                    Some(Self::instance(id, agent, false))
                }
                _ => None,
            })
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }
}
