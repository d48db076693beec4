//! The transparent egress proxy. The firewall redirects every new TCP
//! connection from a sandbox that is not for the host, the pool or
//! link-local here; the original destination comes from `SO_ORIGINAL_DST`.
//!
//! Per connection:
//! 1. the sandbox is the one the [`Registry`] knows at the peer address
//!    (unknown: closed);
//! 2. the first bytes are peeked (nothing consumed) for a TLS SNI or an
//!    HTTP Host, waiting at most [`SNIFF_WAIT`] (a client that says
//!    nothing first, like SSH, is judged by address after that wait); a
//!    ClientHello or request head whose name is ambiguous (see
//!    [`crate::sniff`]: several server names or Host headers, a request
//!    target naming another host than Host, folded or stray line breaks)
//!    is refused;
//! 3. the decision ([`judge`]): with a name, `decide_resolved(name, dst)`
//!    must allow and `dst` must be an address the sandbox's resolver
//!    returned for that name, or one the address rules allow by
//!    themselves — so an allowed address reached under a denied name
//!    fails, and so does an allowed name pointed at an address the
//!    resolver never gave for it; without a name, `dst` must be an address
//!    the resolver returned for a name the policy allows now, or one
//!    `decide_addr` allows — except a TLS ClientHello without a server
//!    name, which only `decide_addr` can open ([`judge_nameless_tls`]).
//!    Whatever the policy, the proxy never dials
//!    this host's own addresses, the sandbox pool or always-blocked ones
//!    (it dials from the host, so it would otherwise open them);
//! 4. a TLS connection to a host the policy injects secrets for goes,
//!    untouched, to the [`Interceptor`] with the header values from the
//!    [`SecretSource`]; with no interceptor configured such connections
//!    are refused (never sent on without the credential silently). A
//!    request inside that names another host than the SNI is answered
//!    421 and never forwarded, and the connection's event is a denial;
//! 5. a plain-HTTP connection is relayed one request at a time, each of
//!    which must name the host the first was judged for
//!    ([`crate::http_guard`]): a later request naming another host is
//!    never sent, the connection ends once the server has answered what it
//!    was sent, and the connection's event is a denial;
//! 6. otherwise the proxy dials `dst` and splices both ways in the kernel
//!    ([`crate::splice`]; TCP_NODELAY on both sides), passing half-closes
//!    on, and closes a connection with no byte either way for
//!    [`IDLE_TIMEOUT`].
//!
//! Every connection becomes one [`NetEvent`] (with byte counts at close).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use warren_core::network::{DenyReason, Verdict, always_blocked};
use warren_net::AddressPool;

use crate::egress::{InjectedHeader, Interceptor, NetEvent, NetEventKind, Transfer};
use crate::error::EgressError;
use crate::http_guard::relay_http;
use crate::registry::{Registry, SandboxNet};
use crate::sink::EventSink;
use crate::sniff::{SNIFF_LIMIT, Sniff, sniff};
use crate::splice::splice_both;

/// How long the proxy waits for a client's first bytes before judging
/// the connection by address alone.
pub const SNIFF_WAIT: Duration = Duration::from_millis(500);
/// How long dialing the destination may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no byte in either direction for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The future a secret look-up runs as.
pub type SecretFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// Where the proxy gets the values of secrets it injects. The daemon
/// implements it with its secrets store; values are never logged.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name` of team `team`, if it exists.
    fn secret(&self, team: &str, name: &str) -> SecretFuture;
}

/// The proxy's shared state.
#[derive(Clone)]
pub struct EgressProxy {
    registry: Registry,
    sink: EventSink,
    pool: AddressPool,
    interceptor: Option<Arc<dyn Interceptor>>,
    secrets: Option<Arc<dyn SecretSource>>,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy")
            .field("pool", &self.pool)
            .field("interceptor", &self.interceptor.is_some())
            .finish()
    }
}

impl EgressProxy {
    pub fn new(registry: Registry, sink: EventSink, pool: AddressPool) -> Self {
        Self {
            registry,
            sink,
            pool,
            interceptor: None,
            secrets: None,
        }
    }

    /// Hands TLS connections to hosts with secret injections to
    /// `interceptor`, with header values from `secrets`.
    pub fn with_interception(
        mut self,
        interceptor: Arc<dyn Interceptor>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        self.interceptor = Some(interceptor);
        self.secrets = Some(secrets);
        self
    }

