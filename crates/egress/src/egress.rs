//! What the egress enforcement (DNS resolver, egress proxy) and the daemon
//! exchange: the events every network decision produces, and the TLS
//! interception hook the proxy hands a connection to when the sandbox's
//! policy injects a secret into requests to its host.
//!
//! Invariants: an event never carries a secret value or payload bytes,
//! only names, addresses, verdicts and byte counts; the proxy hands a
//! connection to the [`Interceptor`] with nothing consumed from it (the
//! ClientHello is only peeked), so the interceptor sees the whole TLS
//! stream.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use tokio::net::TcpStream;
use warren_core::network::Verdict;

use crate::error::EgressError;

/// What kind of decision an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetEventKind {
    /// A DNS query to the sandbox's resolver.
    Dns,
    /// A TCP connection judged by address only (no name seen).
    Connect,
    /// A plain HTTP connection judged by its Host header.
    Http,
    /// A TLS connection judged by its SNI.
    Tls,
    /// A UDP or other packet flow judged by the firewall's sets.
    Packet,
}

impl NetEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Http => "http",
            Self::Tls => "tls",
            Self::Packet => "packet",
        }
    }
}

/// One network decision about one sandbox's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEvent {
    pub kind: NetEventKind,
    /// The sandbox's own address (identifies the sandbox to the daemon).
    pub source: IpAddr,
    /// Destination address, when one was known.
    pub dest: Option<IpAddr>,
    pub port: Option<u16>,
    /// The DNS name, Host or SNI, when one was seen.
    pub name: Option<String>,
    pub verdict: Verdict,
    /// Bytes from the sandbox to the destination, and back.
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// Bytes carried by one relayed or intercepted connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// For an intercepted or plain-HTTP connection: the host the first
    /// request that did not name the connection's server named (`""` for
    /// none); that request was refused and the connection closed.
    pub misdirected: Option<String>,
}

/// A header the interceptor sets on every request to the host; the value
/// is a secret and must not be logged, kept or echoed anywhere.
pub struct InjectedHeader {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for InjectedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectedHeader")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// The future an interception runs as.
pub type InterceptFuture = Pin<Box<dyn Future<Output = Result<Transfer, EgressError>> + Send>>;

/// Terminates a sandbox's TLS connection to `host` with a certificate the
/// sandbox trusts (the installation's Warren CA), forwards each HTTP request
/// over a fresh TLS connection to `upstream` (verifying the real server's
/// certificate for `host`) with `headers` set, and relays the responses.
pub trait Interceptor: Send + Sync {
    fn intercept(
        &self,
        client: TcpStream,
        host: String,
        upstream: SocketAddr,
        headers: Vec<InjectedHeader>,
    ) -> InterceptFuture;
}
