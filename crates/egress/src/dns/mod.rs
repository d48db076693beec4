//! The sandboxes' DNS resolver: one UDP and one TCP listener on the host
//! (the firewall redirects every sandbox's port-53 traffic to them), the
//! sandbox identified by the message's source address through the
//! [`Registry`] (the firewall drops anything from a sandbox's veth whose
//! source is not that sandbox's address, so it cannot be forged).
//!
//! Protocol, per message:
//! - source not a known sandbox, a response, or shorter than a DNS header:
//!   no answer;
//! - over the sandbox's query rate ([`limit`]): `REFUSED` without
//!   contacting the upstream, an event at most once a second;
//! - not a standard query with exactly one question and no records but an
//!   EDNS OPT ([`check`]): `FORMERR`;
//! - the name is denied by the sandbox's policy, the type is not A, AAAA or
//!   CNAME, or the class is not IN: `REFUSED`, and nothing leaves the host
//!   (no TXT or other record tunnelling, not even for allowed names);
//! - otherwise the resolver asks the upstream a query of its own making
//!   ([`upstream`]: fresh random id, the one question, RD, its own EDNS
//!   OPT), over UDP through one shared socket (UDP clients) or a TCP
//!   connection (TCP clients), and builds the client's reply itself: the
//!   client's id and question, the upstream's response code (NOERROR and
//!   NXDOMAIN; anything else is SERVFAIL), the A, AAAA and CNAME records of
//!   the answer of which only the addresses `decide_resolved` allows are
//!   kept (a denied or private address is removed, not only blocked), the
//!   SOA of the authority section, an EDNS OPT when the client sent one. A
//!   UDP reply larger than the client takes (512 bytes, or its EDNS size)
//!   goes out truncated (TC, no records), and so does a reply the upstream
//!   truncated: the client asks again over TCP;
//! - the kept IPv4 addresses are added to the sandbox's nftables set with
//!   the record's TTL, in batches ([`warren_net::ResolvedBatcher`]),
//!   before the reply is sent, and every kept address is remembered for the egress
//!   proxy;
//! - the upstream failing or not answering within [`UPSTREAM_TIMEOUT`]:
//!   `SERVFAIL`.
//!
//! No byte of a client's message is ever forwarded. Every message answered
//! becomes a [`NetEvent`] of kind `dns` (rate-limited ones: see above).

mod check;
mod limit;
mod upstream;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::OnceCell;
use warren_core::network::{DenyReason, Verdict, normalize_name};
use warren_net::{Firewall, ResolvedBatcher};

pub use limit::{QUERY_BURST, QUERY_RATE};
pub use upstream::UPSTREAM_PAYLOAD;

use crate::egress::{NetEvent, NetEventKind};
use crate::error::EgressError;
use crate::registry::{Registry, SandboxNet};
use crate::sink::EventSink;
use check::{ClientQuery, Inspected, error_reply, inspect, internet_class};
use limit::{Limiter, Take};
use upstream::{UdpUpstream, ask_tcp};

/// How long the upstream may take to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Largest DNS message over UDP we read (EDNS sizes included).
const UDP_MAX: usize = 4096;

/// Shared state of the resolver's listeners.
#[derive(Clone)]
pub struct Resolver {
    upstream: SocketAddr,
    registry: Registry,
    firewall: Option<Firewall>,
    sink: EventSink,
    limiter: Arc<Limiter>,
    /// The shared upstream socket, opened at the first query.
    udp: Arc<OnceCell<UdpUpstream>>,
    /// The set updater, started at the first answer with addresses.
    batcher: Arc<OnceLock<ResolvedBatcher>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("upstream", &self.upstream)
            .field("firewall", &self.firewall.as_ref().map(Firewall::table))
            .finish()
    }
}

/// What a message came to.
struct Outcome {
    reply: Vec<u8>,
    event: Option<NetEvent>,
}

