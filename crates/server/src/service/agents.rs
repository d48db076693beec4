//! Connections to the agents inside live sandboxes.
//!
//! Each sandbox's agent requires an access token. The token is derived from a
//! daemon secret and the sandbox id (HMAC), so a restarted daemon can talk to
//! agents it re-attaches without storing tokens anywhere.
//!
//! A checkpoint resets every TCP connection of the sandbox (runsc runs with
//! `--net-disconnect-ok`), so after one the client is replaced
//! ([`Agents::reconnect`]) rather than reusing pooled connections that are
//! gone. Other holders of connections to an agent (the E2B proxy) watch
//! [`Agents::link`]'s signal, which fires on every reconnect and removal,
//! and let theirs go too: a checkpoint must not hold established
//! connections to the agent (see docs/runtime.md). An agent restored from a snapshot still holds the token of the
//! sandbox the snapshot was taken from until it is initialised again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use warren_core::{SandboxId, WarrenError};
use warren_envd::EnvdClient;

use crate::auth::Pepper;

/// How long a freshly started sandbox may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one health check may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// One connected agent.
#[derive(Clone)]
struct Agent {
    client: EnvdClient,
    addr: SocketAddr,
    /// Dropped with the entry (on reconnect and removal): the receivers
    /// handed out by [`Agents::link`] then see the channel close.
    closed: Arc<watch::Sender<()>>,
}

#[derive(Clone)]
pub struct Agents {
    secret: Pepper,
    agents: Arc<RwLock<HashMap<SandboxId, Agent>>>,
}

impl Agents {
    pub fn new(secret: Pepper) -> Self {
        Self {
            secret,
            agents: Arc::default(),
        }
    }

    /// The access token of `id`'s agent.
    pub fn token(&self, id: &SandboxId) -> String {
        self.secret.derive(&format!("agent-token:{id}"))
    }

    /// The traffic token of `id`: opens the sandbox's own servers (ports
    /// other than envd's) through the E2B proxy, and nothing else.
    pub fn traffic_token(&self, id: &SandboxId) -> String {
        self.secret.derive(&format!("traffic-token:{id}"))
    }

    /// Registers the agent of `id` at `addr` and returns its client.
    pub fn attach(&self, id: &SandboxId, addr: SocketAddr) -> Result<EnvdClient, WarrenError> {
        let client = EnvdClient::new(&format!("http://{addr}"))
            .map_err(crate::agent_error)?
            .with_access_token(self.token(id));
        let agent = Agent {
            client: client.clone(),
            addr,
            closed: Arc::new(watch::channel(()).0),
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
            .map(|a| a.addr);
        match addr {
            Some(addr) => self.attach(id, addr).map(drop),
            None => Ok(()),
        }
    }

    /// The agent's client, acting as `user` if given.
    pub fn get(&self, id: &SandboxId, user: Option<&str>) -> Result<EnvdClient, WarrenError> {
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

    /// The address the sandbox's traffic comes from, while its agent is
    /// connected.
    pub fn address(&self, id: &SandboxId) -> Option<IpAddr> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| a.addr.ip())
    }

    /// The agent's address and a receiver whose `changed()` fails once
    /// the connections made to this address must be closed: the client was
    /// replaced (before and after a checkpoint) or the agent removed.
    pub fn link(&self, id: &SandboxId) -> Option<(SocketAddr, watch::Receiver<()>)> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|a| (a.addr, a.closed.subscribe()))
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
        let mut delay = Duration::from_millis(2);
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
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}
