//! The sandboxes' DNS resolver: one UDP and one TCP listener on the host
//! (the firewall redirects every sandbox's port-53 traffic to them), the
//! sandbox identified by the query's source address through the
//! [`Registry`].
//!
//! Protocol, per query (the first question of the message):
//! - source not a known sandbox, or not a parseable query: no answer;
//! - the name is denied by the sandbox's policy, or the type is not A,
//!   AAAA or CNAME: `REFUSED`, and nothing leaves the host (no TXT or other
//!   record tunnelling, not even for allowed names);
//! - otherwise the query is forwarded unchanged to the upstream (UDP for
//!   UDP, TCP for TCP); of the answer's A/AAAA records only those whose
//!   address `decide_resolved` allows are kept (a denied or private
//!   address is removed from the answer, not only blocked), the IPv4 ones
//!   are added to the sandbox's nftables set with the record's TTL before
//!   the answer is sent, and every kept address is remembered for the
//!   egress proxy;
//! - the upstream failing or not answering within [`UPSTREAM_TIMEOUT`]:
//!   `SERVFAIL`.
//!
//! Every query becomes a [`NetEvent`] of kind `dns`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use warren_core::network::{DenyReason, Verdict, normalize_name};

use crate::egress::{NetEvent, NetEventKind};
use crate::error::NetError;
use crate::firewall::Firewall;
use crate::registry::{Registry, SandboxNet};
use crate::sink::EventSink;

/// How long the upstream may take to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Largest DNS message over UDP we read (EDNS sizes included).
const UDP_MAX: usize = 4096;

/// Shared state of the resolver's listeners.
#[derive(Debug, Clone)]
pub struct Resolver {
    upstream: SocketAddr,
    registry: Registry,
    firewall: Option<Firewall>,
    sink: EventSink,
}

/// What a query came to.
struct Outcome {
    reply: Vec<u8>,
    event: NetEvent,
}

impl Resolver {
    /// A resolver forwarding allowed queries to `upstream`, feeding
    /// returned addresses into `firewall`'s sandbox sets (none in unit
    /// tests).
    pub fn new(
        upstream: SocketAddr,
        registry: Registry,
        firewall: Option<Firewall>,
        sink: EventSink,
    ) -> Self {
        Self {
            upstream,
            registry,
            firewall,
            sink,
        }
    }

