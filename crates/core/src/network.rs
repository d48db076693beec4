//! A sandbox's network policy and the decisions it makes. Pure rules: the
//! enforcement (nftables sets in `warren-net`; the DNS resolver and the
//! egress proxy in `warren-egress`) asks these functions.
//!
//! Wire form (JSON), every field optional:
//!
//! ```json
//! { "internet": "deny",
//!   "allow": ["github.com", "*.pypi.org", "203.0.113.0/24"],
//!   "deny":  ["evil.github.com", "203.0.113.7"],
//!   "inject": [{"secret": "gh", "host": "api.github.com",
//!               "header": "Authorization", "format": "Bearer {value}",
//!               "env": "GITHUB_TOKEN"}],
//!   "public_ports": [8080],
//!   "all_ports_public": false,
//!   "request_host": "localhost:${PORT}" }
//! ```
//!
//! A port is public (its exposed URL needs no access token) when
//! `public_ports` lists it or `all_ports_public` is set (E2B's
//! `allowPublicTraffic`, E2B's default).
//!
//! `request_host` is about traffic in, not out: requests reaching the
//! sandbox's exposed ports carry it as their `Host` (`${PORT}` replaced by
//! the port), for servers that accept only the names they know.
//!
//! Invariants of the decisions:
//! - deny wins over allow, for names and for addresses;
//! - [`always_blocked`] addresses (link-local and cloud metadata, loopback,
//!   multicast, unspecified, broadcast, and their IPv6 equivalents) are
//!   refused whatever the policy says; the daemon adds its own sandbox pool;
//! - private ranges ([`is_private`]) are reached only when an `allow` CIDR
//!   names them: neither `internet: allow` nor an allowed name that
//!   resolves into one opens them (no DNS rebinding into the host's LAN);
//! - a name pattern `example.com` matches that name only; `*.example.com`
//!   matches every name below it at any depth, not `example.com` itself.
//!   Names compare case-insensitively, without a trailing dot.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::WarrenError;

/// Most rules one list may hold.
pub const MAX_RULES: usize = 256;
/// Most secret injections one policy may hold.
pub const MAX_INJECTIONS: usize = 32;

/// Whether destinations no rule names are reachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Internet {
    /// Only what `allow` names (the default).
    #[default]
    Deny,
    /// Every public destination that `deny` does not name.
    Allow,
}

/// One sandbox's network policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    #[serde(default)]
    pub internet: Internet,
    #[serde(default)]
    pub allow: Vec<NetRule>,
    #[serde(default)]
    pub deny: Vec<NetRule>,
    /// Credentials the egress proxy adds to requests to named hosts.
    #[serde(default)]
    pub inject: Vec<SecretInjection>,
    /// Ports whose exposed URL needs no access token.
    #[serde(default)]
    pub public_ports: Vec<u16>,
    /// Every port's exposed URL needs no access token.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_ports_public: bool,
    /// The `Host` requests to its exposed ports carry instead of the
    /// client's; `${PORT}` stands for the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_host: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The placeholder of the port in [`NetworkPolicy::request_host`].
pub const PORT_PLACEHOLDER: &str = "${PORT}";

/// Longest [`NetworkPolicy::request_host`].
const MAX_REQUEST_HOST: usize = 255;

/// What a policy decided, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny(DenyReason),
}

/// Why a destination was refused (the `reason` of a network event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// A `deny` rule names it.
    DeniedByRule,
    /// No `allow` rule names it and `internet` is `deny`.
    NotAllowed,
    /// A private range no `allow` CIDR names.
    Private,
    /// Refused whatever the policy says.
    AlwaysBlocked,
    /// Not one well-formed request: a DNS message other than a standard
    /// query with one question, an HTTP request head with more than one
    /// Host header, folded or stray line breaks, or a TLS ClientHello
    /// naming more than one server.
    Malformed,
    /// The names of one connection disagree: an HTTP request target's host
    /// and its Host header, or an intercepted TLS connection's server name
    /// and a request's Host.
    NameMismatch,
    /// A TLS ClientHello without a server name, to a destination only a
    /// name could open.
    NoServerName,
    /// Over the sandbox's DNS query rate.
    RateLimited,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeniedByRule => "denied_by_rule",
            Self::NotAllowed => "not_allowed",
            Self::Private => "private_range",
            Self::AlwaysBlocked => "always_blocked",
            Self::Malformed => "malformed",
            Self::NameMismatch => "name_mismatch",
            Self::NoServerName => "no_server_name",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }
    /// `allow` or `deny`, as events show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny(_) => "deny",
        }
    }
}