    /// Binds `addr` and serves until the task is aborted.
    pub async fn serve(
        self,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EgressError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| EgressError::io(format!("binding the egress proxy to {addr}"), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| EgressError::io("egress proxy address", e))?;
        let me = Arc::new(self);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, peer)) = listener.accept().await else {
                    continue;
                };
                let me = me.clone();
                tokio::spawn(async move { me.handle(client, peer).await });
            }
        });
        Ok((bound, task))
    }

    async fn handle(&self, client: TcpStream, peer: SocketAddr) {
        let Some(sandbox) = self.registry.get(peer.ip()) else {
            return;
        };
        let Some(dst) = original_dst(&client) else {
            return;
        };
        let _ = client.set_nodelay(true);
        let seen = peek_name(&client).await;
        let (kind, name) = match &seen {
            Sniff::Tls(n) => (NetEventKind::Tls, n.clone()),
            Sniff::Http(n) => (NetEventKind::Http, n.clone()),
            Sniff::BadTls(_) => (NetEventKind::Tls, None),
            Sniff::BadHttp(_) => (NetEventKind::Http, None),
            Sniff::Other | Sniff::NeedMore => (NetEventKind::Connect, None),
        };
        let mut event = NetEvent {
            kind,
            source: peer.ip(),
            dest: Some(IpAddr::V4(*dst.ip())),
            port: Some(dst.port()),
            name: name.clone(),
            verdict: Verdict::Allow,
            bytes_out: 0,
            bytes_in: 0,
        };
        let dst_ip = IpAddr::V4(*dst.ip());
        event.verdict = match seen {
            _ if self.never_dialed(*dst.ip()) => Verdict::Deny(DenyReason::AlwaysBlocked),
            Sniff::BadTls(reason) | Sniff::BadHttp(reason) => Verdict::Deny(reason),
            Sniff::Tls(None) => judge_nameless_tls(&sandbox, dst_ip),
            _ => judge(&self.registry, &sandbox, name.as_deref(), dst_ip),
        };
        if !event.verdict.is_allowed() {
            self.sink.emit(event);
            return;
        }
        let injected = match (&name, kind) {
            (Some(host), NetEventKind::Tls) => sandbox.policy.injections_for(host).count() > 0,
            _ => false,
        };
        let result = match (injected, &seen) {
            (true, _) => {
                self.intercept(client, &sandbox, name.unwrap_or_default(), dst)
                    .await
            }
            (false, Sniff::Http(Some(host))) => relay_http_guarded(client, dst, host).await,
            (false, _) => relay(client, dst).await,
        };
        match result {
            Ok(t) => {
                event.bytes_out = t.bytes_out;
                event.bytes_in = t.bytes_in;
                if let Some(inner) = t.misdirected {
                    tracing::info!(sandbox = %sandbox.id, %dst, host = inner, "a later request on the connection named another host");
                    event.verdict = Verdict::Deny(DenyReason::NameMismatch);
                }
            }
            // The policy allowed it; the destination did not answer.
            Err(reason @ RelayError::Connect(_)) => {
                tracing::debug!(sandbox = %sandbox.id, %dst, error = %reason, "egress connection failed");
            }
            Err(reason) => {
                tracing::info!(sandbox = %sandbox.id, %dst, error = %reason, "egress connection refused");
                event.verdict = Verdict::Deny(DenyReason::NotAllowed);
            }
        }
        self.sink.emit(event);
    }

    /// This host's own addresses, the pool and always-blocked addresses.
    fn never_dialed(&self, dst: Ipv4Addr) -> bool {
        always_blocked(IpAddr::V4(dst)) || self.pool.contains(dst) || is_local(dst)
    }

    async fn intercept(
        &self,
        client: TcpStream,
        sandbox: &SandboxNet,
        host: String,
        dst: SocketAddrV4,
    ) -> Result<Transfer, RelayError> {
        let (Some(interceptor), Some(secrets)) = (&self.interceptor, &self.secrets) else {
            return Err(RelayError::NoInterceptor);
        };
        let mut headers = Vec::new();
        for inj in sandbox.policy.injections_for(&host) {
            let Some(value) = secrets.secret(&sandbox.team, &inj.secret).await else {
                return Err(RelayError::MissingSecret(inj.secret.clone()));
            };
            headers.push(InjectedHeader {
                name: inj.header.clone(),
                value: inj.header_value(&value),
            });
        }
        interceptor
            .intercept(client, host, SocketAddr::V4(dst), headers)
            .await
            .map_err(|e| RelayError::Intercept(e.to_string()))
    }
}

