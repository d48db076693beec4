//! Host-global names of one sandbox's network objects as the namespace
//! backend makes them: a named network namespace per sandbox, derived from
//! its id, and the host end of its veth pair, named by the sandbox's
//! [`crate::NetworkAttachment`]. The sandbox end is created directly inside
//! the namespace as `eth0`, so it never needs a host-side name.

use std::path::PathBuf;

use warren_core::SandboxId;

/// Name of the interface inside the sandbox.
pub const INNER_IFACE: &str = "eth0";
/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Names of one sandbox's network namespace and host veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNames {
    /// Network namespace name (`/run/netns/<netns>`).
    pub netns: String,
    /// Host end of the veth pair.
    pub host_veth: String,
}

impl SandboxNames {
    /// The namespace of `id` and the host interface `host_iface` its
    /// attachment names.
    pub fn new(id: &SandboxId, host_iface: &str) -> Self {
        Self {
            netns: format!("warren-{id}"),
            host_veth: host_iface.to_owned(),
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
