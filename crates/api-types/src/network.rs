//! Network policies and network events on the wire.
//!
//! The policy type itself is warren-core's [`NetworkPolicy`] (its serde
//! form is the wire form); [`NetworkPolicySchema`] only describes it for
//! the OpenAPI document.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use warren_core::network::NetworkPolicy;

/// A sandbox's network policy. Deny wins over allow; private ranges are
/// reached only when an `allow` CIDR names them; link-local (cloud
/// metadata), other sandboxes and the host's services are never reachable.
/// Every field may be left out (its default applies); no other field is
/// taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
pub struct NetworkPolicySchema {
    /// `deny` (default): only what `allow` names; `allow`: every public
    /// destination `deny` does not name.
    pub internet: InternetSchema,
    /// CIDRs (`203.0.113.0/24`, a bare address is a /32) and domain
    /// patterns (`github.com`, `*.pypi.org`).
    pub allow: Vec<String>,
    /// Same forms as `allow`; wins over it.
    pub deny: Vec<String>,
    /// Secrets the egress proxy adds to requests to named hosts:
    /// `{secret, host, header, format, env}`.
    pub inject: Vec<serde_json::Value>,
    /// Exposed ports reachable without an access token.
    pub public_ports: Vec<u16>,
    /// Every exposed port reachable without an access token (what E2B's
    /// `allowPublicTraffic` asks for).
    pub all_ports_public: bool,
    /// The `Host` requests to its exposed ports carry instead of the
    /// client's, `${PORT}` standing for the port (e.g.
    /// `localhost:${PORT}`, for dev servers that accept only the names
    /// they know). `null` is the same as leaving it out.
    pub request_host: Option<String>,
}

/// `internet` of a [`NetworkPolicySchema`].
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum InternetSchema {
    #[default]
    Deny,
    Allow,
}

/// `PUT /v1/sandboxes/{id}/network` answers with the sandbox; the body is
/// the new policy (replaces the old one whole).
pub type UpdateNetworkRequest = NetworkPolicy;

/// One network decision about a sandbox's traffic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct NetworkEvent {
    /// Orders events; pass the last one as `before` for the next page.
    pub seq: i64,
    /// RFC 3339.
    pub at: String,
    /// `dns` (a query to the sandbox's resolver), `http` (judged by Host),
    /// `tls` (judged by SNI), `connect` (judged by address) or `packet` (a
    /// new UDP, ICMP or other non-TCP flow judged by the firewall).
    pub kind: String,
    pub dest: Option<String>,
    pub port: Option<u16>,
    /// The DNS name, Host or SNI.
    pub name: Option<String>,
    /// `allow` or `deny`.
    pub verdict: String,
    /// For denials: `denied_by_rule`, `not_allowed`, `private_range`,
    /// `always_blocked`, `malformed`, `name_mismatch`, `no_server_name` or
    /// `rate_limited`.
    pub reason: Option<String>,
    /// Bytes from the sandbox, and to it.
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// `GET /v1/sandboxes/{id}/network/events`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct NetworkEventList {
    pub events: Vec<NetworkEvent>,
    /// Pass as `before` to get older events; absent on the last page.
    pub next_before: Option<i64>,
}