/// A request host is a host name or address, optionally with a port, in
/// which `${PORT}` may stand for the exposed port.
fn check_request_host(template: &str) -> Result<(), WarrenError> {
    let expanded = template.replace(PORT_PLACEHOLDER, "8080");
    let (host, port) = match expanded.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (expanded.as_str(), None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if template.len() > MAX_REQUEST_HOST || !host_ok || !port_ok {
        return Err(WarrenError::invalid(format!(
            "network.request_host must be a host name or address with an optional port, where ${{PORT}} stands for the port (e.g. localhost:${{PORT}}), at most {MAX_REQUEST_HOST} characters; not {:?}",
            template.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

impl NetworkPolicy {
    /// Checks limits and the consistency of injections; run at the edge.
    pub fn validate(&self) -> Result<(), WarrenError> {
        for (list, rules) in [("allow", &self.allow), ("deny", &self.deny)] {
            if rules.len() > MAX_RULES {
                return Err(WarrenError::invalid(format!(
                    "network.{list} has {} rules; at most {MAX_RULES} are allowed",
                    rules.len()
                )));
            }
        }
        if self.inject.len() > MAX_INJECTIONS {
            return Err(WarrenError::invalid(format!(
                "network.inject has {} entries; at most {MAX_INJECTIONS} are allowed",
                self.inject.len()
            )));
        }
        for inj in &self.inject {
            inj.validate()?;
            if !self.decide_name(&inj.host).is_allowed() {
                return Err(WarrenError::invalid(format!(
                    "network.inject names host '{}', which the policy does not allow; add it to network.allow",
                    inj.host
                )));
            }
        }
        if self.public_ports.contains(&0) {
            return Err(WarrenError::invalid(
                "network.public_ports must hold ports between 1 and 65535",
            ));
        }
        if let Some(host) = &self.request_host {
            check_request_host(host)?;
        }
        Ok(())
    }

    /// Whether exposed port `port` is reachable without an access token.
    pub fn is_public(&self, port: u16) -> bool {
        self.all_ports_public || self.public_ports.contains(&port)
    }

    /// The `Host` a request to exposed port `port` carries, if the policy
    /// replaces the client's.
    pub fn request_host_for(&self, port: u16) -> Option<String> {
        self.request_host
            .as_ref()
            .map(|h| h.replace(PORT_PLACEHOLDER, &port.to_string()))
    }

    /// The verdict on a DNS name or an HTTP Host / TLS SNI.
    pub fn decide_name(&self, name: &str) -> Verdict {
        let name = normalize_name(name);
        let named = |rules: &[NetRule]| {
            rules
                .iter()
                .any(|r| matches!(r, NetRule::Domain(p) if p.matches(&name)))
        };
        if named(&self.deny) {
            Verdict::Deny(DenyReason::DeniedByRule)
        } else if named(&self.allow) || self.internet == Internet::Allow {
            Verdict::Allow
        } else {
            Verdict::Deny(DenyReason::NotAllowed)
        }
    }

    /// The verdict on a connection to an address given as a literal (no
    /// name vouches for it).
    pub fn decide_addr(&self, addr: IpAddr) -> Verdict {
        self.decide_addr_with(addr, self.internet == Internet::Allow)
    }

    /// The verdict on an address the resolver returned for `name`: the
    /// name's verdict, narrowed by the address rules (deny CIDRs, private
    /// ranges, always-blocked addresses still win).
    pub fn decide_resolved(&self, name: &str, addr: IpAddr) -> Verdict {
        match self.decide_name(name) {
            Verdict::Allow => self.decide_addr_with(addr, true),
            denied => denied,
        }
    }

    fn decide_addr_with(&self, addr: IpAddr, public_ok: bool) -> Verdict {
        let addr = canonical(addr);
        let named = |rules: &[NetRule]| {
            rules
                .iter()
                .any(|r| matches!(r, NetRule::Cidr(c) if c.contains(addr)))
        };
        if always_blocked(addr) {
            Verdict::Deny(DenyReason::AlwaysBlocked)
        } else if named(&self.deny) {
            Verdict::Deny(DenyReason::DeniedByRule)
        } else if named(&self.allow) {
            Verdict::Allow
        } else if is_private(addr) {
            Verdict::Deny(DenyReason::Private)
        } else if public_ok {
            Verdict::Allow
        } else {
            Verdict::Deny(DenyReason::NotAllowed)
        }
    }

    /// The CIDRs of one list (for nftables sets).
    pub fn cidrs<'a>(rules: &'a [NetRule]) -> impl Iterator<Item = &'a Cidr> + 'a {
        rules.iter().filter_map(|r| match r {
            NetRule::Cidr(c) => Some(c),
            NetRule::Domain(_) => None,
        })
    }

    /// The injections for requests to `host`.
    pub fn injections_for<'a>(
        &'a self,
        host: &str,
    ) -> impl Iterator<Item = &'a SecretInjection> + 'a {
        let host = normalize_name(host);
        self.inject.iter().filter(move |i| i.host == host)
    }
}

/// Addresses no policy opens: link-local (169.254.0.0/16, the cloud
/// metadata service, and fe80::/10), loopback, unspecified, multicast and
/// broadcast.
pub fn always_blocked(addr: IpAddr) -> bool {
    match canonical(addr) {
        IpAddr::V4(a) => {
            a.is_link_local()
                || a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || a.octets()[0] == 0
        }
        IpAddr::V6(a) => {
            let seg0 = a.segments()[0];
            a.is_loopback() || a.is_unspecified() || a.is_multicast() || (seg0 & 0xffc0) == 0xfe80
        }
    }
}

/// Private ranges: RFC 1918, carrier-grade NAT (100.64.0.0/10) and IPv6
/// unique local addresses (fc00::/7).
pub fn is_private(addr: IpAddr) -> bool {
    match canonical(addr) {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// IPv4-mapped IPv6 addresses judged as the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        v4 => v4,
    }
}

/// Lower case, without a trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// One entry of an `allow` or `deny` list: a CIDR (a bare address is a
/// /32 or /128) or a domain pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NetRule {
    Cidr(Cidr),
    Domain(DomainPattern),
}

impl FromStr for NetRule {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let looks_like_addr = s.contains(':') || s.parse::<Ipv4Addr>().is_ok() || s.contains('/');
        if looks_like_addr {
            s.parse().map(Self::Cidr)
        } else {
            s.parse().map(Self::Domain)
        }
    }
}

impl TryFrom<String> for NetRule {
    type Error = WarrenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NetRule> for String {
    fn from(r: NetRule) -> Self {
        r.to_string()
    }
}

impl fmt::Display for NetRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(c) => c.fmt(f),
            Self::Domain(d) => d.fmt(f),
        }
    }
}