impl Resolver {
    /// A resolver asking `upstream` for allowed names, feeding returned
    /// addresses into `firewall`'s sandbox sets (none in unit tests).
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
            limiter: Arc::default(),
            udp: Arc::default(),
            batcher: Arc::default(),
        }
    }

    /// Replaces the per-sandbox query rate ([`QUERY_RATE`] a second, bursts
    /// of [`QUERY_BURST`], by default).
    pub fn with_query_rate(mut self, per_second: u32, burst: u32) -> Self {
        self.limiter = Arc::new(Limiter::new(per_second, burst));
        self
    }

    /// Binds UDP and TCP on `addr` and serves until the returned tasks are
    /// aborted. Returns the bound address (port 0 picks one).
    pub async fn serve(
        self,
        addr: SocketAddr,
    ) -> Result<(SocketAddr, Vec<tokio::task::JoinHandle<()>>), EgressError> {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| EgressError::io(format!("binding the DNS resolver to udp {addr}"), e))?;
        let bound = udp
            .local_addr()
            .map_err(|e| EgressError::io("DNS resolver address", e))?;
        let tcp = TcpListener::bind(bound)
            .await
            .map_err(|e| EgressError::io(format!("binding the DNS resolver to tcp {bound}"), e))?;
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
                    if let Some(event) = out.event {
                        me.sink.emit(event);
                    }
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
            if let Some(event) = out.event {
                self.sink.emit(event);
            }
        }
    }

    /// The reply to `query` from `source`, or `None` for no reply at all.
    async fn answer(&self, source: IpAddr, query: &[u8], tcp: bool) -> Option<Outcome> {
        let sandbox = self.registry.get(source)?;
        let inspected = inspect(query);
        let mut event = NetEvent {
            kind: NetEventKind::Dns,
            source,
            dest: None,
            port: Some(53),
            name: None,
            verdict: Verdict::Allow,
            bytes_out: query.len() as u64,
            bytes_in: 0,
        };
        let q = match inspected {
            Inspected::Ignore => return None,
            Inspected::Malformed { id, name } => {
                let limited = self.limited(&sandbox, id, None, &mut event);
                if limited.is_some() {
                    return limited;
                }
                event.name = name.map(|n| normalize_name(&n));
                return Some(refuse(
                    error_reply(id, None, ResponseCode::FormErr),
                    event,
                    DenyReason::Malformed,
                ));
            }
            Inspected::Query(q) => q,
        };
        let name = normalize_name(&q.question.name().to_ascii());
        event.name = Some(name.clone());
        if let Some(limited) = self.limited(&sandbox, q.id, Some(&q), &mut event) {
            return Some(limited);
        }
        let qtype = q.question.query_type();
        let verdict = match sandbox.policy.decide_name(&name) {
            Verdict::Allow
                if !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::CNAME)
                    || !internet_class(&q.question) =>
            {
                Verdict::Deny(DenyReason::NotAllowed)
            }
            v => v,
        };
        if let Verdict::Deny(reason) = verdict {
            return Some(refuse(
                error_reply(q.id, Some(&q), ResponseCode::Refused),
                event,
                reason,
            ));
        }
        let asked = if tcp {
            ask_tcp(self.upstream, &q.question, q.checking_disabled).await
        } else {
            match self
                .udp
                .get_or_try_init(|| UdpUpstream::open(self.upstream))
                .await
            {
                Ok(udp) => udp.ask(&q.question, q.checking_disabled).await,
                Err(e) => Err(e),
            }
        };
        let reply = match asked {
            Ok(upstream) => {
                self.reply(&sandbox, &name, &q, upstream, tcp, &mut event)
                    .await
            }
            Err(e) => {
                tracing::debug!(sandbox = %sandbox.id, name, error = %warren_core::error::chain(&e), "DNS upstream failed");
                error_reply(q.id, Some(&q), ResponseCode::ServFail)
            }
        };
        event.bytes_in = reply.len() as u64;
        Some(Outcome {
            reply,
            event: Some(event),
        })
    }

    /// `REFUSED` when the sandbox is over its query rate (an event only
    /// for the first refusal of a second); `None` when it is not.
    fn limited(
        &self,
        sandbox: &SandboxNet,
        id: u16,
        q: Option<&ClientQuery>,
        event: &mut NetEvent,
    ) -> Option<Outcome> {
        let Take::Limited { report, unreported } = self.limiter.take(sandbox.addr, Instant::now())
        else {
            return None;
        };
        let reply = error_reply(id, q, ResponseCode::Refused);
        if !report {
            return Some(Outcome { reply, event: None });
        }
        tracing::info!(sandbox = %sandbox.id, unreported, "DNS queries over the sandbox's rate are refused");
        Some(refuse(reply, event.clone(), DenyReason::RateLimited))
    }

    /// The client's reply from the upstream's answer (module docs): keeps
    /// the addresses the policy allows, feeds them to the firewall and the
    /// registry, and encodes it.
    async fn reply(
        &self,
        sandbox: &SandboxNet,
        name: &str,
        q: &ClientQuery,
        upstream: Message,
        tcp: bool,
        event: &mut NetEvent,
    ) -> Vec<u8> {
        let code = match upstream.metadata.response_code {
            c @ (ResponseCode::NoError | ResponseCode::NXDomain) => c,
            _ => ResponseCode::ServFail,
        };
        let mut reply = Message::error_msg(q.id, OpCode::Query, code);
        reply.metadata.recursion_desired = q.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.checking_disabled = q.checking_disabled;
        reply.queries = vec![q.question.clone()];
        if q.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(UPSTREAM_PAYLOAD);
            reply.set_edns(edns);
        }
        if upstream.metadata.truncation && !tcp {
            reply.metadata.truncation = true;
            return reply.to_vec().unwrap_or_default();
        }
        if code == ResponseCode::NoError {
            reply.answers = self.keep(sandbox, name, upstream.answers, event).await;
        }
        reply.authorities = upstream
            .authorities
            .into_iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .collect();
        let bytes = reply.to_vec().unwrap_or_default();
        if tcp || bytes.len() <= q.max_reply {
            return bytes;
        }
        reply.answers.clear();
        reply.authorities.clear();
        reply.metadata.truncation = true;
        reply.to_vec().unwrap_or_default()
    }

    /// The A, AAAA and CNAME records of `answers` whose addresses the
    /// policy allows; the kept addresses are in the sandbox's set and
    /// memory when this returns.
    async fn keep(
        &self,
        sandbox: &SandboxNet,
        name: &str,
        mut answers: Vec<Record>,
        event: &mut NetEvent,
    ) -> Vec<Record> {
        let mut kept = Vec::new();
        let mut refused = None;
        let mut ttl = u32::MAX;
        answers.retain(|r| {
            let addr = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                RData::CNAME(_) => return true,
                _ => return false,
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
        // The set and the memory are updated together, so an answer the
        // memory still holds fresh is also still in the set: a repeated
        // query costs no nft process.
        if !kept.is_empty() && !self.registry.is_fresh(sandbox.addr, name, &kept, ttl) {
            if let Some(fw) = &self.firewall {
                let batcher = self
                    .batcher
                    .get_or_init(|| ResolvedBatcher::start(fw.clone()));
                if let Err(e) = batcher.add(sandbox.slot, &v4, ttl).await {
                    tracing::warn!(sandbox = %sandbox.id, error = %warren_core::error::chain(&e), "could not add resolved addresses");
                }
            }
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
        answers
    }
}

/// An outcome refusing with `reply` for `reason`.
fn refuse(reply: Vec<u8>, mut event: NetEvent, reason: DenyReason) -> Outcome {
    event.verdict = Verdict::Deny(reason);
    event.bytes_in = reply.len() as u64;
    Outcome {
        reply,
        event: Some(event),
    }
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
mod fuzz;

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
                    if qn.to_ascii().starts_with("many.") {
                        for i in 0..60 {
                            let a = A::new(198, 18, 1, i);
                            r.add_answer(Record::from_rdata(qn.clone(), 120, RData::A(a)));
                        }
                    }
                    r.add_answer(Record::from_rdata(
                        qn.clone(),
                        120,
                        RData::TXT(TXT::new(vec!["extra".into()])),
                    ));
                }
                // A forged reply under another id comes first; it must be
                // ignored.
                let mut forged = r.clone();
                forged.metadata.id = q.metadata.id.wrapping_add(1);
                forged.answers.truncate(1);
                forged.answers[0] = Record::from_rdata(
                    forged.answers[0].name.clone(),
                    120,
                    RData::A(A::new(198, 18, 6, 6)),
                );
                socket
                    .send_to(&forged.to_vec().unwrap(), peer)
                    .await
                    .unwrap();
                socket.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
            }
        });
        (addr, seen)
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        query_of(&[name], t)
    }

    fn query_of(names: &[&str], t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        for name in names {
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        }
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
            .answer(src, &query("Www.Example.test.", RecordType::A), false)
            .await
            .unwrap();
        let reply = Message::from_vec(&out.reply).unwrap();
        assert_eq!(reply.metadata.id, 4242);
        assert_eq!(
            reply.queries[0].name().to_ascii(),
            "Www.Example.test.",
            "the client's own question, case included"
        );
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let addrs: Vec<_> = reply.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(addrs, vec![RData::A(A(Ipv4Addr::new(198, 18, 0, 9)))]);
        assert!(out.event.unwrap().verdict.is_allowed());
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
            assert!(!out.event.unwrap().verdict.is_allowed());
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

    #[tokio::test]
    async fn a_message_that_is_not_one_question_is_formerr_and_never_asked() {
        let (up, seen) = upstream().await;
        let (r, _, src) = resolver(up, r#"{"allow":["ok.example.test"]}"#);
        for msg in [
            query_of(&["ok.example.test.", "secret.evil.test."], RecordType::A),
            query_of(&[], RecordType::A),
        ] {
            for tcp in [false, true] {
                let out = r.answer(src, &msg, tcp).await.unwrap();
                let reply = Message::from_vec(&out.reply).unwrap();
                assert_eq!(reply.metadata.id, 4242);
                assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
                assert!(reply.answers.is_empty());
                assert_eq!(
                    out.event.unwrap().verdict,
                    Verdict::Deny(DenyReason::Malformed)
                );
            }
        }
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn over_the_rate_is_refused_without_asking_and_reported_once() {
        let (up, seen) = upstream().await;
        let (r, _, src) = resolver(up, r#"{"allow":["ok.example.test"]}"#);
        let r = r.with_query_rate(1, 2);
        let q = query("ok.example.test.", RecordType::A);
        for _ in 0..2 {
            let out = r.answer(src, &q, false).await.unwrap();
            let reply = Message::from_vec(&out.reply).unwrap();
            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        }
        let mut reported = 0;
        for _ in 0..5 {
            let out = r.answer(src, &q, false).await.unwrap();
            let reply = Message::from_vec(&out.reply).unwrap();
            assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
            assert_eq!(reply.metadata.id, 4242);
            if let Some(e) = out.event {
                assert_eq!(e.verdict, Verdict::Deny(DenyReason::RateLimited));
                reported += 1;
            }
        }
        assert_eq!(reported, 1, "one event for a burst of refusals");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn small_clients_get_a_truncated_reply() {
        let (up, _) = upstream().await;
        let (r, _, src) = resolver(up, r#"{"allow":["*.example.test"]}"#);
        // 61 addresses do not fit in 512 bytes, but in 1232.
        let out = r
            .answer(src, &query("many.example.test.", RecordType::A), false)
            .await
            .unwrap();
        let reply = Message::from_vec(&out.reply).unwrap();
        assert!(out.reply.len() <= 512);
        assert!(reply.metadata.truncation && reply.answers.is_empty());
        let mut m = Message::from_vec(&query("many.example.test.", RecordType::A)).unwrap();
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        let out = r.answer(src, &m.to_vec().unwrap(), false).await.unwrap();
        let reply = Message::from_vec(&out.reply).unwrap();
        assert!(!reply.metadata.truncation);
        assert_eq!(reply.answers.len(), 61);
        assert!(reply.edns.is_some(), "EDNS in, EDNS out");
        // Over TCP nothing is truncated.
        let out = r
            .answer(src, &query("many.example.test.", RecordType::A), true)
            .await;
        assert!(out.is_some());
    }
}
