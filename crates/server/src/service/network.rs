//! The daemon's network layer: where each sandbox sits on the host network,
//! and its policy in force (the daemon side of egress enforcement; see
//! `docs/network.md`).
//!
//! The daemon owns the address pool and the firewall table (made and
//! installed at start, `daemon.rs`); [`Network::attachment`] turns a
//! sandbox's slot into the [`NetworkAttachment`] its runtime spec carries.
//!
//! Invariants:
//! - a sandbox's policy is stored before it is enforced, and enforced
//!   (its nftables chain and the resolver/proxy registry) every time an
//!   instance of it comes up — create, resume, rollback, fork, create from
//!   snapshot ([`Sandboxes::init_agent`]) and re-attach at start-up — so a
//!   restarted daemon, which replaced its firewall table, rebuilds
//!   every live sandbox's rules; until then a sandbox gets nothing (fail
//!   closed);
//! - a live update replaces the stored policy, then the sandbox's sets and
//!   chain in one nftables transaction; connections already open stay;
//! - a sandbox's chain goes when it is torn down ([`Network::forget`]),
//!   before its slot is released: a new sandbox in that slot applies its
//!   own chain under the same name, which a late removal would delete;
//! - network events are stored per sandbox (bounded by the store); denied
//!   decisions also go to the audit log as `network.deny`, at most one per
//!   sandbox and destination per [`DENY_AUDIT_EVERY`], so a sandbox that
//!   retries in a loop cannot flood the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use warren_audit::Outcome;
use warren_core::network::{NetworkPolicy, Verdict};
use warren_core::{SandboxId, SandboxState, WarrenError};
use warren_egress::egress::{NetEvent, NetEventKind};
use warren_egress::registry::{Registry, SandboxNet};
use warren_net::{AddressPool, Firewall, NetworkAttachment};
use warren_store::{NewNetEvent, SandboxRecord};

use super::Sandboxes;
use super::record::details;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};

/// Most events written to the store in one transaction.
const EVENT_BATCH: usize = 256;
/// How often one sandbox's denials of one destination reach the audit log.
pub const DENY_AUDIT_EVERY: Duration = Duration::from_secs(60);

/// Egress enforcement as the services see it.
pub struct Network {
    /// The pool sandboxes' addresses come from.
    pool: AddressPool,
    /// The daemon's firewall; `None` runs without per-sandbox rules.
    firewall: Option<Firewall>,
    registry: Registry,
    /// What a sandbox created without a policy gets.
    default: NetworkPolicy,
}

impl Network {
    pub fn new(
        pool: AddressPool,
        firewall: Option<Firewall>,
        registry: Registry,
        default: NetworkPolicy,
    ) -> Self {
        Self {
            pool,
            firewall,
            registry,
            default,
        }
    }

    /// Where sandbox `rec` sits on the host network, from its slot.
    pub fn attachment(&self, rec: &SandboxRecord) -> Result<NetworkAttachment, WarrenError> {
        NetworkAttachment::new(&self.pool, &rec.id, rec.net_slot)
            .map_err(|e| WarrenError::internal(format!("the network of sandbox {}: {e}", rec.id)))
    }

    /// The daemon's default policy.
    pub fn default_policy(&self) -> &NetworkPolicy {
        &self.default
    }

    /// Enforces `rec`'s policy for its instance at `addr`.
    pub async fn apply(&self, rec: &SandboxRecord, addr: IpAddr) -> Result<(), WarrenError> {
        let IpAddr::V4(addr) = addr else {
            return Err(WarrenError::internal(format!(
                "sandbox {} has a non-IPv4 address {addr}",
                rec.id
            )));
        };
        if let Some(fw) = &self.firewall {
            fw.apply_sandbox(rec.net_slot, addr, &rec.network)
                .await
                .map_err(|e| {
                    WarrenError::internal(format!(
                        "enforcing the network policy of sandbox {}: {e}",
                        rec.id
                    ))
                })?;
        }
        self.registry.set(SandboxNet {
            id: rec.id.to_string(),
            team: rec.team.to_string(),
            slot: rec.net_slot,
            addr,
            policy: Arc::new(rec.network.clone()),
        });
        Ok(())
    }

