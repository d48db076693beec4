//! Sandbox networking on the host: an IPv4 pool cut into one /30 per
//! sandbox, a network namespace and veth pair per sandbox, the helper that
//! starts runsc inside that namespace, one nftables table per runtime with a
//! chain and sets per sandbox, and the egress enforcement the daemon runs:
//! the per-sandbox DNS resolver (`dns`) and the transparent egress proxy
//! (`proxy`), which find sandboxes by address in the `registry`, and the
//! reader of the firewall's packet log (`nflog`, UDP and other non-TCP
//! flows), which all report every decision as a `NetEvent` through an
//! `EventSink`.
//!
//! Host-global names (namespaces, interfaces, the nftables table) are derived
//! from sandbox ids and the runtime's state directory, so several daemons on
//! one host never collide. All commands are batched: creating a sandbox's
//! network costs one `ip` process, (re)addressing it before a start another.

mod cmd;
pub mod dns;
pub mod egress;
mod enter;
mod error;
mod firewall;
pub mod intercept;
pub mod link;
mod names;
mod netlink;
mod nflog;
mod pool;
pub mod proxy;
pub mod registry;
mod resolved_batch;
mod sandbox_rules;
mod sever;
mod sink;
mod sniff;
mod source_guard;
mod splice;

pub use enter::NetnsEntry;
pub use error::NetError;
pub use firewall::{EgressPorts, Firewall, enable_ipv4_forwarding};
pub use names::{INNER_IFACE, NETNS_DIR, SandboxNames, VETH_PREFIX};
pub use nflog::PacketLog;
pub use pool::{AddressPool, SLOT_PREFIX, SlotAddrs, host_end};
pub use sandbox_rules::{MAX_RESOLVED_TTL, MIN_RESOLVED_TTL};
pub use sever::{QUIESCE, sever_host_connections};
pub use sink::EventSink;
pub use sniff::{Sniff, sniff};
pub use source_guard::table_name as source_guard_table;