/// The decision on a connection from `sandbox` to `dst` under `name`
/// (module docs, step 3).
pub fn judge(
    registry: &Registry,
    sandbox: &SandboxNet,
    name: Option<&str>,
    dst: IpAddr,
) -> Verdict {
    let policy = &sandbox.policy;
    let by_addr = policy.decide_addr(dst);
    let resolved = registry.names_for(sandbox.addr, dst);
    match name {
        Some(name) => match policy.decide_resolved(name, dst) {
            Verdict::Allow
                if by_addr.is_allowed()
                    || resolved
                        .iter()
                        .any(|n| *n == warren_core::network::normalize_name(name)) =>
            {
                Verdict::Allow
            }
            Verdict::Allow => Verdict::Deny(DenyReason::NotAllowed),
            denied => denied,
        },
        None if by_addr.is_allowed() => Verdict::Allow,
        None => {
            if resolved
                .iter()
                .any(|n| policy.decide_resolved(n, dst).is_allowed())
            {
                Verdict::Allow
            } else {
                by_addr
            }
        }
    }
}

/// The decision on a TLS connection whose ClientHello names no server:
/// only the address rules can open it (an allowed CIDR, or `internet:
/// allow`). An address resolved for an allowed name does not: without a
/// name, the encrypted request could name any host that address serves.
pub fn judge_nameless_tls(sandbox: &SandboxNet, dst: IpAddr) -> Verdict {
    match sandbox.policy.decide_addr(dst) {
        Verdict::Deny(DenyReason::NotAllowed) => Verdict::Deny(DenyReason::NoServerName),
        v => v,
    }
}

/// Whether `addr` is one of this host's own addresses (binding to it
/// succeeds only then).
fn is_local(addr: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((addr, 0)).is_ok()
}

/// Peeks until the first bytes name the connection, or [`SNIFF_WAIT`].
async fn peek_name(client: &TcpStream) -> Sniff {
    let deadline = Instant::now() + SNIFF_WAIT;
    let mut buf = vec![0u8; SNIFF_LIMIT];
    let mut last = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, client.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => return Sniff::Other,
        };
        if n == 0 {
            return Sniff::Other;
        }
        match sniff(&buf[..n]) {
            Sniff::NeedMore if Instant::now() < deadline => {
                // `peek` returns at once while any byte is buffered: wait
                // a little for more before looking again.
                if n == last {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                last = n;
            }
            Sniff::NeedMore => return Sniff::Other,
            found => return found,
        }
    }
}

/// The destination a redirected connection was made to.
fn original_dst(stream: &TcpStream) -> Option<SocketAddrV4> {
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes of the sizes given,
    // and the descriptor stays open for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_IP,
            libc::SO_ORIGINAL_DST,
            (&raw mut addr).cast(),
            &raw mut len,
        )
    };
    if rc != 0 || i32::from(addr.sin_family) != libc::AF_INET {
        return None;
    }
    Some(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
        u16::from_be(addr.sin_port),
    ))
}

/// Why a relayed connection ended badly.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("connecting to the destination: {0}")]
    Connect(String),
    #[error("the policy injects a secret for this host but no interceptor is configured")]
    NoInterceptor,
    #[error("secret '{0}' does not exist")]
    MissingSecret(String),
    #[error("interception failed: {0}")]
    Intercept(String),
}

/// Dials `dst` with TCP_NODELAY.
async fn dial(dst: SocketAddrV4) -> Result<TcpStream, RelayError> {
    let server = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst))
        .await
        .map_err(|_| RelayError::Connect("timed out".into()))?
        .map_err(|e| RelayError::Connect(e.to_string()))?;
    let _ = server.set_nodelay(true);
    Ok(server)
}

/// Dials `dst` and relays plain HTTP, every request of which must name
/// `host` ([`crate::http_guard`]).
async fn relay_http_guarded(
    client: TcpStream,
    dst: SocketAddrV4,
    host: &str,
) -> Result<Transfer, RelayError> {
    let server = dial(dst).await?;
    let guarded = relay_http(client, server, host)
        .await
        .map_err(|e| RelayError::Connect(e.to_string()))?;
    Ok(Transfer {
        bytes_out: guarded.bytes_out,
        bytes_in: guarded.bytes_in,
        misdirected: guarded.refused,
    })
}

