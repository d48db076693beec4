//! Sandbox networking on the host: an IPv4 pool cut into one /30 per
//! sandbox, a network namespace and veth pair per sandbox, the helper that
//! starts runsc inside that namespace, and one nftables table per runtime.
//!
//! Host-global names (namespaces, interfaces, the nftables table) are derived
//! from sandbox ids and the runtime's state directory, so several daemons on
//! one host never collide. All commands are batched: creating a sandbox's
//! network costs one `ip` process, (re)addressing it before a start another.

mod cmd;
pub mod egress;
mod enter;
mod error;
mod firewall;
pub mod intercept;
pub mod link;
mod names;
mod pool;

pub use enter::NetnsEntry;
pub use error::NetError;
pub use firewall::{Firewall, enable_ipv4_forwarding};
pub use names::{INNER_IFACE, NETNS_DIR, SandboxNames, VETH_PREFIX};
pub use pool::{AddressPool, SLOT_PREFIX, SlotAddrs, host_end};