/// An address block; the address is stored masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => mask6(a, self.prefix) == net,
            _ => false,
        }
    }

    /// The addresses of `self` outside `hole`, as the fewest CIDRs: `self`
    /// when they do not meet, none when `hole` covers it, else the sibling
    /// halves along the way down to `hole`.
    pub fn without(&self, hole: &Cidr) -> Vec<Cidr> {
        if hole.prefix <= self.prefix && hole.contains(self.addr) {
            return Vec::new();
        }
        if hole.prefix <= self.prefix || !self.contains(hole.addr) {
            return vec![*self];
        }
        let max: u8 = if self.is_ipv4() { 32 } else { 128 };
        let mut out = Vec::new();
        let mut prefix = self.prefix;
        while prefix < max && prefix < hole.prefix {
            prefix += 1;
            // The half of the range at `prefix` that does not hold `hole`.
            let bit = u32::from(max - prefix);
            let sibling = match hole.addr {
                IpAddr::V4(a) => {
                    IpAddr::V4(mask4(Ipv4Addr::from(u32::from(a) ^ (1 << bit)), prefix))
                }
                IpAddr::V6(a) => {
                    IpAddr::V6(mask6(Ipv6Addr::from(u128::from(a) ^ (1 << bit)), prefix))
                }
            };
            out.push(Cidr {
                addr: sibling,
                prefix,
            });
        }
        out
    }
}

