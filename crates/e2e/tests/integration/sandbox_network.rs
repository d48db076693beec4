//! Egress policy end to end: a real daemon, real sandboxes, and a test
//! "internet" in a network namespace on this machine (never any outside
//! address) with HTTP/HTTPS servers and an upstream DNS server.

use serde_json::json;
use warren_e2e::Daemon;
use warren_e2e::internet::Internet;

/// Names the test upstream answers, with the last octet of their address.
const NAMES: &[(&str, u8)] = &[
    ("good.example.test", 2),
    ("other.example.test", 3),
    ("a.wild.test", 4),
    ("bad.wild.test", 5),
];

/// Python inside the sandbox: one DNS query of type `$2` for `$1` to the
/// sandbox's configured nameserver; prints `rcode answers` or `timeout`.
const DNS_QUERY: &str = r#"
import random, socket, struct, sys
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
name, qtype = sys.argv[1], int(sys.argv[2])
qid = random.randint(0, 65535)
pkt = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
pkt += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0'
pkt += struct.pack('>HH', qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(pkt, (ns, 53))
try:
    r = s.recv(4096)
    print(r[3] & 15, struct.unpack('>H', r[6:8])[0])
except socket.timeout:
    print('timeout')
"#;

async fn setup() -> (Internet, Daemon) {
    let net = Internet::start(NAMES).await.expect("test internet");
    net.wait_ready().await.expect("test servers");
    let upstream = net.dns.to_string();
    let d = Daemon::start_with(&["--dns-upstream", &upstream])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    (net, d)
}

/// What curl inside `id` gets for `args`: the body, or `failed (rc N)`.
async fn curl(d: &Daemon, id: &str, args: &str) -> String {
    let out = d
        .sh(
            id,
            &format!("curl -sS -k -m 5 {args} 2>/dev/null || echo \"failed (rc $?)\""),
        )
        .await;
    out.stdout_str().trim().to_owned()
}

/// `rcode answers` of a DNS query from inside `id`.
async fn dns(d: &Daemon, id: &str, name: &str, qtype: u16) -> String {
    let script = format!("python3 -c \"$DNS\" {name} {qtype}");
    let out = d
        .exec(
            id,
            json!({"cmd": ["bash", "-c", script], "env": {"DNS": DNS_QUERY}}),
        )
        .await;
    out.stdout_str().trim().to_owned()
}

/// The sandbox's own address.
async fn inside_ip(d: &Daemon, id: &str) -> std::net::Ipv4Addr {
    let out = d
        .sh(
            id,
            "python3 -c \"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect(('192.0.2.1',9));print(s.getsockname()[0])\"",
        )
        .await;
    out.stdout_str().trim().parse().expect("an IPv4 address")
}

fn ok(body: &str, host: &str) -> bool {
    body == format!("host={host}")
}

#[tokio::test]
async fn sandbox_network_policies_are_enforced() {
    let (net, d) = setup().await;
    let good = net.addr("good.example.test");

    // Default deny: nothing resolves, nothing connects.
    let closed = d.create_sandbox(json!({})).await;
    assert_eq!(closed.network.allow.len(), 0);
    let body = curl(&d, &closed.id, "http://good.example.test/").await;
    assert!(body.starts_with("failed"), "default deny fetched: {body}");
    let body = curl(&d, &closed.id, &format!("http://{good}/")).await;
    assert!(
        body.starts_with("failed"),
        "default deny reached {good}: {body}"
    );
    assert_eq!(dns(&d, &closed.id, "good.example.test", 1).await, "5 0");

    let cidr_ok = net.ip(6);
    let sb = d
        .create_sandbox(json!({"network": {
            "allow": ["good.example.test", "*.wild.test", format!("{cidr_ok}/32")],
            "deny": ["bad.wild.test"],
        }}))
        .await;
    assert_eq!(sb.network.deny.len(), 1);
    let id = sb.id.as_str();

    // An allowed domain works, over HTTP and HTTPS; its sibling does not.
    assert!(ok(
        &curl(&d, id, "http://good.example.test/").await,
        "good.example.test"
    ));
    assert!(ok(
        &curl(&d, id, "https://good.example.test/").await,
        "good.example.test"
    ));
    let body = curl(&d, id, "http://other.example.test/").await;
    assert!(body.starts_with("failed"), "sibling fetched: {body}");
    // Wildcards, and deny beats allow.
    assert!(ok(
        &curl(&d, id, "http://a.wild.test/").await,
        "a.wild.test"
    ));
    assert!(
        curl(&d, id, "http://bad.wild.test/")
            .await
            .starts_with("failed")
    );
    // CIDR allow; another address of the same network stays closed.
    assert!(ok(
        &curl(&d, id, &format!("http://{cidr_ok}/")).await,
        &cidr_ok.to_string()
    ));
    let other_ip = net.ip(7);
    assert!(
        curl(&d, id, &format!("http://{other_ip}/"))
            .await
            .starts_with("failed")
    );
    // An allowed address under a denied name fails, by SNI and by Host.
    for scheme_port in [("https", 443), ("http", 80)] {
        let (scheme, port) = scheme_port;
        let body = curl(
            &d,
            id,
            &format!("--resolve other.example.test:{port}:{good} {scheme}://other.example.test/"),
        )
        .await;
        assert!(
            body.starts_with("failed"),
            "{scheme} under a denied name: {body}"
        );
    }

    // DNS for denied names and TXT records are refused on the host.
    assert_eq!(dns(&d, id, "secret-data.evil.test", 16).await, "5 0");
    assert_eq!(dns(&d, id, "good.example.test", 16).await, "5 0");
    assert_eq!(dns(&d, id, "other.example.test", 1).await, "5 0");
    let asked = net.queries();
    assert!(
        asked.iter().all(|(n, t)| n != "secret-data.evil.test"
            && n != "other.example.test"
            && *t != hickory_proto::rr::RecordType::TXT),
        "denied queries reached the upstream: {asked:?}"
    );

    // Metadata, the host's other services and other sandboxes stay closed.
    assert!(
        curl(&d, id, "http://169.254.169.254/")
            .await
            .starts_with("failed")
    );
    let host = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let gateway = std::net::Ipv4Addr::from(u32::from(inside_ip(&d, id).await) - 1);
    for target in [
        format!("http://{gateway}:{host_port}/"),
        format!("http://{}:{host_port}/", net.host_ip),
    ] {
        assert!(
            curl(&d, id, &target).await.starts_with("failed"),
            "reached {target}"
        );
    }
    let closed_ip = inside_ip(&d, &closed.id).await;
    d.sh_root(
        &closed.id,
        "(python3 -m http.server 8000 >/dev/null 2>&1 &); sleep 1",
    )
    .await;
    assert!(
        curl(&d, id, &format!("http://{closed_ip}:8000/"))
            .await
            .starts_with("failed"),
        "one sandbox reached another"
    );

    // A live update takes effect without a restart.
    let resp = d
        .put(&format!("/v1/sandboxes/{id}/network"))
        .json(&json!({"allow": ["good.example.test", "other.example.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert!(ok(
        &curl(&d, id, "http://other.example.test/").await,
        "other.example.test"
    ));
    assert!(
        curl(&d, id, "http://a.wild.test/")
            .await
            .starts_with("failed")
    );
    let info: warren_api_types::Sandbox = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    assert_eq!(info.network.allow.len(), 2);
    let bad = d
        .put(&format!("/v1/sandboxes/{id}/network"))
        .json(&json!({"allow": ["not a name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Every decision is an event.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events: warren_api_types::NetworkEventList = d
        .get_json(&format!("/v1/sandboxes/{id}/network/events?limit=1000"))
        .await;
    let has = |kind: &str, name: &str, verdict: &str| {
        events
            .events
            .iter()
            .any(|e| e.kind == kind && e.name.as_deref() == Some(name) && e.verdict == verdict)
    };
    assert!(
        has("dns", "good.example.test", "allow"),
        "{:?}",
        events.events
    );
    assert!(has("dns", "bad.wild.test", "deny"));
    assert!(has("tls", "other.example.test", "deny"));
    assert!(has("http", "good.example.test", "allow"));
    assert!(
        events
            .events
            .iter()
            .any(|e| e.kind == "http" && e.verdict == "allow" && e.bytes_in > 0)
    );
}

#[tokio::test]
async fn sandbox_network_policy_survives_pause_resume_fork_and_restart() {
    let (_net, mut d) = setup().await;
    let sb = d
        .create_sandbox(json!({"network": {"allow": ["good.example.test"]}}))
        .await;
    let id = sb.id.as_str();
    assert!(ok(
        &curl(&d, id, "http://good.example.test/").await,
        "good.example.test"
    ));

    let resp = d
        .post(&format!("/v1/sandboxes/{id}/pause"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    assert!(ok(
        &curl(&d, id, "http://good.example.test/").await,
        "good.example.test"
    ));
    assert!(
        curl(&d, id, "http://other.example.test/")
            .await
            .starts_with("failed")
    );

    let resp = d
        .post(&format!("/v1/sandboxes/{id}/fork"))
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let fork: serde_json::Value = serde_json::from_str(&text).expect(&text);
    let branch: warren_api_types::Sandbox =
        serde_json::from_value(fork["sandboxes"][0].clone()).expect(&text);
    assert_eq!(branch.network, sb.network);
    assert!(ok(
        &curl(&d, &branch.id, "http://good.example.test/").await,
        "good.example.test"
    ));
    assert!(
        curl(&d, &branch.id, "http://other.example.test/")
            .await
            .starts_with("failed")
    );

    // A restarted daemon rebuilds every live sandbox's rules.
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    d.restart().await.unwrap();
    for sandbox in [id, branch.id.as_str()] {
        let body = curl(&d, sandbox, "http://good.example.test/").await;
        assert!(ok(&body, "good.example.test"), "after restart: {body}");
        let body = curl(&d, sandbox, "http://other.example.test/").await;
        assert!(body.starts_with("failed"), "after restart: {body}");
    }
}

/// Python inside the sandbox: one UDP datagram to each `host:port`
/// argument, or an ICMP echo request to each `host:icmp`, from a socket of
/// its own.
const UDP_SEND: &str = r#"
import socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(':', 1)
    try:
        if port == 'icmp':
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            s.sendto(b'\x08\x00\x00\x00\x00\x01\x00\x01', (host, 0))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b'x', (host, int(port)))
    except OSError as e:
        print(target, e)
"#;

async fn udp_send(d: &Daemon, id: &str, targets: String) -> warren_e2e::ExecOutput {
    let script = format!("python3 -c \"$UDP\" {targets}");
    d.exec(
        id,
        json!({"cmd": ["bash", "-c", script], "env": {"UDP": UDP_SEND}}),
    )
    .await
}

#[tokio::test]
async fn sandbox_udp_and_icmp_flows_are_events_of_their_own_sandbox() {
    let (net, d) = setup().await;
    let (allowed, denied, other) = (net.ip(6), net.ip(7), net.ip(8));
    let open = d
        .create_sandbox(json!({"network": {"allow": [format!("{allowed}/32")]}}))
        .await;
    let closed = d.create_sandbox(json!({})).await;
    let out = udp_send(
        &d,
        &open.id,
        format!("{allowed}:9999 {denied}:9998 169.254.169.254:5353 {denied}:icmp"),
    )
    .await;
    assert_eq!(out.stdout_str().trim(), "", "sending failed");
    udp_send(&d, &closed.id, format!("{other}:7777")).await;

    let packets = |id: String| {
        let d = &d;
        async move {
            let list: warren_api_types::NetworkEventList = d
                .get_json(&format!("/v1/sandboxes/{id}/network/events?limit=1000"))
                .await;
            list.events
                .into_iter()
                .filter(|e| e.kind == "packet")
                .map(|e| {
                    let dest = e.dest.unwrap_or_default();
                    (dest, e.port, e.verdict, e.reason)
                })
                .collect::<Vec<_>>()
        }
    };
    let want_open = [
        (allowed.to_string(), Some(9999), "allow", None),
        (denied.to_string(), Some(9998), "deny", Some("not_allowed")),
        (
            "169.254.169.254".to_owned(),
            Some(5353),
            "deny",
            Some("always_blocked"),
        ),
        (denied.to_string(), None, "deny", Some("not_allowed")),
    ];
    let want_closed = (other.to_string(), Some(7777), "deny", Some("not_allowed"));
    let has =
        |events: &[(String, Option<u16>, String, Option<String>)],
         (dest, port, verdict, reason): &(String, Option<u16>, &str, Option<&str>)| {
            events.iter().any(|e| {
                &e.0 == dest && e.1 == *port && e.2 == *verdict && e.3.as_deref() == *reason
            })
        };
    // Events reach the store a moment after the packets; wait for them.
    let mut seen = (Vec::new(), Vec::new());
    for _ in 0..50 {
        seen = (
            packets(open.id.clone()).await,
            packets(closed.id.clone()).await,
        );
        if want_open.iter().all(|w| has(&seen.0, w)) && has(&seen.1, &want_closed) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (open_events, closed_events) = seen;
    for want in &want_open {
        assert!(has(&open_events, want), "{want:?} in {open_events:?}");
    }
    assert!(
        has(&closed_events, &want_closed),
        "{want_closed:?} in {closed_events:?}"
    );
    // Each sandbox's events name only its own traffic.
    assert!(
        open_events.iter().all(|e| e.0 != other.to_string()),
        "{open_events:?}"
    );
    assert!(
        closed_events
            .iter()
            .all(|e| want_open.iter().all(|w| e.0 != w.0)),
        "{closed_events:?}"
    );
}

/// Python inside the sandbox: resolves `$1`, opens one connection to its
/// port 80 and sends two requests on it, for `$1` and then for `$2`;
/// prints whatever came back before the connection ended.
const TWO_REQUESTS: &str = r#"
import socket, sys
addr = socket.gethostbyname(sys.argv[1])
s = socket.create_connection((addr, 80), timeout=5)
s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\nGET / HTTP/1.1\r\nHost: %s\r\n\r\n" % (sys.argv[1], sys.argv[2])).encode())
got = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
except socket.timeout:
    pass
print(got.decode(errors="replace"))
"#;

#[tokio::test]
async fn sandbox_a_kept_alive_connection_cannot_switch_to_another_host() {
    let (_net, d) = setup().await;
    let sb = d
        .create_sandbox(json!({"network": {"allow": ["good.example.test"]}}))
        .await;
    let script = "python3 -c \"$PY\" good.example.test other.example.test";
    let out = d
        .exec(
            &sb.id,
            json!({"cmd": ["bash", "-c", script], "env": {"PY": TWO_REQUESTS}}),
        )
        .await;
    let got = out.stdout_str();
    assert!(got.contains("host=good.example.test"), "{got}");
    assert!(
        !got.contains("host=other.example.test"),
        "the second request reached the server: {got}"
    );
}
