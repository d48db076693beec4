//! Measures how long the resolver takes to answer a name it has not seen
//! (so its address must go into the sandbox's nftables set first): one
//! query at a time, and a burst of concurrent ones. Needs root.
//!
//! `cargo run -p warren-egress --example dns_first_answer`

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use warren_core::network::NetworkPolicy;
use warren_egress::EventSink;
use warren_egress::dns::Resolver;
use warren_egress::registry::{Registry, SandboxNet};
use warren_net::Firewall;

const SANDBOX: Ipv4Addr = Ipv4Addr::new(127, 77, 0, 2);
const ROUNDS: u16 = 100;
const BURST: u16 = 50;

/// Answers `n<i>.example.test` with 198.18.(i/256).(i%256).
async fn upstream() -> std::net::SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
            let q = Message::from_vec(&buf[..n]).unwrap();
            let name = q.queries[0].name().clone();
            let i: u16 = name.to_ascii()[1..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.queries = q.queries.clone();
            let a = A::new(198, 18, (i >> 8) as u8, i as u8);
            r.add_answer(Record::from_rdata(name, 300, RData::A(a)));
            socket.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    addr
}

async fn ask(resolver: std::net::SocketAddr, i: u16) -> Duration {
    let client = UdpSocket::bind((IpAddr::V4(SANDBOX), 0)).await.unwrap();
    let mut m = Message::query();
    m.add_query(Query::query(
        Name::from_ascii(format!("n{i}.example.test.")).unwrap(),
        RecordType::A,
    ));
    let start = Instant::now();
    client
        .send_to(&m.to_vec().unwrap(), resolver)
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    client.recv(&mut buf).await.unwrap();
    start.elapsed()
}

fn summary(what: &str, mut t: Vec<Duration>) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        t.len(),
        ms(t[t.len() / 2]),
        ms(t[t.len() * 9 / 10]),
        ms(t[t.len() - 1])
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let fw = Firewall::new(dir.path(), "10.92.0.0/24".parse().unwrap());
    fw.install().await.unwrap();
    let policy: NetworkPolicy = serde_json::from_str(r#"{"allow":["*.example.test"]}"#).unwrap();
    fw.apply_sandbox(1, SANDBOX, &policy).await.unwrap();
    let registry = Registry::default();
    registry.set(SandboxNet {
        id: "sb".into(),
        team: "t".into(),
        slot: 1,
        addr: SANDBOX,
        policy: Arc::new(policy),
    });
    let (sink, mut events) = EventSink::channel(100_000);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let (resolver, _tasks) = Resolver::new(upstream().await, registry, Some(fw.clone()), sink)
        .serve((Ipv4Addr::LOCALHOST, 0).into())
        .await
        .unwrap();
    let mut one = Vec::new();
    for i in 0..ROUNDS {
        one.push(ask(resolver, i).await);
    }
    summary("one new name at a time", one);
    let start = Instant::now();
    let burst: Vec<_> = (0..BURST)
        .map(|i| tokio::spawn(ask(resolver, 1000 + i)))
        .collect();
    let mut each = Vec::new();
    for b in burst {
        each.push(b.await.unwrap());
    }
    let total = start.elapsed();
    summary(&format!("{BURST} new names at once"), each);
    println!(
        "{BURST} new names at once: all answered after {:.2} ms",
        total.as_secs_f64() * 1000.0
    );
    fw.remove().await.unwrap();
}