    /// [`Self::apply`] for an instance whose network was kept (a thaw, a
    /// restore into the same slot), chain and resolved addresses included:
    /// only a policy that changed meanwhile (or one this daemon never
    /// applied) is applied again.
    pub async fn reapply(&self, rec: &SandboxRecord, addr: IpAddr) -> Result<(), WarrenError> {
        let unchanged = self.registry.by_id(rec.id.as_str()).is_some_and(|n| {
            n.slot == rec.net_slot && IpAddr::V4(n.addr) == addr && *n.policy == rec.network
        });
        if unchanged {
            return Ok(());
        }
        self.apply(rec, addr).await
    }

    /// [`Self::apply`] for a pooled sandbox just claimed: when the rules in
    /// force are already `rec`'s policy (same slot, address and policy),
    /// only the registry learns its new team; otherwise the policy is
    /// applied.
    pub async fn rebind(&self, rec: &SandboxRecord, addr: IpAddr) -> Result<(), WarrenError> {
        let enforced = self.registry.by_id(rec.id.as_str()).filter(|n| {
            n.slot == rec.net_slot && IpAddr::V4(n.addr) == addr && *n.policy == rec.network
        });
        match enforced {
            Some(n) => {
                self.registry.set(SandboxNet {
                    team: rec.team.to_string(),
                    ..n
                });
                Ok(())
            }
            None => self.apply(rec, addr).await,
        }
    }

    /// Every sandbox's traffic counters, by network slot (see
    /// `warren_net::meter`); none without a firewall, or when they cannot
    /// be read (logged).
    pub async fn traffic(&self) -> HashMap<u32, warren_net::Traffic> {
        let Some(fw) = &self.firewall else {
            return HashMap::new();
        };
        fw.traffic().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the sandboxes' traffic counters");
            HashMap::new()
        })
    }

    /// The address the sandbox's instance sends from, while one is known.
    pub fn address_of(&self, id: &SandboxId) -> Option<IpAddr> {
        self.registry.by_id(id.as_str()).map(|n| IpAddr::V4(n.addr))
    }

    /// Forgets a torn-down sandbox and removes its chain and sets.
    pub async fn forget(&self, id: &SandboxId) {
        let Some(net) = self.registry.by_id(id.as_str()) else {
            return;
        };
        self.registry.remove(id.as_str());
        if let Some(fw) = &self.firewall {
            remove_chain(fw, id, net.slot, net.addr).await;
        }
    }
}

/// Removes sandbox `id`'s chain and sets at `slot`/`addr`; a failure is
/// logged (the chain is replaced when the slot's next sandbox comes up,
/// and with the table at the daemon's next start).
async fn remove_chain(fw: &Firewall, id: &SandboxId, slot: u32, addr: std::net::Ipv4Addr) {
    if let Err(e) = fw.remove_sandbox(slot, addr).await {
        tracing::warn!(sandbox = %id, error = %e, "could not remove the sandbox's firewall chain");
    }
}

impl Sandboxes {
    /// Replaces the sandbox's network policy; a running sandbox gets it at
    /// once, a paused one at resume. Recorded as `network.update`.
    pub async fn set_network(
        &self,
        id: &SandboxId,
        policy: NetworkPolicy,
        actor: &AuditActor,
    ) -> Result<SandboxRecord, WarrenError> {
        policy.validate()?;
        let _guard = self.locks.lock(id).await;
        let rec = self.get(id).await?;
        if rec.state.is_terminal() {
            return Err(WarrenError::precondition(format!(
                "sandbox {id} is {}; its network policy cannot change",
                rec.state
            )));
        }
        let rec = self.store.set_network(id, &policy).await?;
        if rec.state == SandboxState::Running
            && let Some(addr) = self.network.address_of(id)
        {
            self.network.apply(&rec, addr).await?;
        }
        let policy_json = serde_json::to_value(&rec.network).unwrap_or(Value::Null);
        self.record_lifecycle(
            actor,
            id,
            Action::NetworkUpdate,
            Outcome::Ok,
            details([("network", policy_json)]),
        )
        .await;
        Ok(rec)
    }

