//! The egress enforcement the daemon runs on top of the firewall
//! (warren-net): the per-sandbox DNS resolver (`dns`) and the transparent
//! egress proxy (`proxy`, which sniffs a connection's name with `sniff`,
//! relays it with `splice`, or hands it to the TLS interceptor,
//! `intercept`, for secret injection), which find sandboxes by address in
//! the `registry`, and the reader of the firewall's packet log (`nflog`,
//! UDP and other non-TCP flows); all report every decision as a `NetEvent`
//! (`egress`) through an `EventSink`.

pub mod dns;
pub mod egress;
mod error;
#[cfg(test)]
mod fuzz;
mod http_guard;
pub mod intercept;
mod nflog;
pub mod proxy;
pub mod registry;
mod sink;
mod sniff;
mod splice;

pub use error::EgressError;
pub use nflog::PacketLog;
pub use sink::EventSink;
pub use sniff::{Sniff, sniff};
