//! The daemon's view of which sandbox sends from which address, under which
//! policy, and which addresses its resolver returned for which names.
//!
//! The resolver and the egress proxy identify a sandbox by the source
//! address of its packets (each host veth drops packets with any other
//! source, see `source_guard`, so it cannot be forged). The daemon keeps the registry current: an
//! entry is set when an instance comes up (create, resume, fork, rollback,
//! reconcile) or its policy changes, and removed when the sandbox is torn
//! down. An address with no entry gets nothing: the resolver drops its
//! queries and the proxy closes its connections.
//!
//! Resolved addresses are remembered per sandbox with an expiry (the
//! record's TTL, clamped like the firewall's sets), at most
//! [`MAX_REMEMBERED`] per sandbox; the oldest go first.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use warren_core::network::{NetworkPolicy, normalize_name};
use warren_net::{MAX_RESOLVED_TTL, MIN_RESOLVED_TTL};

/// Most (name, address) pairs one sandbox's memory holds.
pub const MAX_REMEMBERED: usize = 4096;

/// What the registry knows of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNet {
    /// The sandbox's id and team, as the daemon names them.
    pub id: String,
    pub team: String,
    /// Its network slot (names its nftables chain and sets).
    pub slot: u32,
    /// Its address (the source of its packets).
    pub addr: Ipv4Addr,
    pub policy: Arc<NetworkPolicy>,
}

#[derive(Debug, Default)]
struct Memory {
    /// (name, address) → when it expires, and the generation of the
    /// firewall set it was added to.
    pairs: HashMap<(String, IpAddr), (Instant, u64)>,
    /// Bumped whenever the sandbox's rules are applied again (which
    /// empties its set of resolved addresses).
    generation: u64,
}

impl Memory {
    fn remember(&mut self, name: &str, addrs: &[IpAddr], ttl: Duration, now: Instant) {
        let until = now + ttl.clamp(MIN_RESOLVED_TTL, MAX_RESOLVED_TTL);
        if self.pairs.len() + addrs.len() > MAX_REMEMBERED {
            self.pairs.retain(|_, (exp, _)| *exp > now);
        }
        while self.pairs.len() + addrs.len() > MAX_REMEMBERED {
            let Some(oldest) = self
                .pairs
                .iter()
                .min_by_key(|(_, (exp, _))| *exp)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.pairs.remove(&oldest);
        }
        for a in addrs {
            self.pairs
                .insert((name.to_owned(), *a), (until, self.generation));
        }
    }

    /// Whether every address is remembered for `name` for at least half
    /// of `ttl` more.
    fn fresh(&self, name: &str, addrs: &[IpAddr], ttl: Duration, now: Instant) -> bool {
        let half = ttl.clamp(MIN_RESOLVED_TTL, MAX_RESOLVED_TTL) / 2;
        addrs.iter().all(|a| {
            self.pairs
                .get(&(name.to_owned(), *a))
                .is_some_and(|(exp, g)| *g == self.generation && *exp > now + half)
        })
    }

    fn names_for(&self, addr: IpAddr, now: Instant) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|((_, a), (exp, _))| *a == addr && *exp > now)
            .map(|((n, _), _)| n.clone())
            .collect()
    }
}

struct Entry {
    net: SandboxNet,
    memory: Mutex<Memory>,
}