fn mask4(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(a);
    Ipv4Addr::from(if prefix == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(prefix)))
    })
}

fn mask6(a: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(a);
    Ipv6Addr::from(if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(prefix)))
    })
}

impl FromStr for Cidr {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            WarrenError::invalid(format!(
                "'{}' is not an IP address or CIDR (e.g. 203.0.113.0/24 or 2001:db8::/32)",
                s.chars().take(80).collect::<String>()
            ))
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(mask4(a, prefix)),
            IpAddr::V6(a) => IpAddr::V6(mask6(a, prefix)),
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `example.com` (that name) or `*.example.com` (every name below it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainPattern {
    /// The name, or for a wildcard the suffix after `*.`; normalized.
    base: String,
    wildcard: bool,
}

impl DomainPattern {
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// Whether `name` (already normalized) is matched.
    pub fn matches(&self, name: &str) -> bool {
        if self.wildcard {
            name.len() > self.base.len()
                && name.ends_with(&self.base)
                && name.as_bytes()[name.len() - self.base.len() - 1] == b'.'
        } else {
            name == self.base
        }
    }
}

impl FromStr for DomainPattern {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (wildcard, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let base = normalize_name(rest);
        validate_hostname(&base).map_err(|why| {
            WarrenError::invalid(format!(
                "'{}' is not a domain pattern ({why}); use a name like github.com or *.pypi.org",
                s.chars().take(80).collect::<String>()
            ))
        })?;
        Ok(Self { base, wildcard })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.base)
    }
}

/// A DNS host name: 1–253 characters, labels of 1–63 `[a-z0-9-_]` not
/// starting or ending with `-`, at least two labels.
fn validate_hostname(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("names are 1 to 253 characters");
    }
    let mut labels = 0;
    for label in name.split('.') {
        labels += 1;
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err("each label is 1 to 63 letters, digits, '-' or '_'");
        }
    }
    if labels < 2 {
        return Err("a name needs at least two labels");
    }
    Ok(())
}

/// A credential the egress proxy puts into requests to `host`: header
/// `header` is set to `format` with `{value}` replaced by the secret's
/// value, whatever the sandbox sent. If `env` is set, the sandbox's
/// environment gets that variable holding [`Self::placeholder`], never the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretInjection {
    /// Name of a secret of the sandbox's team.
    pub secret: String,
    /// Exact host name (no wildcard).
    pub host: String,
    /// HTTP header name, e.g. `Authorization`.
    pub header: String,
    /// Header value with one `{value}`; default `{value}`.
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default)]
    pub env: Option<String>,
}

fn default_format() -> String {
    "{value}".to_owned()
}

impl SecretInjection {
    /// What the sandbox sees instead of the value.
    pub fn placeholder(&self) -> String {
        format!("warren-secret-placeholder:{}", self.secret)
    }

    /// The header value to send, given the secret's value.
    pub fn header_value(&self, value: &str) -> String {
        self.format.replace("{value}", value)
    }