    /// Binds UDP and TCP on `addr` and serves until the returned tasks are
    /// aborted. Returns the bound address (port 0 picks one).
    pub async fn serve(
        self,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, Vec<tokio::task::JoinHandle<()>>), NetError> {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| NetError::io(format!("binding the DNS resolver to udp {addr}"), e))?;
        let bound = udp
            .local_addr()
            .map_err(|e| NetError::io("DNS resolver address", e))?;
        let tcp = TcpListener::bind(bound)
            .await
            .map_err(|e| NetError::io(format!("binding the DNS resolver to tcp {bound}"), e))?;
        let me = Arc::new(self);
        let udp_task = tokio::spawn(me.clone().serve_udp(Arc::new(udp)));
        let tcp_task = tokio::spawn(me.serve_tcp(tcp));
        Ok((bound, vec![udp_task, tcp_task]))
    }

    async fn serve_udp(self: Arc<Self>, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; UDP_MAX];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "DNS resolver: receive failed");
                    continue;
                }
            };
            let query = buf[..n].to_vec();
            let me = self.clone();
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Some(out) = me.answer(peer.ip(), &query, false).await {
                    let _ = socket.send_to(&out.reply, peer).await;
                    me.sink.emit(out.event);
                }
            });
        }
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.serve_tcp_client(stream, peer.ip()).await;
            });
        }
    }

    async fn serve_tcp_client(&self, mut stream: TcpStream, peer: IpAddr) -> std::io::Result<()> {
        let _ = stream.set_nodelay(true);
        loop {
            let Ok(query) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await else {
                return Ok(());
            };
            let query = query?;
            let Some(out) = self.answer(peer, &query, true).await else {
                return Ok(());
            };
            write_framed(&mut stream, &out.reply).await?;
            self.sink.emit(out.event);
        }
    }

    /// The reply to `query` from `source`, or `None` for no reply at all.
    async fn answer(&self, source: IpAddr, query: &[u8], tcp: bool) -> Option<Outcome> {
        let sandbox = self.registry.get(source)?;
        let msg = Message::from_vec(query).ok()?;
        if msg.metadata.message_type != MessageType::Query {
            return None;
        }
        let q = msg.queries.first()?;
        let name = normalize_name(&q.name().to_ascii());
        let qtype = q.query_type();
        let mut event = NetEvent {
            kind: NetEventKind::Dns,
            source,
            dest: None,
            port: Some(53),
            name: Some(name.clone()),
            verdict: Verdict::Allow,
            bytes_out: query.len() as u64,
            bytes_in: 0,
        };
        let verdict = match sandbox.policy.decide_name(&name) {
            Verdict::Allow
                if !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::CNAME) =>
            {
                Verdict::Deny(DenyReason::NotAllowed)
            }
            v => v,
        };
        if !verdict.is_allowed() || msg.metadata.op_code != OpCode::Query {
            event.verdict = verdict;
            let reply = refusal(&msg, ResponseCode::Refused)?;
            event.bytes_in = reply.len() as u64;
            return Some(Outcome { reply, event });
        }
        let upstream = if tcp {
            self.ask_tcp(query).await
        } else {
            self.ask_udp(query).await
        };
        let reply = match upstream.and_then(|r| Message::from_vec(&r).ok()) {
            Some(reply) if reply.metadata.id == msg.metadata.id => {
                self.filter(&sandbox, &name, reply, &mut event).await
            }
            _ => refusal(&msg, ResponseCode::ServFail),
        }?;
        event.bytes_in = reply.len() as u64;
        Some(Outcome { reply, event })
    }

    /// Keeps the answer's addresses the policy allows, feeds them to the
    /// firewall and the registry, and encodes the reply.
    async fn filter(
        &self,
        sandbox: &SandboxNet,
        name: &str,
        mut reply: Message,
        event: &mut NetEvent,
    ) -> Option<Vec<u8>> {
        let mut kept = Vec::new();
        let mut refused = None;
        let mut ttl = u32::MAX;
        reply.answers.retain(|r| {
            let addr = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => return true,
            };
            match sandbox.policy.decide_resolved(name, addr) {
                Verdict::Allow => {
                    kept.push(addr);
                    ttl = ttl.min(r.ttl);
                    true
                }
                denied => {
                    refused.get_or_insert((addr, denied));
                    false
                }
            }
        });
        let ttl = Duration::from_secs(u64::from(if kept.is_empty() { 0 } else { ttl }));
        let v4: Vec<Ipv4Addr> = kept
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        if let Some(fw) = &self.firewall
            && let Err(e) = fw.add_resolved(sandbox.slot, &v4, ttl).await
        {
            tracing::warn!(sandbox = %sandbox.id, error = %e, "could not add resolved addresses");
        }
        if !kept.is_empty() {
            self.registry.remember(sandbox.addr, name, &kept, ttl);
        }
        match (kept.first(), refused) {
            (Some(a), _) => event.dest = Some(*a),
            (None, Some((a, denied))) => {
                event.dest = Some(a);
                event.verdict = denied;
            }
            (None, None) => {}
        }
        reply.to_vec().ok()
    }

    async fn ask_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        let bind: SocketAddr = if self.upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await.ok()?;
        socket.connect(self.upstream).await.ok()?;
        socket.send(query).await.ok()?;
        let mut buf = vec![0u8; UDP_MAX];
        let n = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        buf.truncate(n);
        Some(buf)
    }

    async fn ask_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            let mut s = TcpStream::connect(self.upstream).await.ok()?;
            write_framed(&mut s, query).await.ok()?;
            read_framed(&mut s).await.ok()
        })
        .await
        .ok()?
    }
}

