//! Asking the upstream resolver: always a query of the resolver's own
//! making ([`upstream_query`]: a fresh random id, the one question, RD set,
//! an EDNS OPT advertising [`UPSTREAM_PAYLOAD`]), never a client's bytes.
//!
//! UDP goes through one socket shared by every query, connected to the
//! upstream (the kernel drops datagrams from any other source). Each query
//! in flight holds its id in a table; a reply is delivered only when its id
//! is in the table and its question is the one asked (name compared
//! case-insensitively, type and class), otherwise it is ignored and the
//! query keeps waiting until [`super::UPSTREAM_TIMEOUT`]. TCP opens one
//! connection per query and checks id and question the same way.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;

use super::{UDP_MAX, UPSTREAM_TIMEOUT, read_framed, write_framed};

/// The UDP payload size the resolver advertises to the upstream.
pub const UPSTREAM_PAYLOAD: u16 = 1232;
/// Attempts at finding an id no query in flight holds.
const ID_TRIES: usize = 16;

/// Why the upstream gave no usable answer (the client gets SERVFAIL).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("opening the upstream socket")]
    Socket(#[source] std::io::Error),
    #[error("sending to the upstream")]
    Send(#[source] std::io::Error),
    #[error("talking to the upstream over TCP")]
    Tcp(#[source] std::io::Error),
    #[error("no free query id (too many queries in flight)")]
    Busy,
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream's answer does not match the question")]
    Mismatch,
    #[error("the query could not be encoded")]
    Encode,
}

/// The query the resolver sends for `question` under `id`.
pub(crate) fn upstream_query(id: u16, question: &Query, checking_disabled: bool) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = checking_disabled;
    m.add_query(question.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    m.set_edns(edns);
    m
}

/// Whether `reply` answers `id` for `question`.
pub(crate) fn answers(reply: &Message, id: u16, question: &Query) -> bool {
    reply.metadata.id == id
        && reply.metadata.message_type == MessageType::Response
        && reply.queries.len() == 1
        && same_question(&reply.queries[0], question)
}

fn same_question(a: &Query, b: &Query) -> bool {
    a.query_type() == b.query_type() && a.query_class() == b.query_class() && a.name() == b.name()
}

struct Pending {
    question: Query,
    reply: oneshot::Sender<Message>,
}

type Table = Arc<Mutex<HashMap<u16, Pending>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, HashMap<u16, Pending>> {
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared UDP socket, its table of queries in flight and the task
/// that reads replies (stopped when this is dropped).
pub(crate) struct UdpUpstream {
    socket: Arc<UdpSocket>,
    pending: Table,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for UdpUpstream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes its id from the table when the query ends, however it ends.
struct Slot<'a> {
    table: &'a Table,
    id: u16,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        lock(self.table).remove(&self.id);
    }
}

impl UdpUpstream {
    /// Binds an ephemeral port, connects it to `upstream` and starts the
    /// reader.
    pub(crate) async fn open(upstream: SocketAddr) -> Result<Self, UpstreamError> {
        let bind: SocketAddr = if upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await.map_err(UpstreamError::Socket)?;
        socket
            .connect(upstream)
            .await
            .map_err(UpstreamError::Socket)?;
        let socket = Arc::new(socket);
        let pending = Table::default();
        let reader = tokio::spawn(read_replies(socket.clone(), pending.clone()));
        Ok(Self {
            socket,
            pending,
            reader,
        })
    }

    /// Asks `question` and waits for the matching reply.
    pub(crate) async fn ask(
        &self,
        question: &Query,
        checking_disabled: bool,
    ) -> Result<Message, UpstreamError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut table = lock(&self.pending);
            let id = (0..ID_TRIES)
                .map(|_| rand::random::<u16>())
                .find(|id| !table.contains_key(id))
                .ok_or(UpstreamError::Busy)?;
            table.insert(
                id,
                Pending {
                    question: question.clone(),
                    reply: tx,
                },
            );
            id
        };
        let _slot = Slot {
            table: &self.pending,
            id,
        };
        let bytes = upstream_query(id, question, checking_disabled)
            .to_vec()
            .map_err(|_| UpstreamError::Encode)?;
        self.socket
            .send(&bytes)
            .await
            .map_err(UpstreamError::Send)?;
        tokio::time::timeout(UPSTREAM_TIMEOUT, rx)
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|_| UpstreamError::Timeout)
    }
}

async fn read_replies(socket: Arc<UdpSocket>, pending: Table) {
    let mut buf = vec![0u8; UDP_MAX];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                // ICMP errors (the upstream's port closed) surface here;
                // the queries concerned time out.
                tracing::debug!(error = %e, "DNS upstream: receive failed");
                continue;
            }
        };
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut table = lock(&pending);
        let id = reply.metadata.id;
        let matches = table
            .get(&id)
            .is_some_and(|p| answers(&reply, id, &p.question));
        if matches && let Some(p) = table.remove(&id) {
            let _ = p.reply.send(reply);
        }
    }
}

/// Asks `question` over a TCP connection of its own.
pub(crate) async fn ask_tcp(
    upstream: SocketAddr,
    question: &Query,
    checking_disabled: bool,
) -> Result<Message, UpstreamError> {
    let id = rand::random::<u16>();
    let bytes = upstream_query(id, question, checking_disabled)
        .to_vec()
        .map_err(|_| UpstreamError::Encode)?;
    let reply = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
        let mut s = TcpStream::connect(upstream).await?;
        write_framed(&mut s, &bytes).await?;
        read_framed(&mut s).await
    })
    .await
    .map_err(|_| UpstreamError::Timeout)?
    .map_err(UpstreamError::Tcp)?;
    let reply = Message::from_vec(&reply).map_err(|_| UpstreamError::Mismatch)?;
    if answers(&reply, id, question) {
        Ok(reply)
    } else {
        Err(UpstreamError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    #[test]
    fn the_upstream_query_is_the_resolvers_own() {
        let q = Query::query(Name::from_ascii("Ok.Example.test.").unwrap(), RecordType::A);
        let m = upstream_query(4711, &q, false);
        assert_eq!(m.metadata.id, 4711);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries, vec![q.clone()]);
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        assert_eq!(m.edns.as_ref().unwrap().max_payload(), UPSTREAM_PAYLOAD);
        let mut reply = m.clone();
        reply.metadata.message_type = MessageType::Response;
        assert!(answers(&reply, 4711, &q));
        let lower = Query::query(Name::from_ascii("ok.example.TEST.").unwrap(), RecordType::A);
        assert!(answers(&reply, 4711, &lower), "names compare without case");
        assert!(!answers(&reply, 4712, &q));
        let aaaa = Query::query(q.name().clone(), RecordType::AAAA);
        assert!(!answers(&reply, 4711, &aaaa));
        reply.metadata.message_type = MessageType::Query;
        assert!(!answers(&reply, 4711, &q), "a query is no answer");
    }
}