    /// The injection an E2B header transform asks for: `value` names one
    /// secret as [`E2B_PLACEHOLDER`]`NAME}` (e.g. `Bearer
    /// ${e2b.secrets.openai}`), which becomes the format's `{value}`, so
    /// the proxy sends the text around it with the secret's value in its
    /// place, exactly as for a native injection. A value naming no secret,
    /// or more than one, is refused: Warren injects secrets, not fixed
    /// headers.
    pub fn from_e2b_header(host: &str, header: &str, value: &str) -> Result<Self, WarrenError> {
        let bad = |why: &str| {
            WarrenError::invalid(format!(
                "network.rules header '{}' for {}: {why}",
                header.chars().take(80).collect::<String>(),
                host.chars().take(80).collect::<String>()
            ))
        };
        let (before, rest) = value.split_once(E2B_PLACEHOLDER).ok_or_else(|| {
            bad("Warren injects secrets only: the value must hold one ${e2b.secrets.NAME}")
        })?;
        let (name, after) = rest
            .split_once('}')
            .ok_or_else(|| bad("the ${e2b.secrets. placeholder is not closed"))?;
        if after.contains(E2B_PLACEHOLDER) {
            return Err(bad("one secret per header"));
        }
        let inj = Self {
            secret: name.to_owned(),
            host: host.to_owned(),
            header: header.to_owned(),
            format: format!("{before}{{value}}{after}"),
            env: None,
        };
        inj.validate()?;
        Ok(inj)
    }