/// Sandboxes by address. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<Ipv4Addr, Arc<Entry>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sandboxes", &self.read().len())
            .finish()
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Ipv4Addr, Arc<Entry>>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Ipv4Addr, Arc<Entry>>> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the sandbox at `net.addr`. The memory of resolved names is
    /// kept when the same sandbox only changes its policy (every use of it
    /// is judged again by the current policy).
    pub fn set(&self, net: SandboxNet) {
        let mut map = self.write();
        let memory = match map.get(&net.addr) {
            Some(old) if old.net.id == net.id => {
                let mut m =
                    std::mem::take(&mut *old.memory.lock().unwrap_or_else(|e| e.into_inner()));
                m.generation += 1;
                m
            }
            _ => Memory::default(),
        };
        // Another address of the same sandbox (a restore onto a new slot)
        // is stale now.
        map.retain(|_, e| e.net.id != net.id);
        map.insert(
            net.addr,
            Arc::new(Entry {
                net,
                memory: Mutex::new(memory),
            }),
        );
    }

    /// Forgets the sandbox `id`; returns what was known of it.
    pub fn remove(&self, id: &str) -> Option<SandboxNet> {
        let mut map = self.write();
        let addr = map.values().find(|e| e.net.id == id)?.net.addr;
        map.remove(&addr).map(|e| e.net.clone())
    }

    /// The sandbox sending from `addr`.
    pub fn get(&self, addr: IpAddr) -> Option<SandboxNet> {
        let IpAddr::V4(a) = addr else { return None };
        self.read().get(&a).map(|e| e.net.clone())
    }

    /// The sandbox `id`.
    pub fn by_id(&self, id: &str) -> Option<SandboxNet> {
        self.read()
            .values()
            .find(|e| e.net.id == id)
            .map(|e| e.net.clone())
    }

    /// Remembers that the resolver returned `addrs` for `name` to the
    /// sandbox at `source`.
    pub fn remember(&self, source: Ipv4Addr, name: &str, addrs: &[IpAddr], ttl: Duration) {
        if let Some(e) = self.read().get(&source) {
            e.memory.lock().unwrap_or_else(|e| e.into_inner()).remember(
                &normalize_name(name),
                addrs,
                ttl,
                Instant::now(),
            );
        }
    }

    /// Whether the sandbox at `source` was given all of `addrs` for `name`
    /// recently enough that the firewall's set still holds them for at
    /// least half of `ttl` (the resolver then skips updating the set).
    pub fn is_fresh(&self, source: Ipv4Addr, name: &str, addrs: &[IpAddr], ttl: Duration) -> bool {
        match self.read().get(&source) {
            Some(e) => e.memory.lock().unwrap_or_else(|e| e.into_inner()).fresh(
                &normalize_name(name),
                addrs,
                ttl,
                Instant::now(),
            ),
            None => false,
        }
    }

    /// The names the resolver returned `addr` for to the sandbox at
    /// `source`, while those answers are fresh.
    pub fn names_for(&self, source: Ipv4Addr, addr: IpAddr) -> Vec<String> {
        match self.read().get(&source) {
            Some(e) => e
                .memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .names_for(addr, Instant::now()),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, last: u8) -> SandboxNet {
        SandboxNet {
            id: id.into(),
            team: "t".into(),
            slot: u32::from(last) / 4,
            addr: Ipv4Addr::new(10, 0, 0, last),
            policy: Arc::new(NetworkPolicy::default()),
        }
    }

    #[test]
    fn sandboxes_are_found_by_address_and_memory_follows_policy_updates() {
        let r = Registry::default();
        r.set(net("a", 2));
        r.set(net("b", 6));
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let dst: IpAddr = "198.18.0.5".parse().unwrap();
        r.remember(src, "Example.com.", &[dst], Duration::from_secs(5));
        assert_eq!(r.names_for(src, dst), vec!["example.com".to_owned()]);
        assert!(r.is_fresh(src, "example.com", &[dst], Duration::from_secs(5)));
        assert!(!r.is_fresh(src, "example.com", &[dst], Duration::from_secs(600)));
        assert!(!r.is_fresh(src, "other.com", &[dst], Duration::from_secs(5)));
        assert!(r.names_for(Ipv4Addr::new(10, 0, 0, 6), dst).is_empty());
        // A policy update of the same sandbox keeps what it resolved (but
        // the firewall's set is new) …
        r.set(net("a", 2));
        assert_eq!(r.names_for(src, dst).len(), 1);
        assert!(!r.is_fresh(src, "example.com", &[dst], Duration::from_secs(5)));
        // … another sandbox on the same address starts empty.
        r.set(net("c", 2));
        assert!(r.names_for(src, dst).is_empty());
        assert_eq!(r.get(IpAddr::V4(src)).unwrap().id, "c");
        assert_eq!(r.remove("c").unwrap().addr, src);
        assert!(r.get(IpAddr::V4(src)).is_none());
        assert_eq!(r.by_id("b").unwrap().slot, 1);
    }

    #[test]
    fn memory_is_bounded_and_expires() {
        let mut m = Memory::default();
        let now = Instant::now();
        let addrs: Vec<IpAddr> = (0..MAX_REMEMBERED as u32 + 10)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0xC612_0000 + i)))
            .collect();
        for a in &addrs {
            m.remember("x.example", &[*a], Duration::from_secs(60), now);
        }
        assert_eq!(m.pairs.len(), MAX_REMEMBERED);
        let later = now + MAX_RESOLVED_TTL + Duration::from_secs(1);
        assert!(m.names_for(addrs[addrs.len() - 1], later).is_empty());
        assert_eq!(m.names_for(addrs[addrs.len() - 1], now).len(), 1);
    }
}
