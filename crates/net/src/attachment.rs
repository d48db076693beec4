//! A sandbox's network attachment: the place on the host network that the
//! daemon's network layer gives one sandbox, and that a runtime backend
//! connects the sandbox to.
//!
//! The daemon owns the address pool and the firewall table (see
//! `docs/network.md`); it turns a sandbox's network slot into a
//! [`NetworkAttachment`] and hands it to the runtime in the sandbox's spec.
//! The backend builds its own plumbing from it (gVisor: a namespace and a
//! veth pair whose host end is [`NetworkAttachment::host_iface`]) and must
//! keep the attachment's promise: every packet from the sandbox arrives on
//! `host_iface` with `address` as its source, and the sandbox cannot send
//! with another one. The firewall relies on exactly that: it matches
//! sandbox traffic by the interface prefix [`HOST_IFACE_PREFIX`] and the
//! pool's addresses, never by a backend's own naming; and the daemon takes
//! `address` as proof of which sandbox a request on its sandbox listener
//! comes from.

use std::net::Ipv4Addr;

use warren_core::SandboxId;

use crate::error::NetError;
use crate::pool::{AddressPool, SLOT_PREFIX};

/// Prefix of every host-side sandbox interface; the firewall matches on it.
pub const HOST_IFACE_PREFIX: &str = "wv";

/// Linux's limit on interface names.
const IFNAMSIZ_MAX: usize = 15;

/// One sandbox's place on the host network. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// The sandbox's address, the source of every packet it sends.
    pub address: Ipv4Addr,
    /// The host's end of the link: the sandbox's default gateway, where it
    /// reaches the daemon's sandbox API.
    pub gateway: Ipv4Addr,
    /// Prefix length of the link's network (both addresses are in it).
    pub prefix_len: u8,
    /// Name of the host-side interface the sandbox's packets arrive on.
    pub host_iface: String,
}

impl NetworkAttachment {
    /// The attachment of sandbox `id` in network slot `slot` of `pool`.
    pub fn new(pool: &AddressPool, id: &SandboxId, slot: u32) -> Result<Self, NetError> {
        let addrs = pool.slot(slot)?;
        Ok(Self {
            address: addrs.sandbox,
            gateway: addrs.host,
            prefix_len: SLOT_PREFIX,
            host_iface: host_iface_name(id),
        })
    }
}

/// The host interface name of sandbox `id`: [`HOST_IFACE_PREFIX`] and the
/// first characters of the id, within the kernel's 15 bytes. Ids are 20
/// random characters, unique across every daemon on a host, so these
/// names do not collide between daemons either.
pub fn host_iface_name(id: &SandboxId) -> String {
    let keep = IFNAMSIZ_MAX - HOST_IFACE_PREFIX.len();
    let short: String = id.as_str().chars().take(keep).collect();
    format!("{HOST_IFACE_PREFIX}{short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_follow_the_pool_and_names_fit_the_kernel_limit() {
        let pool: AddressPool = "10.77.0.0/16".parse().unwrap();
        for slot in [0, 65] {
            let id = SandboxId::generate();
            let a = NetworkAttachment::new(&pool, &id, slot).unwrap();
            let addrs = pool.slot(slot).unwrap();
            assert_eq!((a.address, a.gateway), (addrs.sandbox, addrs.host));
            assert!(a.host_iface.len() <= IFNAMSIZ_MAX, "{}", a.host_iface);
            assert!(a.host_iface.starts_with(HOST_IFACE_PREFIX));
        }
        let id = SandboxId::generate();
        assert!(NetworkAttachment::new(&pool, &id, pool.capacity()).is_err());
    }
}
