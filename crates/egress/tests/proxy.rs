//! The egress proxy against real sockets: a sandbox network made by the
//! runtime's own functions, the runtime's nftables table redirecting its
//! TCP to a real proxy, and clients inside the namespace sending request
//! heads and ClientHellos. The destination is an address the sandbox's
//! resolver "returned" for an allowed name, routed `unreachable` on the
//! host, so an allowed connection fails at the dial and nothing leaves the
//! machine; the verdict is read from the proxy's events.

// The sandbox networks of warren-net's own tests.
#[path = "../../net/tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use common::{TableGuard, TestSandbox, Unreachable};
use rustls_pki_types::ServerName;
use warren_core::network::{DenyReason, NetworkPolicy, Verdict};
use warren_egress::EventSink;
use warren_egress::egress::{NetEvent, NetEventKind};
use warren_egress::proxy::EgressProxy;
use warren_egress::registry::{Registry, SandboxNet};
use warren_net::{AddressPool, EgressPorts, Firewall};

const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 9);
const ALLOWED: &str = "ok.example.test";

/// Inside the sandbox: connects to `argv[1]:argv[2]`, sends the bytes
/// hex-encoded in `argv[3]`, waits for the proxy to close.
const SEND: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(bytes.fromhex(sys.argv[3]))
try:
    while s.recv(4096):
        pass
except OSError:
    pass
print("closed")
"#;

/// A real ClientHello from rustls, naming `server` (an address literal
/// makes rustls send no SNI).
fn client_hello(server: ServerName<'static>) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn root_proxy_refuses_ambiguous_host_names() {
    let pool: AddressPool = "10.90.1.0/24".parse().unwrap();
    let _route = Unreachable::add(DST);
    let registry = Registry::default();
    let (sink, mut events) = EventSink::channel(64);
    let (proxy, task) = EgressProxy::new(registry.clone(), sink, pool)
        .serve((Ipv4Addr::UNSPECIFIED, 0).into())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fw = Firewall::new(dir.path(), pool).with_egress_ports(EgressPorts {
        dns: 1,
        proxy: proxy.port(),
    });
    fw.install().await.unwrap();
    let _table = TableGuard(fw.clone());
    let sb = TestSandbox::create(pool, 1).await;
    let policy: NetworkPolicy =
        serde_json::from_str(&format!(r#"{{"allow":["{ALLOWED}"]}}"#)).unwrap();
    registry.set(SandboxNet {
        id: "sb".into(),
        team: "t".into(),
        slot: 1,
        addr: sb.addrs.sandbox,
        policy: Arc::new(policy),
    });
    registry.remember(
        sb.addrs.sandbox,
        ALLOWED,
        &[IpAddr::V4(DST)],
        Duration::from_secs(600),
    );

    let mut verdict = async |port: u16, bytes: &[u8]| -> NetEvent {
        let out = sb
            .python(SEND, &[&DST.to_string(), &port.to_string(), &hex(bytes)])
            .await;
        assert_eq!(out.trim(), "closed");
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .unwrap()
    };
    let head = |lines: &str| format!("{lines}\r\n\r\n").into_bytes();
    let deny = |r| Verdict::Deny(r);

    // The plain request to the allowed name is allowed (and fails at the
    // dial): what follows is refused for its names alone.
    let e = verdict(80, &head(&format!("GET / HTTP/1.1\r\nHost: {ALLOWED}"))).await;
    assert_eq!(
        (e.kind, e.verdict),
        (NetEventKind::Http, Verdict::Allow),
        "{e:?}"
    );
    for (request, reason) in [
        (
            format!("GET http://evil.example/ HTTP/1.1\r\nHost: {ALLOWED}"),
            DenyReason::NameMismatch,
        ),
        (
            format!("CONNECT evil.example:443 HTTP/1.1\r\nHost: {ALLOWED}"),
            DenyReason::NameMismatch,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {ALLOWED}\r\nHost: evil.example"),
            DenyReason::Malformed,
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {ALLOWED}\r\nHost: {ALLOWED}"),
            DenyReason::Malformed,
        ),
    ] {
        let e = verdict(80, &head(&request)).await;
        assert_eq!(e.kind, NetEventKind::Http, "{request}");
        assert_eq!(e.verdict, deny(reason), "{request}");
    }

    // TLS: with the allowed SNI allowed; without SNI refused, although the
    // address was resolved for an allowed name.
    let named = client_hello(ServerName::try_from(ALLOWED).unwrap());
    let e = verdict(443, &named).await;
    assert_eq!(
        (e.kind, e.verdict),
        (NetEventKind::Tls, Verdict::Allow),
        "{e:?}"
    );
    assert_eq!(e.name.as_deref(), Some(ALLOWED));
    let nameless = client_hello(ServerName::IpAddress(IpAddr::V4(DST).into()));
    let e = verdict(443, &nameless).await;
    assert_eq!(e.kind, NetEventKind::Tls);
    assert_eq!(e.verdict, deny(DenyReason::NoServerName));

    task.abort();
}
