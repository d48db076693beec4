//! Host-global names of one sandbox's network objects.
//!
//! Sandbox ids are 20 random characters of `[a-z0-9]`, unique across every
//! daemon on a host, so names derived from them do not collide either. Linux
//! limits interface names to 15 bytes: the host veth end is `wv` followed by
//! the first 13 characters of the id (36^12·26 possibilities). The sandbox end
//! is created directly inside the namespace as `eth0`, so it never needs a
//! host-side name.

use std::path::PathBuf;

use warren_core::SandboxId;

/// Prefix of every host-side sandbox veth; the firewall matches on it.
pub const VETH_PREFIX: &str = "wv";
/// Name of the interface inside the sandbox.
pub const INNER_IFACE: &str = "eth0";
/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

const IFNAMSIZ_MAX: usize = 15;

/// Names of one sandbox's network namespace and host veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNames {
    /// Network namespace name (`/run/netns/<netns>`).
    pub netns: String,
    /// Host end of the veth pair.
    pub host_veth: String,
}

impl SandboxNames {
    pub fn new(id: &SandboxId) -> Self {
        let keep = IFNAMSIZ_MAX - VETH_PREFIX.len();
        let short: String = id.as_str().chars().take(keep).collect();
        Self {
            netns: format!("warren-{id}"),
            host_veth: format!("{VETH_PREFIX}{short}"),
        }
    }

    /// Path of the namespace's bind mount.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.netns)
    }

    /// Whether the namespace exists.
    pub fn netns_exists(&self) -> bool {
        self.netns_path().exists()
    }

    /// Whether the host veth exists.
    pub fn host_veth_exists(&self) -> bool {
        PathBuf::from("/sys/class/net")
            .join(&self.host_veth)
            .exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        for _ in 0..100 {
            let id = SandboxId::generate();
            let n = SandboxNames::new(&id);
            assert!(n.host_veth.len() <= IFNAMSIZ_MAX, "{}", n.host_veth);
            assert!(n.host_veth.starts_with(VETH_PREFIX));
            assert!(n.netns.contains(id.as_str()));
        }
    }
}