/// Dials `dst` and splices both ways until both sides are done.
async fn relay(client: TcpStream, dst: SocketAddrV4) -> Result<Transfer, RelayError> {
    let server = dial(dst).await?;
    splice_both(&client, &server, IDLE_TIMEOUT)
        .await
        .map(|(bytes_out, bytes_in)| Transfer {
            bytes_out,
            bytes_in,
            misdirected: None,
        })
        .map_err(|e| RelayError::Connect(format!("no pipe for the relay: {e}")))
}

#[cfg(test)]
mod tests {
    use warren_core::network::NetworkPolicy;

    use super::*;

    fn sandbox(registry: &Registry, policy: &str) -> SandboxNet {
        let net = SandboxNet {
            id: "sb".into(),
            team: "t".into(),
            slot: 0,
            addr: Ipv4Addr::new(10, 0, 0, 2),
            policy: Arc::new(serde_json::from_str::<NetworkPolicy>(policy).unwrap()),
        };
        registry.set(net.clone());
        net
    }

    #[test]
    fn names_and_addresses_must_agree() {
        let r = Registry::default();
        let sb = sandbox(
            &r,
            r#"{"allow":["ok.example.test","198.51.100.0/24"],"deny":["bad.example.test"]}"#,
        );
        let ok_ip: IpAddr = "198.18.0.9".parse().unwrap();
        let cidr_ip: IpAddr = "198.51.100.4".parse().unwrap();
        r.remember(
            sb.addr,
            "ok.example.test",
            &[ok_ip],
            Duration::from_secs(60),
        );
        r.remember(
            sb.addr,
            "bad.example.test",
            &["198.18.0.10".parse().unwrap()],
            Duration::from_secs(60),
        );
        let allowed = |name: Option<&str>, ip: IpAddr| judge(&r, &sb, name, ip).is_allowed();
        assert!(allowed(Some("ok.example.test"), ok_ip));
        assert!(
            allowed(None, ok_ip),
            "an address resolved for an allowed name"
        );
        assert!(allowed(None, cidr_ip));
        assert!(!allowed(Some("any.example.test"), cidr_ip));
        // An allowed address under a denied or unknown name fails …
        assert!(!allowed(Some("bad.example.test"), ok_ip));
        assert!(!allowed(Some("other.example.test"), ok_ip));
        // … and so does an allowed name at an address never resolved for it.
        assert!(!allowed(
            Some("ok.example.test"),
            "198.18.0.11".parse().unwrap()
        ));
        // Resolved for a denied name only: no.
        assert!(!allowed(None, "198.18.0.10".parse().unwrap()));
    }

    #[test]
    fn tls_without_a_server_name_is_judged_by_the_address_rules_alone() {
        let r = Registry::default();
        let sb = sandbox(
            &r,
            r#"{"allow":["ok.example.test","198.51.100.0/24"],"deny":["198.51.100.7"]}"#,
        );
        let resolved: IpAddr = "198.18.0.9".parse().unwrap();
        r.remember(
            sb.addr,
            "ok.example.test",
            &[resolved],
            Duration::from_secs(60),
        );
        let nameless = |ip: &str| judge_nameless_tls(&sb, ip.parse().unwrap());
        // Resolved for an allowed name, but no name in the hello.
        assert_eq!(
            nameless("198.18.0.9"),
            Verdict::Deny(DenyReason::NoServerName)
        );
        assert_eq!(nameless("198.51.100.4"), Verdict::Allow);
        assert_eq!(
            nameless("198.51.100.7"),
            Verdict::Deny(DenyReason::DeniedByRule)
        );
        let open = sandbox(&r, r#"{"internet":"allow"}"#);
        assert!(judge_nameless_tls(&open, resolved).is_allowed());
    }

    #[test]
    fn the_host_and_metadata_are_never_dialed() {
        let r = Registry::default();
        let p = EgressProxy::new(r, EventSink::channel(1).0, "10.0.0.0/24".parse().unwrap());
        assert!(p.never_dialed(Ipv4Addr::new(169, 254, 169, 254)));
        assert!(p.never_dialed(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(p.never_dialed(Ipv4Addr::new(10, 0, 0, 6)));
        assert!(!p.never_dialed(Ipv4Addr::new(198, 18, 250, 250)));
    }
}
