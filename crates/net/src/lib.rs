//! Sandbox networking on the host: an IPv4 pool cut into one /30 per
//! sandbox, a network namespace and veth pair per sandbox with its source
//! address guard, the helper that starts runsc inside that namespace, one
//! nftables table per runtime with a chain and sets per sandbox (and the
//! batched writer of resolved addresses into those sets), and the reset of
//! a sandbox's host connections before a checkpoint. The egress services
//! that enforce a policy beyond the firewall (resolver, proxy, packet log)
//! live in warren-egress, on top of this crate.
//!
//! The daemon owns the pool and the firewall table and gives each sandbox a
//! [`NetworkAttachment`] (address, gateway, host interface) that the runtime
//! connects it to (`attachment`). Host-global names (namespaces, interfaces,
//! the nftables table) are derived from sandbox ids and the daemon's state
//! directory, so several daemons on one host never collide. All commands are batched: creating a sandbox's
//! network costs one `ip` process, (re)addressing it before a start another.

mod attachment;
mod cmd;
mod enter;
mod error;
mod firewall;
pub mod link;
pub mod log_prefix;
mod meter;
mod names;
pub mod netlink;
mod pool;
mod resolved_batch;
mod sandbox_rules;
mod sever;
mod source_guard;

pub use attachment::{HOST_IFACE_PREFIX, NetworkAttachment, host_iface_name};
pub use enter::NetnsEntry;
pub use error::NetError;
pub use firewall::{EgressPorts, Firewall, enable_ipv4_forwarding};
pub use meter::Traffic;
pub use names::{INNER_IFACE, NETNS_DIR, SandboxNames};
pub use pool::{AddressPool, SLOT_PREFIX, SlotAddrs, host_end};
pub use resolved_batch::ResolvedBatcher;
pub use sandbox_rules::{MAX_RESOLVED_TTL, MIN_RESOLVED_TTL};
pub use sever::{QUIESCE, sever_host_connections};
pub use source_guard::table_name as source_guard_table;