    /// Stores network events from `rx` (and audits denials) until every
    /// sender is gone.
    pub async fn run_network_events(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<NetEvent>,
        registry: Registry,
    ) {
        let mut last_audit: HashMap<(String, String), Instant> = HashMap::new();
        let mut batch = Vec::with_capacity(EVENT_BATCH);
        while rx.recv_many(&mut batch, EVENT_BATCH).await > 0 {
            let mut rows = Vec::with_capacity(batch.len());
            for event in batch.drain(..) {
                self.signals.net_event(&event);
                let Some(sandbox) = registry.get(event.source) else {
                    continue;
                };
                let Ok(id) = sandbox.id.parse::<SandboxId>() else {
                    continue;
                };
                self.meter_net_event(&id, &event);
                if let Verdict::Deny(_) = event.verdict {
                    let target = event
                        .name
                        .clone()
                        .or_else(|| event.dest.map(|d| d.to_string()))
                        .unwrap_or_default();
                    let key = (sandbox.id.clone(), target);
                    let now = Instant::now();
                    let due = last_audit
                        .get(&key)
                        .is_none_or(|t| now.duration_since(*t) >= DENY_AUDIT_EVERY);
                    if due {
                        last_audit.insert(key, now);
                        self.audit_denial(&id, &event).await;
                    }
                }
                rows.push(to_row(id, &event));
            }
            if last_audit.len() > 10_000 {
                last_audit.retain(|_, t| t.elapsed() < DENY_AUDIT_EVERY);
            }
            if let Err(e) = self.store.append_network_events(&rows).await {
                tracing::warn!(error = %e, count = rows.len(), "could not store network events");
            }
        }
    }

    /// Notes what the firewall's counters do not see: bytes relayed by the
    /// resolver and the proxy (forwarded packets are counted by the
    /// firewall), and refusals.
    fn meter_net_event(&self, id: &SandboxId, e: &NetEvent) {
        let activity = self.meter.activity();
        match e.verdict {
            Verdict::Deny(_) => activity.denied(id),
            Verdict::Allow if e.kind != NetEventKind::Packet => activity.proxied(id, e.bytes_out),
            Verdict::Allow => {}
        }
    }

    async fn audit_denial(&self, id: &SandboxId, e: &NetEvent) {
        let actor = AuditActor::system("egress");
        let mut event = Event::sandbox(Action::NetworkDeny, id, Outcome::Denied);
        event.details = details([
            ("kind", e.kind.as_str().into()),
            ("name", e.name.clone().into()),
            ("dest", e.dest.map(|d| d.to_string()).into()),
            ("port", e.port.into()),
            ("reason", reason(e.verdict).into()),
        ]);
        let actor = match self.store.get_sandbox(id).await {
            Ok(Some(rec)) => actor.in_team(&rec.team),
            _ => return,
        };
        self.audit.record_done(&actor, event).await;
    }
}

fn reason(v: Verdict) -> Option<&'static str> {
    match v {
        Verdict::Allow => None,
        Verdict::Deny(r) => Some(r.as_str()),
    }
}

fn to_row(id: SandboxId, e: &NetEvent) -> NewNetEvent {
    NewNetEvent {
        sandbox_id: id,
        at: OffsetDateTime::now_utc(),
        kind: e.kind.as_str().to_owned(),
        dest: e.dest,
        port: e.port,
        name: e.name.clone(),
        verdict: e.verdict.as_str().to_owned(),
        reason: reason(e.verdict).map(str::to_owned),
        bytes_out: e.bytes_out,
        bytes_in: e.bytes_in,
    }
}