    fn validate(&self) -> Result<(), WarrenError> {
        validate_secret_name(&self.secret)?;
        let host_ok =
            validate_hostname(&self.host).is_ok() && self.host == normalize_name(&self.host);
        if !host_ok {
            return Err(WarrenError::invalid(format!(
                "network.inject host '{}' must be an exact lower-case host name such as api.github.com",
                self.host.chars().take(80).collect::<String>()
            )));
        }
        let header_ok = !self.header.is_empty()
            && self.header.len() <= 64
            && self
                .header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(WarrenError::invalid(format!(
                "network.inject header '{}' must be an HTTP header name (letters, digits, '-')",
                self.header.chars().take(80).collect::<String>()
            )));
        }
        let format_ok = self.format.matches("{value}").count() == 1
            && self.format.len() <= 256
            && !self.format.bytes().any(|b| b.is_ascii_control());
        if !format_ok {
            return Err(WarrenError::invalid(
                "network.inject format must contain '{value}' exactly once and no control characters",
            ));
        }
        if let Some(env) = &self.env {
            let env_ok = !env.is_empty()
                && !env.as_bytes()[0].is_ascii_digit()
                && env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !env_ok {
                return Err(WarrenError::invalid(format!(
                    "network.inject env '{}' is not a valid environment variable name",
                    env.chars().take(80).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

/// How E2B's SDKs spell a secret in a header value: `${e2b.secrets.` then
/// the name and `}` (`Secret.fill(name)`).
pub const E2B_PLACEHOLDER: &str = "${e2b.secrets.";

/// Secret names: 1–63 characters of `[A-Za-z0-9_.-]`, starting with a
/// letter or digit.
pub fn validate_secret_name(name: &str) -> Result<(), WarrenError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "'{}' is not a valid secret name (1-63 letters, digits, '_', '.' or '-', starting with a letter or digit)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hosts_are_host_names_with_a_port_placeholder() {
        let with = |h: &str| NetworkPolicy {
            request_host: Some(h.to_owned()),
            ..NetworkPolicy::default()
        };
        for good in [
            "localhost:${PORT}",
            "${PORT}-app.example.com",
            "example.com",
            "127.0.0.1:3000",
            "[::1]:${PORT}",
        ] {
            with(good)
                .validate()
                .unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
        for bad in [
            "",
            "evil.com\r\nX-Injected: 1",
            "a b",
            "host:0",
            "host:99999",
            "host:${PORT}x",
            "user@host",
            &"a".repeat(300),
        ] {
            assert!(with(bad).validate().is_err(), "{bad:?}");
        }
        assert_eq!(
            with("localhost:${PORT}").request_host_for(5173).as_deref(),
            Some("localhost:5173")
        );
        assert_eq!(NetworkPolicy::default().request_host_for(80), None);
    }

    #[test]
    fn e2b_placeholders_become_injections_of_the_value() {
        let inj = SecretInjection::from_e2b_header(
            "api.openai.com",
            "Authorization",
            "Bearer ${e2b.secrets.openai-key}",
        )
        .unwrap();
        assert_eq!(
            (inj.secret.as_str(), inj.format.as_str()),
            ("openai-key", "Bearer {value}")
        );
        assert_eq!(inj.header_value("sk-1"), "Bearer sk-1");
        let bare =
            SecretInjection::from_e2b_header("h.example", "X-Key", "${e2b.secrets.k}").unwrap();
        assert_eq!(bare.header_value("v"), "v");
        let around =
            SecretInjection::from_e2b_header("h.example", "X-Key", "a ${e2b.secrets.k} z").unwrap();
        assert_eq!(around.header_value("v"), "a v z");
        for (host, header, value) in [
            ("h.example", "X-Key", "no placeholder"),
            ("h.example", "X-Key", "${e2b.secrets.k"),
            ("h.example", "X-Key", "${e2b.secrets.}"),
            ("h.example", "X-Key", "${e2b.secrets.a b}"),
            ("h.example", "X-Key", "${e2b.secrets.a}${e2b.secrets.b}"),
            ("h.example", "X-Key", "{value} ${e2b.secrets.a}"),
            ("h.example", "X-Key", "${e2b.secrets.a}\n"),
            ("h.example", "Bad Header", "${e2b.secrets.a}"),
            ("*.example.com", "X-Key", "${e2b.secrets.a}"),
            ("H.Example", "X-Key", "${e2b.secrets.a}"),
        ] {
            let e = SecretInjection::from_e2b_header(host, header, value).unwrap_err();
            assert_eq!(
                e.kind,
                crate::error::ErrorKind::InvalidArgument,
                "{host} {header} {value}"
            );
        }
    }

    /// A validated policy from `internet;allow,…;deny,…`.
    fn policy(spec: &str) -> NetworkPolicy {
        let mut parts = spec.split(';');
        let internet = match parts.next().unwrap() {
            "allow" => Internet::Allow,
            _ => Internet::Deny,
        };
        let list = |s: Option<&str>| -> Vec<NetRule> {
            s.unwrap_or("")
                .split(',')
                .filter(|r| !r.is_empty())
                .map(|r| r.parse().unwrap())
                .collect()
        };
        let p = NetworkPolicy {
            internet,
            allow: list(parts.next()),
            deny: list(parts.next()),
            ..NetworkPolicy::default()
        };
        p.validate().unwrap();
        p
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_denies_everything() {
        let p = NetworkPolicy::default();
        assert_eq!(
            p.decide_name("github.com"),
            Verdict::Deny(DenyReason::NotAllowed)
        );
        assert_eq!(
            p.decide_addr(ip("8.8.8.8")),
            Verdict::Deny(DenyReason::NotAllowed)
        );
    }

    #[test]
    fn exact_and_wildcard_names() {
        let p = policy("deny;github.com,*.pypi.org;");
        assert!(p.decide_name("github.com").is_allowed());
        assert!(p.decide_name("GitHub.com.").is_allowed());
        assert!(!p.decide_name("api.github.com").is_allowed());
        assert!(!p.decide_name("notgithub.com").is_allowed());
        assert!(p.decide_name("files.pypi.org").is_allowed());
        assert!(p.decide_name("a.b.pypi.org").is_allowed());
        assert!(!p.decide_name("pypi.org").is_allowed());
        assert!(!p.decide_name("xpypi.org").is_allowed());
    }

    #[test]
    fn deny_wins() {
        let p = policy("allow;*.example.com,198.51.100.0/24;bad.example.com,198.51.100.7");
        assert!(p.decide_name("good.example.com").is_allowed());
        assert_eq!(
            p.decide_name("bad.example.com"),
            Verdict::Deny(DenyReason::DeniedByRule)
        );
        assert!(p.decide_addr(ip("198.51.100.8")).is_allowed());
        assert_eq!(
            p.decide_addr(ip("198.51.100.7")),
            Verdict::Deny(DenyReason::DeniedByRule)
        );
        assert_eq!(
            p.decide_resolved("good.example.com", ip("198.51.100.7")),
            Verdict::Deny(DenyReason::DeniedByRule)
        );
    }

    #[test]
    fn private_and_metadata() {
        let open = policy("allow;;");
        assert!(open.decide_addr(ip("1.1.1.1")).is_allowed());
        assert_eq!(
            open.decide_addr(ip("10.1.2.3")),
            Verdict::Deny(DenyReason::Private)
        );
        assert_eq!(
            open.decide_addr(ip("100.64.0.1")),
            Verdict::Deny(DenyReason::Private)
        );
        assert_eq!(
            open.decide_addr(ip("fd00::1")),
            Verdict::Deny(DenyReason::Private)
        );
        assert_eq!(
            open.decide_addr(ip("169.254.169.254")),
            Verdict::Deny(DenyReason::AlwaysBlocked)
        );
        assert_eq!(
            open.decide_addr(ip("::ffff:169.254.169.254")),
            Verdict::Deny(DenyReason::AlwaysBlocked)
        );
        assert_eq!(
            open.decide_addr(ip("fe80::1")),
            Verdict::Deny(DenyReason::AlwaysBlocked)
        );
        // An allowed name does not open a private answer (rebinding) …
        let named = policy("deny;intra.example.com;");
        assert_eq!(
            named.decide_resolved("intra.example.com", ip("192.168.1.5")),
            Verdict::Deny(DenyReason::Private)
        );
        assert!(
            named
                .decide_resolved("intra.example.com", ip("198.18.0.5"))
                .is_allowed()
        );
        // … an allow CIDR does, but never the metadata range.
        let lan = policy("deny;10.0.0.0/8,169.254.0.0/16;");
        assert!(lan.decide_addr(ip("10.9.9.9")).is_allowed());
        assert_eq!(
            lan.decide_addr(ip("169.254.169.254")),
            Verdict::Deny(DenyReason::AlwaysBlocked)
        );
    }

    #[test]
    fn wire_form() {
        let json = r#"{"internet":"allow","allow":["GitHub.com","10.0.0.1"],"deny":["*.x.org"],"public_ports":[8080]}"#;
        let p: NetworkPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(p.internet, Internet::Allow);
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(
            back["allow"],
            serde_json::json!(["github.com", "10.0.0.1/32"])
        );
        assert_eq!(back["deny"], serde_json::json!(["*.x.org"]));
        assert!(serde_json::from_str::<NetworkPolicy>(r#"{"allow":["no"]}"#).is_err());
        assert!(serde_json::from_str::<NetworkPolicy>(r#"{"internet":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<NetworkPolicy>(r#"{"unknown":1}"#).is_err());
        assert_eq!(
            serde_json::from_str::<NetworkPolicy>("{}").unwrap(),
            NetworkPolicy::default()
        );
    }

    #[test]
    fn public_ports_are_the_listed_ones_or_all() {
        let listed: NetworkPolicy = serde_json::from_str(r#"{"public_ports":[8080]}"#).unwrap();
        assert!(listed.is_public(8080));
        assert!(!listed.is_public(8081));
        assert!(!NetworkPolicy::default().is_public(8080));
        // Left out when off, so stored policies keep their form.
        assert!(
            serde_json::to_value(&listed)
                .unwrap()
                .get("all_ports_public")
                .is_none()
        );
        let all: NetworkPolicy = serde_json::from_str(r#"{"all_ports_public":true}"#).unwrap();
        assert!(all.is_public(1) && all.is_public(65535));
        assert_eq!(
            serde_json::to_value(&all).unwrap()["all_ports_public"],
            true
        );
    }

    #[test]
    fn rule_parsing() {
        let c: Cidr = "203.0.113.77/24".parse().unwrap();
        assert_eq!(c.to_string(), "203.0.113.0/24");
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::1/128"
        );
        for bad in ["1.2.3.4/33", "1.2.3.4/", "1.2.3/8", "::1/129", "1.2.3.4/+8"] {
            assert!(bad.parse::<NetRule>().is_err(), "{bad}");
        }
        for bad in [
            "",
            "com",
            "*.com",
            "a..b",
            "-a.com",
            "a b.com",
            "*x.com",
            "a.*.com",
            "ex_ample.c/m",
        ] {
            assert!(bad.parse::<NetRule>().is_err(), "{bad}");
        }
        assert!(
            matches!("*.pypi.org".parse::<NetRule>().unwrap(), NetRule::Domain(d) if d.is_wildcard())
        );
    }

    #[test]
    fn injections_are_checked() {
        let mut p = policy("deny;api.github.com;");
        let inj = SecretInjection {
            secret: "gh".into(),
            host: "api.github.com".into(),
            header: "Authorization".into(),
            format: "Bearer {value}".into(),
            env: Some("GITHUB_TOKEN".into()),
        };
        p.inject.push(inj.clone());
        p.validate().unwrap();
        assert_eq!(inj.header_value("s3cr3t"), "Bearer s3cr3t");
        assert!(!inj.placeholder().contains("s3cr3t"));
        assert_eq!(p.injections_for("API.github.com").count(), 1);

        let cases = [
            SecretInjection {
                host: "other.com".into(),
                ..inj.clone()
            },
            SecretInjection {
                format: "Bearer".into(),
                ..inj.clone()
            },
            SecretInjection {
                format: "{value}\r\nX: {value}".into(),
                ..inj.clone()
            },
            SecretInjection {
                header: "Bad Header".into(),
                ..inj.clone()
            },
            SecretInjection {
                secret: "../x".into(),
                ..inj.clone()
            },
            SecretInjection {
                env: Some("1X".into()),
                ..inj.clone()
            },
        ];
        for bad in cases {
            let p = NetworkPolicy {
                inject: vec![bad.clone()],
                ..p.clone()
            };
            assert!(p.validate().is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod cidr_subtraction_tests {
    use super::*;

    fn cidrs(list: &[Cidr]) -> Vec<String> {
        list.iter().map(Cidr::to_string).collect()
    }

    #[test]
    fn a_hole_leaves_the_sibling_halves_and_nothing_of_itself() {
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        let one: Cidr = "8.8.8.8".parse().unwrap();
        let rest = all.without(&one);
        assert_eq!(rest.len(), 32);
        for probe in [
            "8.8.8.7",
            "8.8.8.9",
            "1.1.1.1",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            let addr: IpAddr = probe.parse().unwrap();
            assert!(rest.iter().any(|c| c.contains(addr)), "{probe}");
        }
        assert!(!rest.iter().any(|c| c.contains("8.8.8.8".parse().unwrap())));
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        let sub: Cidr = "10.1.0.0/16".parse().unwrap();
        assert_eq!(
            cidrs(&net.without(&sub)),
            [
                "10.128.0.0/9",
                "10.64.0.0/10",
                "10.32.0.0/11",
                "10.16.0.0/12",
                "10.8.0.0/13",
                "10.4.0.0/14",
                "10.2.0.0/15",
                "10.0.0.0/16"
            ]
        );
        assert_eq!(cidrs(&sub.without(&net)), Vec::<String>::new(), "covered");
        let other: Cidr = "192.168.0.0/16".parse().unwrap();
        assert_eq!(cidrs(&net.without(&other)), ["10.0.0.0/8"], "apart");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert_eq!(cidrs(&net.without(&v6)), ["10.0.0.0/8"], "other family");
        assert_eq!(v6.without(&"2001:db8::1".parse().unwrap()).len(), 96);
    }
}