/// A reply to `query` with no records and `code`.
fn refusal(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut reply = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.queries = query.queries.clone();
    reply.to_vec().ok()
}

async fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_framed(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    s.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{Name, Record};
    use warren_core::network::NetworkPolicy;

    use super::*;

    /// An upstream answering every A query with 198.18.0.9 and
    /// 10.1.2.3 (TTL 120) and every TXT query with a record; counts
    /// the queries it saw.
    async fn upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut r = Message::response(q.metadata.id, OpCode::Query);
                r.queries = q.queries.clone();
                let qn = q.queries[0].name().clone();
                if q.queries[0].query_type() == RecordType::TXT {
                    r.add_answer(Record::from_rdata(
                        qn,
                        60,
                        RData::TXT(TXT::new(vec!["x".into()])),
                    ));
                } else {
                    for a in [Ipv4Addr::new(198, 18, 0, 9), Ipv4Addr::new(10, 1, 2, 3)] {
                        r.add_answer(Record::from_rdata(qn.clone(), 120, RData::A(A(a))));
                    }
                }
                socket.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
            }
        });
        (addr, seen)
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn resolver(upstream: SocketAddr, policy: &str) -> (Resolver, Registry, IpAddr) {
        let registry = Registry::default();
        let addr = Ipv4Addr::new(10, 0, 0, 2);
        registry.set(SandboxNet {
            id: "sb".into(),
            team: "t".into(),
            slot: 0,
            addr,
            policy: Arc::new(serde_json::from_str::<NetworkPolicy>(policy).unwrap()),
        });
        let (sink, _rx) = EventSink::channel(16);
        (
            Resolver::new(upstream, registry.clone(), None, sink),
            registry,
            IpAddr::V4(addr),
        )
    }

    #[tokio::test]
    async fn allowed_names_are_forwarded_and_private_answers_removed() {
        let (up, seen) = upstream().await;
        let (r, registry, src) = resolver(up, r#"{"allow":["*.example.test"]}"#);
        let out = r
            .answer(src, &query("www.example.test.", RecordType::A), false)
            .await
            .unwrap();
        let reply = Message::from_vec(&out.reply).unwrap();
        assert_eq!(reply.metadata.id, 4242);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let addrs: Vec<_> = reply.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(addrs, vec![RData::A(A(Ipv4Addr::new(198, 18, 0, 9)))]);
        assert!(out.event.verdict.is_allowed());
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        let IpAddr::V4(src4) = src else { panic!() };
        assert_eq!(
            registry.names_for(src4, "198.18.0.9".parse().unwrap()),
            vec!["www.example.test".to_owned()]
        );
    }

    #[tokio::test]
    async fn denied_names_and_other_types_never_reach_the_upstream() {
        let (up, seen) = upstream().await;
        let (r, _, src) = resolver(up, r#"{"allow":["ok.example.test"]}"#);
        for (name, t) in [
            ("secret.evil.test.", RecordType::TXT),
            ("secret.evil.test.", RecordType::A),
            ("ok.example.test.", RecordType::TXT),
            ("ok.example.test.", RecordType::MX),
        ] {
            let out = r.answer(src, &query(name, t), false).await.unwrap();
            let reply = Message::from_vec(&out.reply).unwrap();
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::Refused,
                "{name} {t}"
            );
            assert!(reply.answers.is_empty());
            assert!(!out.event.verdict.is_allowed());
        }
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Unknown sources get no answer at all.
        assert!(
            r.answer(
                "10.0.0.6".parse().unwrap(),
                &query("ok.example.test.", RecordType::A),
                false
            )
            .await
            .is_none()
        );
    }
}
