//! Connections to the agents inside live sandboxes.
//!
//! Each sandbox's agent requires an access token. The token is derived from a
//! daemon secret and the sandbox id (HMAC), so a restarted daemon can talk to
//! agents it re-attaches without storing tokens anywhere. It never leaves
//! the daemon: clients hold grants ([`crate::auth::grant`]), which the
//! proxies check and replace by this token.
//!
//! A checkpoint resets every TCP connection of the sandbox (the runtime
//! destroys the host ends first: an image holding a connection can restore
//! with the agent deaf). While one is taken the sandbox is *held*
//! ([`Agents::hold`]): [`Agents::client`] and [`Agents::address`] wait until
//! it is over, so no new connection slips into the image, and the client is
//! then replaced rather than reusing pooled connections that are gone. An
//! agent restored from a snapshot still holds the token of the sandbox the
//! snapshot was taken from until it is initialised again.
//!
//! Every attached agent also carries the connection pool the proxies use
//! for that sandbox ([`Agents::upstream`]), made anew at each attach and
//! dropped with the agent. Pools are never shared between sandboxes: an
//! address is handed to a new sandbox once the old one is torn down, and a
//! kept-alive connection to a sandbox that died without closing it (its
//! kernel killed, no FIN sent) would otherwise carry the new sandbox's
//! first request into a reset.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use warren_core::{SandboxId, WarrenError};
use warren_envd::EnvdClient;
use warren_runtime::Origin;

use crate::auth::Pepper;
use crate::forward::Upstream;

/// How long a freshly started sandbox may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The first pause between health checks, doubled after each one up to
/// [`READY_POLL_MAX`]: a freshly started agent listens 13–29 ms after
/// `runsc run` returns (docs/benchmarks.md), and a short period finds it
/// soon after.
const READY_POLL_FIRST: Duration = Duration::from_millis(1);
const READY_POLL_MAX: Duration = Duration::from_millis(4);
/// How long one health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for a checkpoint to end before a call gives up.
const HOLD_TIMEOUT: Duration = Duration::from_secs(120);

/// One connected agent.
#[derive(Clone)]
struct Agent {
    client: EnvdClient,
    addr: SocketAddr,
    /// What proves a connection comes from this instance (its runtime's
    /// word, see [`Origin`]).
    origin: Origin,
    upstream: Upstream,
}

/// Sandboxes being checkpointed: how many holds each has, and a channel
/// whose closing wakes those waiting.
type Holds = HashMap<SandboxId, (usize, watch::Sender<()>)>;

#[derive(Clone)]
pub struct Agents {
    secret: Pepper,
    agents: Arc<RwLock<HashMap<SandboxId, Agent>>>,
    holds: Arc<Mutex<Holds>>,
}

/// A sandbox held for a checkpoint; released on drop, when the agent's
/// client is replaced.
pub struct Hold {
    agents: Agents,
    id: SandboxId,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.agents.reconnect(&self.id);
        let mut holds = self.agents.holds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((count, _)) = holds.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                holds.remove(&self.id);
            }
        }
    }
}

impl crate::auth::SandboxSources for Agents {
    fn origin(&self, id: &SandboxId) -> Option<Origin> {
        Agents::origin(self, id)
    }
}

impl Agents {
    pub fn new(secret: Pepper) -> Self {
        Self {
            secret,
            agents: Arc::default(),
            holds: Arc::default(),
        }
    }

    /// Holds `id` while a checkpoint is taken: new calls wait, the pooled
    /// connections are dropped now and the client replaced at release.
    pub fn hold(&self, id: &SandboxId) -> Hold {
        self.holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert_with(|| (0, watch::channel(()).0))
            .0 += 1;
        let _ = self.reconnect(id);
        Hold {
            agents: self.clone(),
            id: id.clone(),
        }
    }

