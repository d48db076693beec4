//! Where deliveries may go. By default never to the host's own or internal
//! networks: loopback, link-local (the cloud metadata address
//! 169.254.169.254 among them), private and unique-local ranges, shared
//! address space, unspecified, multicast, broadcast and reserved
//! addresses, nor the sandbox pool. The operator opens ranges with
//! `--webhook-allow CIDR`; the sandbox pool stays closed whatever is
//! allowed.
//!
//! The check is made on the address actually connected to: the delivery
//! resolves the host once, checks every address, and connects to a
//! checked one (never resolving again), so a name that resolves elsewhere
//! later (DNS rebinding) gains nothing. A registration naming a forbidden
//! literal address is refused at once; a name is checked at each delivery.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};
use warren_core::network::Cidr;

/// Longest URL a registration may name.
pub const MAX_URL_LEN: usize = 2048;

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("the URL is not valid: {0}")]
    BadUrl(String),
    #[error("deliveries never go to {addr} ({why}); an operator may allow it with --webhook-allow")]
    Forbidden { addr: IpAddr, why: &'static str },
    #[error("deliveries never go to {addr}: it is in the sandbox pool")]
    SandboxPool { addr: IpAddr },
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
}

/// The destination policy of the daemon.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow: Vec<Cidr>,
    pool: Option<Cidr>,
}

/// Why an address is closed by default, if it is.
fn closed(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            if a.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if a.is_loopback() {
                Some("loopback")
            } else if a.is_link_local() {
                Some("link-local")
            } else if a.is_private() {
                Some("private")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("shared address space")
            } else if a.is_multicast() {
                Some("multicast")
            } else if a.is_broadcast() || o[0] >= 240 {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_unspecified() {
                Some("unspecified")
            } else if a.is_loopback() {
                Some("loopback")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique-local")
            } else if a.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

impl Destinations {
    /// `allow`: ranges the operator opened; `pool`: the sandboxes' range.
    pub fn new(allow: Vec<Cidr>, pool: Option<Cidr>) -> Self {
        Self { allow, pool }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), DestinationError> {
        let ip = ip.to_canonical();
        if self.pool.is_some_and(|p| p.contains(ip)) {
            return Err(DestinationError::SandboxPool { addr: ip });
        }
        match closed(ip) {
            Some(why) if !self.allow.iter().any(|c| c.contains(ip)) => {
                Err(DestinationError::Forbidden { addr: ip, why })
            }
            _ => Ok(()),
        }
    }

    /// A registration's URL: `http` or `https`, a host, no credentials, at
    /// most [`MAX_URL_LEN`] bytes, and no forbidden literal address.
    pub fn check_url(&self, url: &str) -> Result<Url, DestinationError> {
        let bad = |m: &str| DestinationError::BadUrl(m.to_owned());
        if url.len() > MAX_URL_LEN {
            return Err(bad(&format!("longer than {MAX_URL_LEN} bytes")));
        }
        let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are not accepted"));
        }
        match parsed.host() {
            None => return Err(bad("the URL names no host")),
            Some(Host::Ipv4(a)) => self.check_ip(IpAddr::V4(a))?,
            Some(Host::Ipv6(a)) => self.check_ip(IpAddr::V6(a))?,
            Some(Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    self.check_ip(IpAddr::from([127, 0, 0, 1]))?;
                }
            }
        }
        Ok(parsed)
    }

    /// The one address a delivery to `url` connects to: the host resolved
    /// once and the first address that passes [`Destinations::check_ip`];
    /// when none does, the first refusal.
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, DestinationError> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| DestinationError::BadUrl("no port".into()))?;
        let candidates: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(a)) => vec![SocketAddr::new(IpAddr::V4(a), port)],
            Some(Host::Ipv6(a)) => vec![SocketAddr::new(IpAddr::V6(a), port)],
            Some(Host::Domain(d)) => tokio::net::lookup_host((d, port))
                .await
                .map_err(|e| DestinationError::Resolve {
                    host: d.to_owned(),
                    detail: e.to_string(),
                })?
                .collect(),
            None => return Err(DestinationError::BadUrl("the URL names no host".into())),
        };
        let mut refusal = None;
        for addr in candidates {
            match self.check_ip(addr.ip()) {
                Ok(()) => return Ok(SocketAddr::new(addr.ip().to_canonical(), port)),
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        Err(refusal.unwrap_or_else(|| DestinationError::Resolve {
            host: url.host_str().unwrap_or_default().to_owned(),
            detail: "no addresses".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_closed_by_default() {
        let d = Destinations::new(vec![], Some(cidr("10.200.0.0/16")));
        for a in [
            "127.0.0.1",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "10.200.3.4",
        ] {
            assert!(d.check_ip(ip(a)).is_err(), "{a} should be closed");
        }
        for a in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(d.check_ip(ip(a)).is_ok(), "{a} should be open");
        }
    }

    #[test]
    fn the_operator_opens_ranges_but_never_the_sandbox_pool() {
        let d = Destinations::new(
            vec![cidr("127.0.0.0/8"), cidr("10.0.0.0/8")],
            Some(cidr("10.200.0.0/16")),
        );
        assert!(d.check_ip(ip("127.0.0.1")).is_ok());
        assert!(d.check_ip(ip("::ffff:127.0.0.1")).is_ok());
        assert!(d.check_ip(ip("10.1.1.1")).is_ok());
        assert_eq!(
            d.check_ip(ip("10.200.0.9")),
            Err(DestinationError::SandboxPool {
                addr: ip("10.200.0.9")
            })
        );
        assert!(d.check_ip(ip("169.254.169.254")).is_err());
    }

    #[test]
    fn registration_urls_are_checked() {
        let d = Destinations::default();
        assert!(d.check_url("https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://localhost/",
            "http://a.localhost./",
            "not a url",
        ] {
            assert!(d.check_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(d.check_url(&long).is_err());
    }

    #[tokio::test]
    async fn a_name_is_resolved_once_and_checked() {
        let closed = Destinations::default();
        let url = Url::parse("http://localhost:9/").unwrap();
        assert!(matches!(
            closed.resolve(&url).await,
            Err(DestinationError::Forbidden { .. })
        ));
        let open = Destinations::new(vec![cidr("127.0.0.0/8"), cidr("::1/128")], None);
        let addr = open.resolve(&url).await.unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 9);
    }
}
