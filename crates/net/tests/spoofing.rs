//! A sandbox cannot send with another source address than its own: two
//! sandbox networks made by the runtime's own functions, a UDP listener on
//! the host, and a sender inside one namespace that binds addresses it
//! added to its interface (another sandbox's, one outside the pool). Each
//! layer is shown on its own: the nftables guard with reverse-path
//! filtering off, and reverse-path filtering with the guard removed.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::TestSandbox;
use tokio::net::UdpSocket;
use warren_net::AddressPool;

/// Inside the sandbox: one datagram `tag` from each `source` argument
/// (`source:tag`), to `argv[1]:argv[2]`.
const SEND: &str = r#"
import socket, sys
dest = (sys.argv[1], int(sys.argv[2]))
for arg in sys.argv[3:]:
    source, tag = arg.split(':')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.sendto(tag.encode(), dest)
print("sent")
"#;

/// Everything the listener got, until the datagram `marker` (sent last,
/// from the real address) and a little after.
async fn received(listener: &UdpSocket, marker: &str) -> Vec<(Ipv4Addr, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    let mut wait = Duration::from_secs(5);
    loop {
        match tokio::time::timeout(wait, listener.recv_from(&mut buf)).await {
            Ok(Ok((n, SocketAddr::V4(from)))) => {
                let tag = String::from_utf8_lossy(&buf[..n]).into_owned();
                if tag == marker {
                    // Stragglers sent before the marker get a moment more.
                    wait = Duration::from_millis(200);
                }
                got.push((*from.ip(), tag));
            }
            Ok(_) => panic!("receive failed"),
            Err(_) if got.iter().any(|(_, t)| t == marker) => return got,
            Err(_) => panic!("the marker never arrived: {got:?}"),
        }
    }
}

/// Packets the guard of `sb`'s veth has dropped.
fn guard_drops(sb: &TestSandbox) -> u64 {
    let table = warren_net::source_guard_table(&sb.names.host_veth);
    let out = std::process::Command::new("nft")
        .args(["list", "table", "netdev", &table])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let at = text.find("counter packets ").expect("the guard's counter") + 16;
    text[at..].split(' ').next().unwrap().parse().unwrap()
}

fn rp_filter(sb: &TestSandbox) -> String {
    let path = format!("/proc/sys/net/ipv4/conf/{}/rp_filter", sb.names.host_veth);
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

fn set_rp_filter(sb: &TestSandbox, value: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{}/rp_filter", sb.names.host_veth);
    std::fs::write(path, value).unwrap();
}

#[tokio::test]
async fn root_sandbox_source_addresses_cannot_be_spoofed() {
    let pool: AddressPool = "10.90.2.0/24".parse().unwrap();
    let a = TestSandbox::create(pool, 1).await;
    let b = TestSandbox::create(pool, 2).await;
    let outside = Ipv4Addr::new(192, 0, 2, 77);
    let real = a.addrs.sandbox;
    let other = b.addrs.sandbox;
    assert_eq!(
        rp_filter(&a),
        "1",
        "strict reverse-path filtering on the host end"
    );

    let listener = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let host = a.addrs.host.to_string();
    for extra in [other, outside] {
        a.ip(&["addr", "add", &format!("{extra}/32"), "dev", "eth0"]);
    }
    let send = |phase: &'static str| {
        let (a, host, port) = (&a, &host, &port);
        async move {
            let args = [
                host.clone(),
                port.clone(),
                format!("{other}:{phase}-other"),
                format!("{outside}:{phase}-outside"),
                format!("{real}:{phase}-real"),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_eq!(a.python(SEND, &args).await.trim(), "sent");
        }
    };

    // Both layers: only the real address gets through.
    let before = guard_drops(&a);
    send("both").await;
    let got = received(&listener, "both-real").await;
    assert_eq!(
        got,
        vec![(real, "both-real".to_owned())],
        "spoofed datagrams arrived"
    );
    assert!(guard_drops(&a) >= before + 2);

    // The nftables guard alone (reverse-path filtering off).
    set_rp_filter(&a, "0");
    let before = guard_drops(&a);
    send("guard").await;
    let got = received(&listener, "guard-real").await;
    assert_eq!(
        got,
        vec![(real, "guard-real".to_owned())],
        "spoofed datagrams arrived"
    );
    assert!(guard_drops(&a) >= before + 2);

    // Reverse-path filtering alone (the guard removed).
    set_rp_filter(&a, "1");
    let removed = std::process::Command::new("nft")
        .args([
            "delete",
            "table",
            "netdev",
            &warren_net::source_guard_table(&a.names.host_veth),
        ])
        .status()
        .unwrap();
    assert!(removed.success());
    send("rp").await;
    let got = received(&listener, "rp-real").await;
    assert_eq!(
        got,
        vec![(real, "rp-real".to_owned())],
        "spoofed datagrams arrived"
    );

    for sb in [&a, &b] {
        warren_net::link::remove(&sb.names).await.unwrap();
        let table = warren_net::source_guard_table(&sb.names.host_veth);
        let listed = std::process::Command::new("nft")
            .args(["list", "table", "netdev", &table])
            .output()
            .unwrap();
        assert!(!listed.status.success(), "{table} outlived its veth");
    }
}