    /// Waits until no checkpoint holds `id`.
    async fn unheld(&self, id: &SandboxId) -> Result<(), WarrenError> {
        let waiting = self
            .holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|(_, tx)| tx.subscribe());
        let Some(mut rx) = waiting else {
            return Ok(());
        };
        // Ends with an error once the sender is dropped: the hold is over.
        match tokio::time::timeout(HOLD_TIMEOUT, rx.changed()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(WarrenError::unavailable(format!(
                "sandbox {id} is still being checkpointed; try again in a moment"
            ))),
        }
    }

    /// The access token of `id`'s agent; for the daemon's own use only.
    pub fn token(&self, id: &SandboxId) -> String {
        self.secret.derive(&format!("agent-token:{id}"))
    }

    /// Registers the agent of `id` at `addr`, whose connections `origin`
    /// recognises, and returns its client.
    pub fn attach(
        &self,
        id: &SandboxId,
        addr: SocketAddr,
        origin: Origin,
    ) -> Result<EnvdClient, WarrenError> {
        let client = EnvdClient::new(&format!("http://{addr}"))
            .map_err(crate::agent_error)?
            .with_access_token(self.token(id));
        let agent = Agent {
            client: client.clone(),
            addr,
            origin,
            upstream: Upstream::new(),
        };
        self.agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), agent);
        Ok(client)
    }

    /// Replaces the client of `id` by a fresh one (new connections), after
    /// a checkpoint reset the old ones. Nothing happens if `id` has none.
    pub fn reconnect(&self, id: &SandboxId) -> Result<(), WarrenError> {
        let addr = self
            .agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| (a.addr, a.origin));
        match addr {
            Some((addr, origin)) => self.attach(id, addr, origin).map(drop),
            None => Ok(()),
        }
    }

    /// The agent's client, acting as `user` if given, once no checkpoint
    /// holds the sandbox.
    pub async fn client(
        &self,
        id: &SandboxId,
        user: Option<&str>,
    ) -> Result<EnvdClient, WarrenError> {
        self.unheld(id).await?;
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| a.client.clone())
            .map(|c| match user {
                Some(u) => c.with_user(u),
                None => c,
            })
            .ok_or_else(|| {
                WarrenError::unavailable(format!(
                    "the agent of sandbox {id} is not connected; try again in a moment"
                ))
            })
    }

    /// What proves a connection comes from the sandbox, while its agent
    /// is connected.
    pub fn origin(&self, id: &SandboxId) -> Option<Origin> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| a.origin)
    }

    /// The sandbox's agent's address, once no checkpoint holds it.
    pub async fn address(&self, id: &SandboxId) -> Option<IpAddr> {
        self.unheld(id).await.ok()?;
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| a.addr.ip())
    }

    /// The sandbox's address and this instance's own connection pool, once
    /// no checkpoint holds it.
    pub(crate) async fn upstream(&self, id: &SandboxId) -> Option<(IpAddr, Upstream)> {
        self.unheld(id).await.ok()?;
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| (a.addr.ip(), a.upstream.clone()))
    }

    /// Every connected agent: its sandbox and address.
    pub fn live(&self) -> Vec<(SandboxId, SocketAddr)> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, a)| (id.clone(), a.addr))
            .collect()
    }

    pub fn remove(&self, id: &SandboxId) {
        self.agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Waits until the agent answers its health check.
    pub async fn wait_ready(client: &EnvdClient) -> Result<(), WarrenError> {
        Self::wait_ready_within(client, READY_TIMEOUT).await
    }

    /// Waits at most `limit` until the agent answers its health check. Each
    /// check has its own short deadline: a connection the sandbox accepts
    /// but never answers must not hold the wait past `limit`.
    pub async fn wait_ready_within(
        client: &EnvdClient,
        limit: Duration,
    ) -> Result<(), WarrenError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut delay = READY_POLL_FIRST;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let check = tokio::time::timeout(left.min(HEALTH_TIMEOUT), client.health()).await;
            if matches!(check, Ok(Ok(()))) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WarrenError::unavailable(format!(
                    "the sandbox agent did not answer within {}s",
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(READY_POLL_MAX);
        }
    }
}
