//! The sandboxes' DNS resolver against real sockets and a real nftables
//! table: a fake upstream records every message it receives, a "sandbox"
//! sends from its own loopback address (127.0.0.0/8 is all local).

// The sandbox networks of warren-net's own tests.
#[path = "../../net/tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use warren_core::network::NetworkPolicy;
use warren_egress::dns::{Resolver, UPSTREAM_PAYLOAD};
use warren_egress::registry::{Registry, SandboxNet};
use warren_net::Firewall;

const SANDBOX: Ipv4Addr = Ipv4Addr::new(127, 77, 0, 2);
const ANSWER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);
const SLOT: u32 = 1;

/// An upstream answering every A query with [`ANSWER`]; keeps every
/// message it receives.
async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
            keep.lock().unwrap().push(buf[..n].to_vec());
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.queries = q.queries.clone();
            for question in &q.queries {
                r.add_answer(Record::from_rdata(
                    question.name().clone(),
                    120,
                    RData::A(A(ANSWER)),
                ));
            }
            socket.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    (addr, seen)
}

fn query(id: u16, names: &[&str]) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    for name in names {
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    }
    m.to_vec().unwrap()
}

/// Whether `addr` is in the sandbox's set of resolved addresses.
fn in_set(fw: &Firewall, addr: Ipv4Addr) -> bool {
    std::process::Command::new("nft")
        .args([
            "get",
            "element",
            "inet",
            fw.table(),
            &format!("s{SLOT}_dns"),
            &format!("{{ {addr} }}"),
        ])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn root_dns_two_questions_never_reach_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let fw = Firewall::new(dir.path(), "10.91.0.0/24".parse().unwrap());
    fw.install().await.unwrap();
    let _table = common::TableGuard(fw.clone());
    let policy: NetworkPolicy = serde_json::from_str(r#"{"allow":["ok.example.test"]}"#).unwrap();
    fw.apply_sandbox(SLOT, SANDBOX, &policy).await.unwrap();
    let registry = Registry::default();
    registry.set(SandboxNet {
        id: "sb".into(),
        team: "t".into(),
        slot: SLOT,
        addr: SANDBOX,
        policy: Arc::new(policy),
    });
    let (up, seen) = upstream().await;
    let (sink, _events) = warren_egress::EventSink::channel(64);
    let (resolver, tasks) = Resolver::new(up, registry, Some(fw.clone()), sink)
        .serve((Ipv4Addr::LOCALHOST, 0).into())
        .await
        .unwrap();
    let client = UdpSocket::bind((IpAddr::V4(SANDBOX), 0)).await.unwrap();
    client.connect(resolver).await.unwrap();
    let ask = |bytes: Vec<u8>| {
        let client = &client;
        async move {
            client.send(&bytes).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            Message::from_vec(&buf[..n]).unwrap()
        }
    };

    // The first question allowed, the second denied: FORMERR, and the
    // upstream sees nothing.
    let reply = ask(query(4242, &["ok.example.test.", "secret.evil.test."])).await;
    assert_eq!(reply.metadata.id, 4242);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert!(reply.answers.is_empty());
    assert!(
        seen.lock().unwrap().is_empty(),
        "a two-question message reached the upstream"
    );

    // One allowed question: answered, and its address is in the set by
    // the time the answer arrives.
    assert!(!in_set(&fw, ANSWER));
    let reply = ask(query(4243, &["ok.example.test."])).await;
    assert_eq!(reply.metadata.id, 4243);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    assert!(
        in_set(&fw, ANSWER),
        "answered before the address was in the set"
    );

    // What the upstream got is the resolver's own query: one question,
    // and an EDNS OPT the client never sent.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let asked = Message::from_vec(&seen[0]).unwrap();
    assert_eq!(asked.queries.len(), 1);
    assert_eq!(asked.queries[0].name().to_ascii(), "ok.example.test.");
    assert_eq!(asked.edns.map(|e| e.max_payload()), Some(UPSTREAM_PAYLOAD));

    for t in tasks {
        t.abort();
    }
}
